"""Activation assets: review (outbound_messages), approval, exactly-once sends, events, uplift.

Each body loads its resources, calls one function of ``tessera.activations`` and turns the
result into metadata; the work (SQL, approval, ceilings, suppressions, sending) is the core's.
"""

import contextlib
import datetime as dt
from collections.abc import Iterator

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from tessera.activations.approval import ACTIONS, record_approval, record_hold
from tessera.activations.delivery import PAUSE_FILE, deliver_day
from tessera.activations.errors import ActivationError
from tessera.activations.event_store import publish_provider_events
from tessera.activations.measurement import (
    PROGRAMME_SUMMARY,
    lift_chart,
    measure_day,
    measure_programme,
    programme_chart,
)
from tessera.activations.review import load_content, review_day
from tessera.orchestration.defs.activations.resources import ActivationSettings
from tessera.orchestration.defs.campaigns.assets import ASSIGNMENTS, EXCLUSIONS, GLOBAL_CONTROL
from tessera.orchestration.defs.ml.assets import customer_drivers, customer_scores
from tessera.orchestration.defs.partitions import WAREHOUSE_POOL, daily_partitions
from tessera.orchestration.defs.resources import DataStorage
from tessera.orchestration.defs.segments.assets import SEGMENT_MEMBERSHIP
from tessera.orchestration.defs.sources.assets import RAW_ASSET_KEYS
from tessera.orchestration.defs.upstream import require_tables
from tessera.orchestration.defs.warehouse.assets import model_key
from tessera.reporting import markdown_table
from tessera.settings import SettingsError, parse_choice

GROUP = "activations"
PROVIDER_EVENTS = dg.AssetKey(["activations", "provider_events"])
OUTBOUND = dg.AssetKey(["activations", "outbound_messages"])
RESULTS = dg.AssetKey(["activations", "campaign_results"])
PROGRAMME_RESULTS = dg.AssetKey(["activations", "programme_results"])
#: What the suppression list is built from (tessera.activations.suppression_sources), at
#: review and at send time.
SUPPRESSION_SOURCES = [
    RAW_ASSET_KEYS["campaign_responses"],
    RAW_ASSET_KEYS["suppressions"],
    model_key("fct_campaign_responses"),
    model_key("dim_customers"),
    model_key("stg_shop__customers"),
    PROVIDER_EVENTS,
]


