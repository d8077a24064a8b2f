"""The campaign catalog as a resource: assets get the file path from here, never from env vars
(``build_resources`` in defs/resources.py sets it from the settings)."""

from __future__ import annotations

import dagster as dg


class CampaignCatalog(dg.ConfigurableResource):
    """Marketing ops' catalog file (TESSERA_CATALOG, default campaigns/catalog.yml)."""

    path: str

    def load(self):
        """The validated catalog; a CatalogError names the file, line and field."""
        from tessera.campaigns.catalog import load_catalog

        return load_catalog(self.path)
