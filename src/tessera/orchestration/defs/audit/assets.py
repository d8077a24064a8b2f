"""audit/messages: every message of the date from Tessera and other systems, with a WARN check
that reports the collisions among them."""

import datetime as dt

import dagster as dg
from dagster_duckdb import DuckDBResource

from tessera.activations.audit import MAX_MESSAGES_PER_DAY, build_audit, campaign_frame
from tessera.orchestration.defs.activations.assets import OUTBOUND
from tessera.orchestration.defs.campaigns.resources import CampaignCatalog
from tessera.orchestration.defs.partitions import WAREHOUSE_POOL, daily_partitions
from tessera.orchestration.defs.sources.assets import RAW_ASSET_KEYS
from tessera.orchestration.defs.warehouse.assets import model_key
from tessera.reporting import markdown_table

AUDIT = dg.AssetKey(["audit", "messages"])
COLLISIONS_CHECK = "no_message_collisions"


@dg.asset(
    key=AUDIT,
    partitions_def=daily_partitions,
    pool=WAREHOUSE_POOL,
    group_name="audit",
    kinds={"duckdb", "python"},
    deps=[OUTBOUND, RAW_ASSET_KEYS["external_contacts"], model_key("dim_customers")],
    check_specs=[
        dg.AssetCheckSpec(
            COLLISIONS_CHECK,
            asset=AUDIT,
            description=(
                f"WARN when a customer gets more than {MAX_MESSAGES_PER_DAY} messages on the "
                "date, messages from two or more departments, or two different offers "
                "(audit.collisions lists them)."
            ),
        )
    ],
)
def audit_messages(
    context: dg.AssetExecutionContext,
    warehouse: DuckDBResource,
    campaign_catalog: CampaignCatalog,
):
    """Every message to every customer on the date (`audit.messages`): Tessera's outbound
    messages with the campaign's owner as department, and the messages other systems sent that
    day (`raw.external_contacts`). `audit.collisions` lists the customers whose messages
    collide, per rule."""
    day = dt.date.fromisoformat(context.partition_key)
    campaigns = campaign_frame(campaign_catalog.load())
    with warehouse.get_connection() as con:
        audit = build_audit(con, day, campaigns)
    by_source = audit.messages.groupby("source").size().astype(int).to_dict()
    yield dg.MaterializeResult(
        asset_key=AUDIT,
        metadata={
            "dagster/row_count": len(audit.messages),
            "tessera_messages": by_source.get("tessera", 0),
            "external_messages": by_source.get("external", 0),
            "collisions_preview": dg.MetadataValue.md(markdown_table(audit.collisions.head(20))),
        },
    )
    customers = int(audit.collisions["customer_id"].nunique()) if len(audit.collisions) else 0
    yield dg.AssetCheckResult(
        asset_key=AUDIT,
        check_name=COLLISIONS_CHECK,
        passed=customers == 0,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            "no collisions"
            if not customers
            else f"{customers} customers with colliding messages: "
            + ", ".join(f"{rule} {n}" for rule, n in sorted(audit.by_rule.items()))
        ),
        metadata={"customers": customers, **{f"rule_{k}": v for k, v in audit.by_rule.items()}},
    )
