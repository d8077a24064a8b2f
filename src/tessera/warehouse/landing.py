"""Loads landing files (CSV or Parquet) into the warehouse's `raw` schema, losslessly and atomically.

Every contract column is stored as text exactly as it landed, with the file and row it came
from, so that staging can cast, validate and quarantine without losing the original value.
A file that cannot be read, or that lacks a contract column, stops the load with a message that
names the file and the column; nothing is written then (one transaction for all tables).
"""

from __future__ import annotations

import datetime as dt
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
        optional=("first_name", "updated_at"),
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
    # Messages other systems sent (service, transactional, other departments' tools): a
    # customer_id or an address per row. They count against the frequency caps. Read by
    # campaigns/daily.py.
    "external_contacts": TableContract(
        required=("channel", "sent_at", "department", "message_type"),
        optional=("customer_id", "address", "campaign", "subject"),
    ),
}

#: Tables a shop may leave out (no folder, no file) or land header-only: customers and orders
#: are enough to run. The features that need an optional table are NULL when it is not provided
#: (docs/data-model.md); an absent table loads as an empty raw table with the contract columns.
#: Most shops have no do-not-contact list (`suppressions`) beside their customers' consent flags.
OPTIONAL_TABLES = frozenset(
    {"order_items", "events", "campaign_responses", "suppressions", "external_contacts"}
)
REQUIRED_TABLES = tuple(t for t in CONTRACT if t not in OPTIONAL_TABLES)

#: Tables no dbt model stages (so no quarantine either): the activations and campaigns layers
#: normalise and apply them themselves, and a malformed entry stops the step with its file and row.
UNMODELLED_TABLES = frozenset({"suppressions", "external_contacts"})

#: Tables whose later copies of a key update the earlier ones (customers: consent, address).
#: Their rows also carry `_source_modified_at`, the file's modification time (UTC), which orders
#: copies that have no `updated_at` (see docs/data-model.md, "Customers are a changing table").
VERSIONED_TABLES = frozenset({"customers"})

#: File name endings that are loaded (case-insensitive); every other file in a table's folder
#: is an error, so nothing is skipped without a word.
LOADABLE_SUFFIXES = (".parquet", ".csv", ".csv.gz")


class LandingError(ValueError):
    """A landing file is missing, unreadable or breaks the source contract."""


@dataclass
class TableLoad:
    """What one table's load read: files, rows, and columns it ignored."""

    table: str
    files: list[Path] = field(default_factory=list)
    rows: int = 0
    ignored_columns: dict[str, list[str]] = field(default_factory=dict)
    #: Each file's select, to name the file when the combined read fails deep inside one.
    file_selects: dict[Path, str] = field(default_factory=dict, repr=False)

    @property
    def provided(self) -> bool:
        """False for an optional table left out or landed header-only ("source not provided")."""
        return self.rows > 0


def _loadable(path: Path) -> bool:
    return path.name.lower().endswith(LOADABLE_SUFFIXES)


def _is_parquet(path: Path) -> bool:
    return path.name.lower().endswith(".parquet")


def landing_files(landing_dir: Path, table: str) -> list[Path]:
    """The files of one table: `<table>/*.parquet|*.csv|*.csv.gz` or one `<table>.<suffix>` file.

    Names starting with "." (writers' temporary files before their atomic rename, `.DS_Store`)
    are the only ones ignored. Any other file or folder in the table's folder that is not
    loadable, and a `<table>.<suffix>` file beside an existing `<table>/` folder, is a
    LandingError that names them: a file is either loaded or reported, never skipped.
    """
    folder = landing_dir / table
    beside = sorted(
        p for p in landing_dir.glob(f"{glob_literal(table)}.*") if not p.name.startswith(".")
    )
    if folder.is_dir():
        if beside:
            raise LandingError(
                f"{', '.join(map(str, beside))}: a file for table '{table}' beside its folder "
                f"{folder}; move it into the folder (or remove the folder) so that one place "
                "holds the table"
            )
        entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
        rejected = [p for p in entries if not (p.is_file() and _loadable(p))]
        if rejected:
            raise LandingError(
                f"{', '.join(map(str, rejected))}: not a loadable file for table '{table}' "
                f"(expected {', '.join('*' + s for s in LOADABLE_SUFFIXES)}; sub-folders are not "
                "read); convert, move or remove it"
            )
        return entries
    rejected = [p for p in beside if not (p.is_file() and _loadable(p))]
    if rejected:
        raise LandingError(
            f"{', '.join(map(str, rejected))}: not a loadable file for table '{table}' "
            f"(expected {', '.join(table + s for s in LOADABLE_SUFFIXES)})"
        )
    return beside