@contextlib.contextmanager
def _connection(warehouse: DuckDBResource) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse connection, closed also when the step fails: DuckDBResource closes it
    only on success, and a refused send would otherwise keep the file open in the process."""
    with warehouse.get_connection() as con:
        try:
            yield con
        finally:
            con.close()


@dg.asset(
    partitions_def=daily_partitions,
    pool=WAREHOUSE_POOL,
    group_name=GROUP,
    kinds={"duckdb", "python"},
    key=OUTBOUND,
    deps=[
        ASSIGNMENTS,
        model_key("dim_customers"),
        model_key("customer_features"),
        customer_scores,
        customer_drivers,
        *SUPPRESSION_SOURCES,
    ],
    tags={"tessera/stage": "review"},
)
def outbound_messages(
    context: dg.AssetExecutionContext,
    warehouse: DuckDBResource,
    storage: DataStorage,
    activation: ActivationSettings,
) -> dg.MaterializeResult:
    """The day's messages before anything is sent (the dry run): one row per message with its
    key, address, template and rendered personalization; excluded recipients with the reason
    (no consent, unsubscribed, bounced, spam report, opted out or do-not-contact at that
    address, invalid or duplicate contact). Also refreshes the suppression list
    (`activations.suppressions`, keyed on the normalised address). Review the counts per
    campaign and channel and the samples, then approve with `send_approval`."""
    day = dt.date.fromisoformat(context.partition_key)
    with _connection(warehouse) as con:
        require_tables(
            con,
            OUTBOUND,
            [ASSIGNMENTS, model_key("dim_customers"), model_key("customer_features"),
             customer_scores.key],
        )  # fmt: skip
        content = load_content(activation.catalog_path, activation.environment)
        review = review_day(con, day, storage.landing_dir, content)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(review.messages),
            "messages": len(review.messages),
            "excluded": len(review.excluded),
            "suppressed_addresses": review.suppressed_addresses,
            "fingerprint": review.fingerprint,
            "target": activation.target_description(),
            "counts_per_campaign_channel": dg.MetadataValue.md(
                markdown_table(review.counts, max_rows=50)
            ),
            "excluded_by_reason": dg.MetadataValue.md(markdown_table(review.reasons, max_rows=20)),
            "sample_messages": dg.MetadataValue.md(markdown_table(review.samples, max_rows=20)),
        }
    )


class ApprovalConfig(dg.Config):
    """Who decides, what, and on which reviewed messages."""

    approved_by: str = "marketing-ops"  # who approves or holds (recorded in audit.approvals)
    note: str = ""
    action: str = "approve"  # approve | hold
    #: The fingerprint of the messages the reviewer saw (the review app passes it): when set
    #: and the messages changed since, nothing is approved.
    expected_fingerprint: str = ""
    via: str = "dagster"  # what made the decision: dagster (the UI), review-app, cli


@dg.asset(
    partitions_def=daily_partitions,
    pool=WAREHOUSE_POOL,
    group_name=GROUP,
    kinds={"duckdb"},
    key=["activations", "send_approvals"],
    deps=[outbound_messages],
    tags={"tessera/manual": "true"},
)
def send_approval(
    context: dg.AssetExecutionContext, config: ApprovalConfig, warehouse: DuckDBResource
) -> dg.MaterializeResult:
    """Approval (or hold) of the day's sends: materialize this partition (after reviewing
    `outbound_messages`) to let `deliveries` send exactly the reviewed messages. The approval
    binds each message's address, template id, personalization, channel and provider: rebuilding
    `outbound_messages` with any of them changed voids it, and `deliveries` says what changed.
    With `action: hold` the date's approval is withdrawn and nothing of it is sent, not even with
    auto_send, until it is approved again. Every decision is kept in `audit.approvals`; the review
    app launches this asset through Dagster's GraphQL API."""
    day = dt.date.fromisoformat(context.partition_key)
    try:
        action = parse_choice("action", config.action, ACTIONS)
    except SettingsError as exc:
        raise dg.Failure(str(exc)) from None
    try:
        with _connection(warehouse) as con:
            if action == "hold":
                decided = record_hold(
                    con, day, config.approved_by, config.note, via=config.via,
                    run_id=context.run_id,
                )  # fmt: skip
            else:
                decided = record_approval(
                    con, day, config.approved_by, config.note,
                    expected_fingerprint=config.expected_fingerprint, via=config.via,
                    run_id=context.run_id,
                )  # fmt: skip
    except ActivationError as exc:
        raise dg.Failure(str(exc)) from None
    context.log.info(
        "%s %s by %s (%d messages)%s",
        day,
        "held" if action == "hold" else "approved",
        config.approved_by,
        decided.messages,
        f"; {decided.changes}" if decided.changes else "",
    )
    return dg.MaterializeResult(
        metadata={
            "action": action,
            "approved_by" if action == "approve" else "held_by": config.approved_by,
            "via": config.via,
            "messages": decided.messages,
            "fingerprint": decided.fingerprint,
            **({"changes_since_last_approval": decided.changes} if decided.changes else {}),
        }
    )


class DeliveriesConfig(dg.Config):
    retry_failed: bool = False  # also resend messages a provider rejected (after fixing the data)


