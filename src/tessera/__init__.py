"""Tessera: predictive customer marketing on Dagster, dbt and DuckDB.

The core packages (ml, campaigns, activations, quality, warehouse, demo) import no Dagster;
`tessera.orchestration` is the Dagster shell around them.
"""
