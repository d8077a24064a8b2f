"""Loads landing files (CSV or Parquet) into the warehouse's `raw` schema, losslessly and atomically.

Every contract column is stored as text exactly as it landed, with the file and row it came
from, so that staging can cast, validate and quarantine without losing the original value.
A file that cannot be read, or that lacks a contract column, stops the load with a message that
names the file and the column; nothing is written then (one transaction for all tables).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TableContract:
    """The columns one landing table must (and may) have."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return self.required + self.optional


#: The source contract of ARCHITECTURE.md (plus two optional columns, see docs/data-model.md).
CONTRACT: dict[str, TableContract] = {
    "customers": TableContract(
        required=(
            "customer_id",
            "email",
            "phone",
            "created_at",
            "country",
            "email_opt_in",
            "sms_opt_in",
        ),
        optional=("first_name",),
    ),
    "orders": TableContract(
        required=("order_id", "customer_id", "ordered_at", "amount", "currency", "status")
    ),
    "order_items": TableContract(
        required=("order_id", "product_id", "category", "quantity", "unit_price")
    ),
    "events": TableContract(required=("customer_id", "occurred_at", "event_type", "category")),
    "campaign_responses": TableContract(
        required=("message_id", "customer_id", "campaign_id", "channel", "event", "occurred_at"),
        optional=("revenue",),
    ),
    # A do-not-contact list (e.g. a CRM export): an e-mail address or phone number per row;
    # channel empty or 'all' means every channel. Read by activations/suppressions.py.
    "suppressions": TableContract(required=("address",), optional=("channel", "reason", "since")),
}

#: Tables whose landing folder may be absent: a shop without campaigns yet has no responses,
#: and most shops have no do-not-contact list beside their customers' consent flags.
OPTIONAL_TABLES = frozenset({"campaign_responses", "suppressions"})

#: Tables no dbt model stages (so no quarantine either): the activations layer normalises and
#: applies them itself, and a malformed entry stops the send with its file and row.
UNMODELLED_TABLES = frozenset({"suppressions"})

_SUFFIXES = (".parquet", ".csv")


class LandingError(ValueError):
    """A landing file is missing, unreadable or breaks the source contract."""


@dataclass
class TableLoad:
    """What one table's load read: files, rows, and columns it ignored."""

    table: str
    files: list[Path] = field(default_factory=list)
    rows: int = 0
    ignored_columns: dict[str, list[str]] = field(default_factory=dict)


def landing_files(landing_dir: Path, table: str) -> list[Path]:
    """The files of one table: `<table>/*.parquet|*.csv` or a single `<table>.parquet|.csv`."""
    folder = landing_dir / table
    if folder.is_dir():
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in _SUFFIXES)
        # Hidden and temporary files are writers' work in progress (atomic rename pending).
        return [p for p in files if not p.name.startswith((".", "_"))]
    return [p for p in (landing_dir / f"{table}{s}" for s in _SUFFIXES) if p.is_file()]


def _scan_sql(path: Path) -> str:
    quoted = str(path).replace("'", "''")
    if path.suffix.lower() == ".parquet":
        return f"read_parquet('{quoted}', file_row_number = true)"
    # all_varchar: the text as it landed; types are staging's job. Header names are matched
    # case-insensitively below.
    return f"read_csv('{quoted}', header = true, all_varchar = true, auto_detect = true)"


def _file_columns(con: duckdb.DuckDBPyConnection, path: Path, table: str) -> list[str]:
    if path.stat().st_size == 0:
        raise LandingError(
            f"{path}: the file is empty (no header row); table '{table}' expects "
            f"columns {', '.join(CONTRACT[table].columns)}"
        )
    try:
        rows = con.execute(f"describe select * from {_scan_sql(path)}").fetchall()
    except duckdb.Error as exc:
        raise LandingError(
            f"{path}: cannot be read as {path.suffix[1:]} for table '{table}': {_first_line(exc)}"
        ) from exc
    return [r[0] for r in rows if r[0] != "file_row_number"]