@dg.asset(
    partitions_def=daily_partitions,
    pool=WAREHOUSE_POOL,
    group_name=GROUP,
    kinds={"duckdb", "sendgrid", "twilio"},
    key=["activations", "deliveries"],
    deps=[outbound_messages, send_approval, *SUPPRESSION_SOURCES],
    tags={"tessera/stage": "send"},
)
def deliveries(
    context: dg.AssetExecutionContext,
    config: DeliveriesConfig,
    warehouse: DuckDBResource,
    storage: DataStorage,
    activation: ActivationSettings,
) -> dg.MaterializeResult:
    """The delivery ledger (activations.deliveries): each message key recorded before its
    request and its outcome after, with attempts and the provider's response. Sends only what
    was not sent yet (exactly once across crashes and reruns); fails when any message failed,
    keeping the reason per row. Needs `send_approval` unless `auto_send` is on. Right before
    each window of requests the suppression list is read again (events and do-not-contact
    entries landed since the review count) and the ledger is asked whether the address already
    got a message that day: such messages end `suppressed` with the reason and never leave.
    The daily ceiling counts the calendar day's sends in the ledger across runs."""
    day = dt.date.fromisoformat(context.partition_key)
    settings = activation.settings()
    context.log.info("sending %s via %s", day, settings.target_description())
    try:
        with _connection(warehouse) as con:
            delivery = deliver_day(
                con,
                day,
                settings,
                landing_dir=storage.landing_dir,
                outbox_dir=storage.outbox_dir,
                pause_file=storage.root / PAUSE_FILE,
                retry_failed=config.retry_failed,
            )
    except ActivationError as exc:
        raise dg.Failure(str(exc)) from None
    report = delivery.report
    metadata = {
        "dagster/row_count": delivery.messages,
        "sent_this_run": report.sent,
        "already_sent": report.already_sent,
        "reconciled_after_crash": report.reconciled_sent,
        "failed": len(delivery.failed),
        "suppressed_at_send": len(report.suppressed),
        "suppression_checks": delivery.suppression_checks,
        "requests": report.requests,
        "seconds": round(report.seconds, 2),
        "messages_per_second": round(report.messages_per_second),
        "target": settings.target_description(),
        "status_by_channel": dg.MetadataValue.md(markdown_table(delivery.summary, max_rows=30)),
    }
    if not delivery.failed.empty:
        raise dg.Failure(
            description=(
                f"{len(delivery.failed)} message(s) for {day} were not delivered (reasons per row "
                "in activations.deliveries). Rerun to retry transient failures; fix data and "
                "rerun with retry_failed for rejected ones."
            ),
            metadata={
                **metadata,
                "failures": dg.MetadataValue.md(markdown_table(delivery.failed, max_rows=20)),
            },
        )
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    pool=WAREHOUSE_POOL,
    group_name=GROUP,
    kinds={"duckdb", "parquet"},
    key=PROVIDER_EVENTS,
    tags={"tessera/stage": "feedback"},
)
def provider_events(warehouse: DuckDBResource, storage: DataStorage) -> dg.MaterializeResult:
    """Delivery, open, click, bounce, unsubscribe, spam-report and conversion events from the
    providers, as the event endpoint landed them in landing/campaign_responses (the one store of
    provider events, which the raw load and dbt read too). Rebuilt whole when files land: a
    snapshot for SQL readers; suppressions and `campaign_results` read the store itself
    (tessera.activations.event_store.provider_events), so nothing waits for this asset."""
    with _connection(warehouse) as con:
        snapshot = publish_provider_events(con, storage.landing_dir)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": snapshot.events,
            "new_files": snapshot.new_files,
            "events_by_type": dg.MetadataValue.md(markdown_table(snapshot.by_event)),
        }
    )


