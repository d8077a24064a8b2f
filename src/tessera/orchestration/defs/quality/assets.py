"""The quarantine summary: what was held back from staging, why, and proof that no row was lost."""

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from tessera.orchestration.defs.partitions import WAREHOUSE_POOL
from tessera.orchestration.defs.warehouse.assets import model_key
from tessera.quality.quarantine import (
    TABLES,
    quarantine_counts,
    quarantine_examples,
    row_accounting,
)
from tessera.reporting import markdown_table

ROW_ACCOUNTING = "row_accounting"
#: A report (metadata and a check): it reads the quarantine and staging tables, writes none.
QUARANTINE_SUMMARY = dg.AssetKey(["reports", "quarantine_summary"])


@dg.asset(
    key=QUARANTINE_SUMMARY,
    group_name="quality",
    kinds={"duckdb"},
    pool=WAREHOUSE_POOL,
    deps=[model_key(f"quarantine_{t}") for t in TABLES]
    + [model_key(f"stg_shop__{t}") for t in TABLES],
    check_specs=[
        dg.AssetCheckSpec(
            ROW_ACCOUNTING,
            asset=QUARANTINE_SUMMARY,
            blocking=True,
            description="Every landed row is either staged or quarantined: landed rows = staged "
            "rows + quarantined rows, for every table.",
        )
    ],
)
def quarantine_summary(warehouse: DuckDBResource):
    """Rows held back from the warehouse (schema `quarantine`), per table and reason, with
    examples and their source file and row. Release a row by fixing it in the landing file and
    rerunning; see the README's data quality section."""
    with warehouse.get_connection() as con:
        counts = quarantine_counts(con)
        accounting = row_accounting(con)
        examples = {t: quarantine_examples(con, t, limit=5) for t in TABLES}
    held = int(counts.loc[counts["is_blocking"], "rows"].sum()) if len(counts) else 0
    flagged = (
        int(counts.loc[~counts["is_blocking"].astype(bool), "rows"].sum()) if len(counts) else 0
    )
    metadata: dict[str, object] = {
        "dagster/row_count": held + flagged,
        "quarantined_rows": held,
        "flagged_rows": flagged,
        "by_table_and_reason": dg.MetadataValue.md(markdown_table(counts, max_rows=50)),
        "row_accounting": dg.MetadataValue.md(markdown_table(accounting)),
    }
    for table, frame in examples.items():
        if not frame.empty:
            metadata[f"examples_{table}"] = dg.MetadataValue.md(markdown_table(frame))
    for table in TABLES:
        sub = counts[counts["table"] == table]
        metadata[f"quarantined_{table}"] = int(sub["rows"].sum()) if len(sub) else 0
    yield dg.MaterializeResult(metadata=metadata)

    unbalanced = accounting[~accounting["balanced"].astype(bool)]
    yield dg.AssetCheckResult(
        check_name=ROW_ACCOUNTING,
        passed=unbalanced.empty,
        description=(
            "landed = staged + quarantined for every table"
            if unbalanced.empty
            else "rows lost or doubled in: "
            + ", ".join(_explain(r) for _, r in unbalanced.iterrows())
        ),
        metadata={"row_accounting": dg.MetadataValue.md(markdown_table(accounting))},
    )


def _explain(row: pd.Series) -> str:
    return (
        f"{row['table']} (landed {row['landed_rows']}, staged {row['staged_rows']}, "
        f"quarantined {row['quarantined_rows']})"
    )
