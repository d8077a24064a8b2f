"""The campaign catalog as a resource: assets get the file path from here, never from env vars
(``build_resources`` in defs/resources.py sets it from the settings)."""

from __future__ import annotations

import dagster as dg


class CampaignCatalog(dg.ConfigurableResource):
    """Marketing ops' catalog file (TESSERA_CATALOG, default campaigns/catalog.yml)."""

    path: str
    #: The journeys' contacts and locks (``<data_dir>/journeys/contacts.parquet``), counted by
    #: the matrix like its own history; empty: no journeys.
    journey_contacts_path: str = ""
    #: The shop's timezone (TESSERA_TIMEZONE): the calendar days caps and locks count in.
    timezone: str = "UTC"

    def journey_contacts(self):
        """The journeys' contacts as matrix history rows, None without any."""
        from pathlib import Path

        import pandas as pd

        path = Path(self.journey_contacts_path) if self.journey_contacts_path else None
        return pd.read_parquet(path) if path is not None and path.exists() else None

    def load(self):
        """The validated catalog; a CatalogError names the file, line and field."""
        from tessera.campaigns.catalog import load_catalog

        return load_catalog(self.path)
