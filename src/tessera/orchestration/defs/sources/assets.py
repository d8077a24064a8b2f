"""Landing tables as assets: files in data/landing/ copied losslessly into the warehouse's raw schema."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from tessera.orchestration.defs.partitions import WAREHOUSE_POOL
from tessera.orchestration.defs.resources import DataStorage
from tessera.reporting import markdown_table
from tessera.warehouse.landing import CONTRACT, load_landing

_DESCRIPTIONS = {
    "customers": "Customers as landed: identity, contact data, sign-up time and consent flags.",
    "orders": "Orders as landed: amount, currency and status (completed, cancelled, refunded).",
    "order_items": "Order lines as landed: product, category, quantity and unit price.",
    "events": "Web and app behaviour as landed: page/product views, add-to-cart, searches, app opens.",
    "campaign_responses": "Campaign responses as landed, including the provider events Tessera "
    "receives back (delivered, open, click, bounce, unsubscribe, spam report, conversion).",
    "suppressions": "Manual do-not-contact entries as landed (optional; e.g. a CRM's list): "
    "address or phone, channel (empty: all), reason, since. Applied to every customer who has "
    "that address, at review and again right before each provider request.",
    "external_contacts": "Messages other systems sent, as landed (optional; service, "
    "transactional, other departments' tools): customer_id or address, channel, sent_at, "
    "department, message_type, campaign or subject. They count against the frequency caps.",
}

#: Keyed like every table: schema, then name (`raw.customers` is ["raw", "customers"]).
RAW_ASSET_KEYS = {table: dg.AssetKey(["raw", table]) for table in CONTRACT}


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            key,
            description=(
                f"{_DESCRIPTIONS[table]} Table `raw.{table}`: every contract column as text exactly"
                " as it landed, plus `_source_file` and `_source_row`."
            ),
            group_name="sources",
            kinds={"duckdb", "parquet"},
            skippable=True,
        )
        for table, key in RAW_ASSET_KEYS.items()
    ],
    can_subset=True,
    pool=WAREHOUSE_POOL,
)
def raw_tables(context: dg.AssetExecutionContext, warehouse: DuckDBResource, storage: DataStorage):
    """Load the selected landing tables in one transaction: all of them land, or none does."""
    selected = tuple(t for t, k in RAW_ASSET_KEYS.items() if k in context.selected_asset_keys)
    with warehouse.get_connection() as con:
        loads = load_landing(con, storage.landing_dir, selected)
        for table, load in loads.items():
            preview = con.execute(f"select * from raw.{table} limit 5").df()
            if not load.provided:
                context.log.info(
                    "landing table %s: source not provided (%s); the features that need it are "
                    "NULL",
                    table,
                    "header-only file(s)" if load.files else "no files",
                )
            yield dg.MaterializeResult(
                asset_key=RAW_ASSET_KEYS[table],
                metadata={
                    "dagster/row_count": load.rows,
                    "source": "provided" if load.provided else "source not provided",
                    "files": len(load.files),
                    "landing_path": dg.MetadataValue.path(str(storage.landing_dir / table)),
                    "ignored_columns": dg.MetadataValue.json(load.ignored_columns),
                    "preview": dg.MetadataValue.md(markdown_table(preview)),
                },
            )
