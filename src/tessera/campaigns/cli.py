"""`tessera catalog validate FILE`: check a campaign catalog without running anything."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    catalog = subparsers.add_parser("catalog", help="work with the campaign catalog")
    actions = catalog.add_subparsers(dest="catalog_command", metavar="ACTION")
    validate = actions.add_parser("validate", help="validate a catalog file (exit 2 on errors)")
    validate.add_argument("file", help="path of the catalog YAML")
    validate.set_defaults(func=_validate)
    catalog.set_defaults(func=lambda args: catalog.print_help() or 2)


def _validate(args: argparse.Namespace) -> int:
    from tessera.campaigns.catalog import load_catalog
    from tessera.campaigns.errors import CatalogError

    try:
        catalog = load_catalog(args.file)
    except CatalogError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    channels = sorted({ch for c in catalog.campaigns for ch in c.channels})
    sys.stdout.write(
        f"{args.file}: OK - {len(catalog.dimensions)} dimensions, "
        f"{len(catalog.target_groups)} target groups, {len(catalog.campaigns)} campaigns "
        f"({', '.join(channels) or 'no channels'}), {len(catalog.policies.caps)} caps, "
        f"catalog {catalog.fingerprint()}\n"
    )
    return 0
