"""Data quality gates: Great Expectations suites over DuckDB tables and the quarantine ledger (no Dagster)."""