def glob_literal(text: str) -> str:
    """`text` as a glob pattern matching only itself: DuckDB's readers (and pathlib) expand
    `*`, `?` and `[...]` in file names, so a file called `p*.csv` would also read `part1.csv`."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def _scan_sql(path: Path) -> str:
    quoted = glob_literal(str(path)).replace("'", "''")
    if _is_parquet(path):
        return f"read_parquet('{quoted}', file_row_number = true)"
    # all_varchar: the text as it landed; types are staging's job. Header names are matched
    # case-insensitively below. `.csv.gz` is decompressed by the reader (by its name).
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
            f"{path}: cannot be read as {'parquet' if _is_parquet(path) else 'csv'} for table "
            f"'{table}': {_first_line(exc)}"
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
    row = "file_row_number + 1" if _is_parquet(path) else "row_number() over ()"
    provenance = f"'{label}' as _source_file, cast({row} as bigint) as _source_row"
    if table in VERSIONED_TABLES:
        provenance += f", cast('{_modified_at(path)}' as timestamp) as _source_modified_at"
    return f"select {', '.join(cols)}, {provenance} from {_scan_sql(path)}"


def _modified_at(path: Path) -> str:
    """The file's modification time as UTC timestamp text (microseconds)."""
    seconds, nanos = divmod(path.stat().st_mtime_ns, 1_000_000_000)
    stamp = dt.datetime.fromtimestamp(seconds, tz=dt.UTC) + dt.timedelta(microseconds=nanos // 1000)
    return stamp.strftime("%Y-%m-%d %H:%M:%S.%f")


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
            f"{landing_dir / table}: no landing files for table '{table}' (expected *.parquet, "
            f"*.csv or *.csv.gz in that folder, or one {table}.parquet / {table}.csv beside it); "
            f"{' and '.join(REQUIRED_TABLES)} are required, "
            f"{', '.join(sorted(OPTIONAL_TABLES))} are optional"
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
        load.file_selects[path] = _select_sql(path, table, present, landing_dir)
        selects.append(load.file_selects[path])
    return load, " union all ".join(selects)


def _failing_file(con: duckdb.DuckDBPyConnection, load: TableLoad) -> tuple[Path, str] | None:
    """The first file of a table whose full read fails, with DuckDB's reason (None if none).

    Planning reads only a sample of each file, so an encoding error deep in a file surfaces in
    the combined load, where DuckDB's message does not say which file; each file is re-read
    alone to find it. Runs only after a failure, outside the load's transaction."""
    for path, sql in load.file_selects.items():
        # Materialised, not counted: a count reads no column, so it would not decode the text.
        try:
            con.execute(f"create or replace temp table _tessera_landing_probe as {sql}")
        except duckdb.Error as exc:
            return path, _first_line(exc)
        finally:
            con.execute("drop table if exists _tessera_landing_probe")
    return None


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
    failed: tuple[TableLoad, duckdb.Error] | None = None
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
                failed = (load, exc)
                raise
            load.rows = con.execute(f"select count(*) from raw.{table}").fetchall()[0][0]
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        if failed is None:
            raise
        load, exc = failed
        culprit = _failing_file(con, load)
        if culprit is None:
            raise LandingError(
                f"{landing_dir / load.table}: reading table '{load.table}' failed: "
                f"{_first_line(exc)}"
            ) from exc
        path, reason = culprit
        raise LandingError(
            f"{path}: cannot be read as {'parquet' if _is_parquet(path) else 'csv'} for table "
            f"'{load.table}': {reason}"
        ) from exc
    return {t: load for t, (load, _) in plans.items()}