def _first_line(exc: Exception) -> str:
    """DuckDB's explanation without its echo of the query and reader options."""
    paragraph = str(exc).strip().split("\n\n")[0].splitlines()
    lines = [ln.strip() for ln in paragraph if ln.strip() and not ln.startswith("Original Line")]
    return "; ".join(lines) or type(exc).__name__


def _select_sql(path: Path, table: str, present: dict[str, str], relative_to: Path) -> str:
    contract = CONTRACT[table]
    cols = []
    for col in contract.columns:
        if col in present:
            cols.append(f'cast("{present[col]}" as varchar) as {col}')
        else:
            cols.append(f"cast(null as varchar) as {col}")
    try:
        label = str(path.relative_to(relative_to))
    except ValueError:
        label = str(path)
    label = label.replace("'", "''")
    is_parquet = path.suffix.lower() == ".parquet"
    row = "file_row_number + 1" if is_parquet else "row_number() over ()"
    return (
        f"select {', '.join(cols)}, '{label}' as _source_file, cast({row} as bigint) as _source_row"
        f" from {_scan_sql(path)}"
    )


def plan_table(
    con: duckdb.DuckDBPyConnection, landing_dir: Path, table: str
) -> tuple[TableLoad, str | None]:
    """Check one table's files against the contract; return what it will load and the SQL."""
    if table not in CONTRACT:
        raise LandingError(f"unknown landing table '{table}'; expected one of {sorted(CONTRACT)}")
    load = TableLoad(table=table, files=landing_files(landing_dir, table))
    if not load.files:
        if table in OPTIONAL_TABLES:
            return load, None
        raise LandingError(
            f"{landing_dir / table}: no landing files for table '{table}' (expected *.parquet or "
            f"*.csv in that folder, or {table}.parquet / {table}.csv beside it)"
        )
    selects = []
    for path in load.files:
        found = _file_columns(con, path, table)
        present = {c.strip().lower(): c for c in found}
        missing = [c for c in CONTRACT[table].required if c not in present]
        if missing:
            raise LandingError(
                f"{path}: missing column(s) {', '.join(missing)} for table '{table}'; "
                f"found {', '.join(found) or 'none'}; the contract is "
                f"{', '.join(CONTRACT[table].columns)} (see docs/data-model.md)"
            )
        extra = [c for c in found if c.strip().lower() not in CONTRACT[table].columns]
        if extra:
            load.ignored_columns[path.name] = extra
            log.warning("%s: ignoring column(s) %s not in the contract", path, ", ".join(extra))
        selects.append(_select_sql(path, table, present, landing_dir))
    return load, " union all ".join(selects)


def load_landing(
    con: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    tables: tuple[str, ...] | None = None,
) -> dict[str, TableLoad]:
    """Replace `raw.<table>` for each table from its landing files, all or nothing.

    Every table is checked before anything is written; the writes happen in one transaction,
    so a bad file leaves the warehouse exactly as it was.
    """
    landing_dir = Path(landing_dir)
    if not landing_dir.is_dir():
        raise LandingError(
            f"{landing_dir}: landing folder not found; generate the demo shop with "
            "`tessera demo generate` or point TESSERA_DATA_DIR at a folder with landing/<table>/ files"
        )
    tables = tables or tuple(CONTRACT)
    plans = {t: plan_table(con, landing_dir, t) for t in tables}
    con.execute("create schema if not exists raw")
    con.execute("begin transaction")
    try:
        for table, (load, sql) in plans.items():
            if sql is None:
                cols = ", ".join(f"{c} varchar" for c in CONTRACT[table].columns)
                con.execute(
                    f"create or replace table raw.{table} "
                    f"({cols}, _source_file varchar, _source_row bigint)"
                )
                continue
            try:
                con.execute(f"create or replace table raw.{table} as {sql}")
            except duckdb.Error as exc:
                raise LandingError(
                    f"{landing_dir / table}: reading table '{table}' failed: {_first_line(exc)}"
                ) from exc
            load.rows = con.execute(f"select count(*) from raw.{table}").fetchall()[0][0]
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return {t: load for t, (load, _) in plans.items()}