@dg.asset(
    partitions_def=daily_partitions,
    pool=WAREHOUSE_POOL,
    group_name=GROUP,
    kinds={"duckdb", "python"},
    key=RESULTS,
    deps=[
        ASSIGNMENTS,
        model_key("fct_orders"),
        model_key("fct_campaign_responses"),
        provider_events,
    ],
    tags={"tessera/stage": "measure"},
)
def campaign_results(
    context: dg.AssetExecutionContext, warehouse: DuckDBResource, storage: DataStorage
) -> dg.MaterializeResult:
    """Per campaign, as of date D: treatment vs control conversion rate and revenue per
    customer over every cohort before D (intent to treat), absolute lift (Newcombe 95% CI),
    relative lift (Katz log CI), revenue lift (Welch CI), p-value and sample sizes. Conversions
    are completed orders in the campaign window plus attributed conversion events."""
    day = dt.date.fromisoformat(context.partition_key)
    with _connection(warehouse) as con:
        # Conversions come from the provider event store (raw load + files landed since), which
        # the deps on fct_campaign_responses and provider_events order this step after.
        require_tables(con, RESULTS, [ASSIGNMENTS, model_key("fct_orders")])
        measured = measure_day(con, day, storage.landing_dir)
    metadata = {
        "dagster/row_count": len(measured.results),
        "results": dg.MetadataValue.md(
            markdown_table(measured.summary, max_rows=50, float_digits=4)
        ),
    }
    if measured.has_intervals:
        metadata["lift_chart"] = dg.MetadataValue.md(lift_chart(measured.results))
    return dg.MaterializeResult(metadata=metadata)


class ProgrammeConfig(dg.Config):
    window_days: int = 28
    """The programme is compared with the global control over [D - window_days, D)."""


@dg.asset(
    partitions_def=daily_partitions,
    pool=WAREHOUSE_POOL,
    group_name=GROUP,
    kinds={"duckdb", "python"},
    key=PROGRAMME_RESULTS,
    deps=[ASSIGNMENTS, EXCLUSIONS, GLOBAL_CONTROL, SEGMENT_MEMBERSHIP, model_key("fct_orders")],
    tags={"tessera/stage": "measure"},
)
def programme_results(
    context: dg.AssetExecutionContext, config: ProgrammeConfig, warehouse: DuckDBResource
) -> dg.MaterializeResult:
    """The whole marketing programme vs the global control over a window before D (config
    window_days, default 28): conversion rate, revenue per customer, absolute and relative
    lift with 95% intervals, incremental revenue and sample sizes, then the same per campaign
    (its treated customers vs the global-control members it would have targeted). Outcomes are
    completed orders."""
    day = dt.date.fromisoformat(context.partition_key)
    with _connection(warehouse) as con:
        require_tables(con, PROGRAMME_RESULTS, [ASSIGNMENTS, model_key("fct_orders")])
        measured = measure_programme(con, day, config.window_days)
    top = measured.programme
    # Nothing measured yet (a first date): the notes say why, which is no warning.
    say = context.log.info if top is None else context.log.warning
    for note in measured.notes:
        say(note)
    metadata: dict = {
        "dagster/row_count": len(measured.results),
        "window": f"{measured.window_start} .. {day - dt.timedelta(days=1)}",
        "programme_customers": int(top["treatment_n"]) if top is not None else 0,
        "global_control_customers": int(top["control_n"]) if top is not None else 0,
        "preview": dg.MetadataValue.md(
            markdown_table(measured.results[PROGRAMME_SUMMARY], max_rows=30, float_digits=4)
        ),
        "daily": dg.MetadataValue.md(
            markdown_table(measured.series, max_rows=2 * config.window_days, float_digits=4)
        ),
        "notes": dg.MetadataValue.md("\n".join(f"- {n}" for n in measured.notes) or "none"),
    }
    if top is not None:
        for name in ("abs_lift", "revenue_lift_per_customer", "incremental_revenue"):
            value = float(top[name])
            if value == value:  # not NaN
                metadata[f"programme_{name}"] = value
    if len(measured.series):
        metadata["chart"] = dg.MetadataValue.md(programme_chart(measured.series))
    return dg.MaterializeResult(metadata=metadata)
