"""`tessera catalog validate FILE` checks a catalog; `tessera campaigns global-control` lists the
global control group of a date."""

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

    campaigns = subparsers.add_parser("campaigns", help="read the campaign tables")
    campaign_actions = campaigns.add_subparsers(dest="campaigns_command", metavar="ACTION")
    members = campaign_actions.add_parser(
        "global-control",
        help="list the global control group of a date as CSV (customer_id, micro_segment_id)",
        description="Reads campaigns.global_control from the warehouse (read-only): the "
        "members the matrix of DATE held out of every marketing campaign.",
    )
    members.add_argument("--date", required=True, help="matrix date, YYYY-MM-DD")
    members.add_argument("--data-dir", default=None, help="default: TESSERA_DATA_DIR")
    members.set_defaults(func=_global_control)
    campaigns.set_defaults(func=lambda args: campaigns.print_help() or 2)


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


def _global_control(args: argparse.Namespace) -> int:
    import datetime as dt
    from pathlib import Path

    import duckdb

    from tessera.campaigns.global_control import MEMBERS_TABLE
    from tessera.settings import WAREHOUSE_FILE, load_settings
    from tessera.warehouse.duckdb_io import read

    try:
        day = dt.date.fromisoformat(args.date)
    except ValueError:
        sys.stderr.write(f"--date: {args.date!r} is not a date (YYYY-MM-DD)\n")
        return 2
    path = Path(args.data_dir) / WAREHOUSE_FILE if args.data_dir else load_settings().warehouse_path
    if not path.exists():
        sys.stderr.write(f"{path}: no warehouse here; run `tessera run` first\n")
        return 2
    with duckdb.connect(str(path), read_only=True) as con:
        rows = read(
            con,
            f"select customer_id, micro_segment_id from {MEMBERS_TABLE}"
            " where as_of_date = $d order by customer_id",
            {"d": day},
        )
        built = read(
            con, "select count(*) as n from campaigns.matrix_runs where as_of_date = $d", {"d": day}
        )
    if built is None or int(built["n"].iloc[0]) == 0:
        sys.stderr.write(f"{path}: the campaign matrix of {day} was never built\n")
        return 2
    if rows is None:  # a date built before the catalog had a global control
        sys.stdout.write("customer_id,micro_segment_id\n")
    else:
        rows.to_csv(sys.stdout, index=False)
    return 0
