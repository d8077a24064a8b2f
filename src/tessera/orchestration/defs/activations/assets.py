"""Activation assets: review (outbound_messages), approval, exactly-once sends, events, uplift."""

import contextlib
import datetime as dt
from collections.abc import Iterator

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from tessera.activations import ledger
from tessera.activations.approval import (
    MANIFEST_COLUMNS,
    approval_manifest,
    check_approval,
    fingerprint,
)
from tessera.activations.ceilings import DailyCeiling, channel_ceilings, daily_history, local_day
from tessera.activations.content import CONTENT_COLUMNS, content_frame, content_from_catalog
from tessera.activations.errors import ActivationError
from tessera.activations.events import landed_event_files
from tessera.activations.outbound import build_outbound, summarize
from tessera.activations.results import campaign_results as compute_results
from tessera.activations.sender import send_messages
from tessera.activations.suppressions import SendTimeCheck, already_contacted
from tessera.orchestration.defs.activations.resources import ActivationSettings
from tessera.orchestration.defs.activations.suppression_sources import (
    SuppressionSources,
    sent_addresses,
    warehouse_events,
)
from tessera.orchestration.defs.campaigns.assets import ASSIGNMENTS
from tessera.orchestration.defs.ml.assets import customer_scores
from tessera.orchestration.defs.partitions import WAREHOUSE_POOL, daily_partitions
from tessera.orchestration.defs.resources import DataStorage
from tessera.orchestration.defs.sources.assets import RAW_ASSET_KEYS
from tessera.orchestration.defs.upstream import require_tables
from tessera.orchestration.defs.warehouse.assets import model_key
from tessera.reporting import markdown_table, png_markdown
from tessera.warehouse.duckdb_io import read, replace_dates

GROUP = "activations"
#: A file that pauses sending between batches (a kill switch that works mid-run).
PAUSE_FILE = "SENDS_PAUSED"
PROVIDER_EVENTS = dg.AssetKey(["activations", "provider_events"])
OUTBOUND = dg.AssetKey(["activations", "outbound_messages"])
RESULTS = dg.AssetKey(["activations", "campaign_results"])
#: What the suppression list is built from (suppression_sources.py), at review and at send time.
SUPPRESSION_SOURCES = [
    RAW_ASSET_KEYS["campaign_responses"],
    RAW_ASSET_KEYS["suppressions"],
    model_key("fct_campaign_responses"),
    model_key("dim_customers"),
    model_key("stg_shop__customers"),
    PROVIDER_EVENTS,
]


@contextlib.contextmanager
def _connection(warehouse: DuckDBResource) -> Iterator:
    """The warehouse connection, closed also when the step fails: DuckDBResource closes it
    only on success, and a refused send would otherwise keep the file open in the process."""
    with warehouse.get_connection() as con:
        try:
            yield con
        finally:
            con.close()


def _content(catalog_path: str, environment: str = "default") -> pd.DataFrame:
    # No catalog configured (a bare resource in tests): placeholder content. A configured path
    # that is missing is an error (load_catalog names it), never placeholder templates.
    if not catalog_path:
        return pd.DataFrame(columns=CONTENT_COLUMNS)
    from tessera.campaigns.catalog import load_catalog

    catalog = load_catalog(catalog_path)
    return content_frame(content_from_catalog(catalog, environment))


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
        assignments = con.execute(
            "select * from campaigns.campaign_assignments where as_of_date = $d", {"d": day}
        ).df()
        customers = con.execute("select * from marts.dim_customers").df()
        features = con.execute(
            "select customer_id, top_category, top_viewed_category_30d from marts.customer_features where as_of_date = $d",
            {"d": day},
        ).df()
        scores = con.execute(
            "select customer_id, top_drivers from ml.customer_scores where as_of_date = $d",
            {"d": day},
        ).df()
        # The suppression list as known now (its own table), and the events before D that
        # partition D's review applies; the send-time check applies everything known then.
        sources = SuppressionSources(con, storage.landing_dir)
        suppression_list = sources()
        events_before = warehouse_events(con, before=day)
        messages, excluded = build_outbound(
            day,
            assignments,
            customers,
            features,
            scores,
            events_before,
            _content(activation.catalog_path, activation.environment),
            manual=_manual_entries(sources),
            sent=sent_addresses(con, events_before["message_id"]),
            customer_records=sources.customers,
        )
        con.execute("create schema if not exists activations")
        write_suppressions(con, suppression_list)
        replace_dates(
            con,
            [
                ("activations.outbound_messages", messages),
                ("activations.outbound_exclusions", excluded),
            ],
            day,
        )
    counts = summarize(messages, excluded)
    samples = messages.groupby(["campaign_id", "channel"]).head(2)[
        ["campaign_id", "channel", "customer_id", "address", "template_id", "personalization"]
    ]
    reasons = excluded.groupby("reason").size().rename("customers").reset_index()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(messages),
            "messages": len(messages),
            "excluded": len(excluded),
            "suppressed_addresses": int(suppression_list["match_key"].nunique()),
            "fingerprint": fingerprint(approval_manifest(messages)),
            "target": activation.target_description(),
            "counts_per_campaign_channel": dg.MetadataValue.md(markdown_table(counts, max_rows=50)),
            "excluded_by_reason": dg.MetadataValue.md(markdown_table(reasons, max_rows=20)),
            "sample_messages": dg.MetadataValue.md(markdown_table(samples, max_rows=20)),
        }
    )


class ApprovalConfig(dg.Config):
    approved_by: str = "marketing-ops"
    note: str = ""


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
    """Approval of the day's sends: materialize this partition (after reviewing
    `outbound_messages`) to let `deliveries` send exactly the reviewed messages. The approval
    binds each message's address, template id, personalization, channel and provider: rebuilding
    `outbound_messages` with any of them changed voids it, and `deliveries` says what changed."""
    day = dt.date.fromisoformat(context.partition_key)
    with _connection(warehouse) as con:
        messages = con.execute(
            "select * from activations.outbound_messages where as_of_date = $d", {"d": day}
        ).df()
        manifest = approval_manifest(messages)
        manifest.insert(0, "as_of_date", day)
        row = pd.DataFrame(
            [
                {
                    "as_of_date": day,
                    "approved_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
                    "approved_by": config.approved_by,
                    "note": config.note,
                    "message_count": len(manifest),
                    "fingerprint": fingerprint(manifest),
                }
            ]
        )
        replace_dates(
            con,
            [
                ("activations.send_approvals", row),
                ("activations.send_approval_messages", manifest),
            ],
            day,
        )
    return dg.MaterializeResult(
        metadata={
            "approved_by": config.approved_by,
            "messages": len(manifest),
            "fingerprint": row["fingerprint"][0],
        }
    )


def _manual_entries(sources: SuppressionSources) -> pd.DataFrame | None:
    frames = [f for f in (sources.raw_manual, sources.landed_manual()) if f is not None]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else None


def write_suppressions(con, suppressions: pd.DataFrame) -> None:
    """Replace activations.suppressions (the current list: one row per channel, address,
    reason and source event)."""
    con.execute("create schema if not exists activations")
    con.register("_suppressions", suppressions)
    try:
        con.execute(
            "create or replace table activations.suppressions as "
            "select channel, address, match_key, reason, source, source_event, customer_id, "
            "cast(since as timestamp) as since from _suppressions"
        )
    finally:
        con.unregister("_suppressions")


def _approved_manifest(con, day: dt.date) -> tuple[pd.DataFrame | None, pd.Series | None]:
    """The stored approval of ``day`` (its row) and the messages it binds (None: none)."""
    approval = read(
        con, "select * from activations.send_approvals where as_of_date = $d", {"d": day}
    )
    if approval is None or approval.empty:
        return None, None
    row = approval.iloc[0]
    manifest = read(
        con,
        f"select {', '.join(MANIFEST_COLUMNS)} from activations.send_approval_messages "
        "where as_of_date = $d",
        {"d": day},
    )
    if manifest is None and int(row["message_count"]) == 0:
        manifest = pd.DataFrame(columns=MANIFEST_COLUMNS)
    if manifest is None or len(manifest) != int(row["message_count"]):
        raise ActivationError(
            f"the approval of {day} at {row['approved_at']} was recorded before approvals bound "
            "each message's content; review outbound_messages and approve again"
        )
    return manifest, row


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
    if activation.kill_switch:
        raise dg.Failure(
            "Sending is disabled by the kill switch (TESSERA_SENDS_DISABLED); nothing was sent."
        )
    pause = storage.root / PAUSE_FILE
    with _connection(warehouse) as con:
        messages = con.execute(
            "select * from activations.outbound_messages where as_of_date = $d", {"d": day}
        ).df()
        if not activation.auto_send:
            try:
                approved, row = _approved_manifest(con, day)
                check_approval(
                    day,
                    messages,
                    approved,
                    approved_at=None if row is None else row["approved_at"],
                    approved_by=None if row is None else row["approved_by"],
                )
            except ActivationError as exc:
                raise dg.Failure(str(exc)) from None
        ledger.ensure_schema(con)
        state = ledger.statuses(con, messages["message_key"])
        done = {"sent", "sending", "unknown", "suppressed"} | (
            set() if config.retry_failed else {"failed"}
        )
        settled = set(state.loc[state["status"].isin(done), "message_key"])
        planned = (
            messages[~messages["message_key"].isin(settled)].groupby("channel").size().to_dict()
        )
        today = local_day(dt.datetime.now(dt.UTC), activation.timezone)
        ceiling = DailyCeiling(
            con,
            activation.timezone,
            channel_ceilings(
                sorted(set(messages["channel"])),
                daily_history(con, today, activation.timezone),
                activation.volume_ceiling_factor,
                activation.volume_ceiling_floor,
                activation.explicit_ceilings(),
            ),
        )
        try:
            ceiling(planned)  # the whole plan first: refuse before anything leaves
            sources = SuppressionSources(con, storage.landing_dir)
            write_suppressions(con, sources())
        except ActivationError as exc:
            raise dg.Failure(str(exc)) from None
        providers = activation.build_providers(storage.outbox_dir)
        if activation.live:
            activation.require(providers, set(messages["provider"].unique()))
        context.log.info(
            "sending %d messages for %s via %s", len(messages), day, activation.target_description()
        )
        recheck = SendTimeCheck(sources, lambda window: already_contacted(con, window))
        try:
            report = send_messages(
                con,
                messages,
                providers,
                activation.retry_policy(),
                workers=activation.workers,
                in_flight_policy=activation.in_flight_policy,
                retry_failed=config.retry_failed,
                should_stop=pause.exists,
                recheck=recheck,
                ceiling=ceiling,
            )
        except ActivationError as exc:
            raise dg.Failure(str(exc)) from None
        summary = ledger.partition_summary(con, day)
        failed = con.execute(
            "select message_key, channel, customer_id, status, response_code, error from activations.deliveries "
            "where as_of_date = $d and status in ('failed', 'unknown') order by message_key",
            {"d": day},
        ).df()
    metadata = {
        "dagster/row_count": int(summary["messages"].sum()) if not summary.empty else 0,
        "sent_this_run": report.sent,
        "already_sent": report.already_sent,
        "reconciled_after_crash": report.reconciled_sent,
        "failed": len(failed),
        "suppressed_at_send": len(report.suppressed),
        "suppression_checks": recheck.reads,
        "requests": report.requests,
        "seconds": round(report.seconds, 2),
        "messages_per_second": round(report.messages_per_second),
        "target": activation.target_description(),
        "status_by_channel": dg.MetadataValue.md(markdown_table(summary, max_rows=30)),
    }
    if not failed.empty:
        raise dg.Failure(
            description=(
                f"{len(failed)} message(s) for {day} were not delivered (reasons per row in "
                "activations.deliveries). Rerun to retry transient failures; fix data and rerun "
                "with retry_failed for rejected ones."
            ),
            metadata={
                **metadata,
                "failures": dg.MetadataValue.md(markdown_table(failed, max_rows=20)),
            },
        )
    return dg.MaterializeResult(metadata=metadata)


PROVIDER_EVENT_COLUMNS = (
    "message_id, customer_id, campaign_id, channel, event, occurred_at, revenue"
)


@dg.asset(
    pool=WAREHOUSE_POOL,
    group_name=GROUP,
    kinds={"duckdb", "parquet"},
    key=PROVIDER_EVENTS,
    tags={"tessera/stage": "feedback"},
)
def provider_events(warehouse: DuckDBResource, storage: DataStorage) -> dg.MaterializeResult:
    """Delivery, open, click, bounce, unsubscribe, spam-report and conversion events from the
    providers (landed by the event endpoint as files in landing/campaign_responses), appended
    per file once; they feed suppressions and `campaign_results`. Kept forever."""
    files = landed_event_files(storage.landing_dir)
    with _connection(warehouse) as con:
        con.execute("create schema if not exists activations")
        con.execute(
            """create table if not exists activations.provider_events (
                message_id varchar, customer_id varchar, campaign_id varchar, channel varchar,
                event varchar, occurred_at timestamp, revenue double, source_file varchar,
                ingested_at timestamp)"""
        )
        done = set(
            con.execute("select distinct source_file from activations.provider_events").df()[
                "source_file"
            ]
        )
        new = [f for f in files if f.name not in done]
        for path in new:
            con.execute(
                """insert into activations.provider_events
                select message_id, customer_id, campaign_id, channel, event,
                       cast(occurred_at as timestamp), cast(revenue as double), $name, now()
                from read_parquet($path)""",
                {"name": path.name, "path": str(path)},
            )
        by_event = con.execute(
            "select event, count(*) as events from activations.provider_events group by 1 order by 1"
        ).df()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": int(by_event["events"].sum()) if not by_event.empty else 0,
            "new_files": len(new),
            "events_by_type": dg.MetadataValue.md(markdown_table(by_event)),
        }
    )


def _lift_chart(results: pd.DataFrame) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = results.dropna(subset=["abs_lift_ci_low"]).sort_values("abs_lift")
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(r) + 1.2))
    y = range(len(r))
    ax.errorbar(
        r["abs_lift"] * 100,
        list(y),
        xerr=[
            (r["abs_lift"] - r["abs_lift_ci_low"]) * 100,
            (r["abs_lift_ci_high"] - r["abs_lift"]) * 100,
        ],
        fmt="o",
        capsize=3,
    )
    ax.axvline(0, color="grey", lw=1)
    ax.set_yticks(list(y), r["campaign_id"])
    ax.set_xlabel("conversion lift, percentage points (95% CI)")
    text = png_markdown(fig, "lift per campaign")
    plt.close(fig)
    return text


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
    context: dg.AssetExecutionContext, warehouse: DuckDBResource
) -> dg.MaterializeResult:
    """Per campaign, as of date D: treatment vs control conversion rate and revenue per
    customer over every cohort before D (intent to treat), absolute lift (Newcombe 95% CI),
    relative lift (Katz log CI), revenue lift (Welch CI), p-value and sample sizes. Conversions
    are completed orders in the campaign window plus attributed conversion events."""
    day = dt.date.fromisoformat(context.partition_key)
    with _connection(warehouse) as con:
        require_tables(
            con,
            RESULTS,
            [ASSIGNMENTS, model_key("fct_orders"), model_key("fct_campaign_responses"),
             PROVIDER_EVENTS],
        )  # fmt: skip
        assignments = con.execute(
            "select as_of_date, customer_id, campaign_id, is_control, duration_days from campaigns.campaign_assignments where as_of_date < $d",
            {"d": day},
        ).df()
        orders = con.execute(
            "select customer_id, ordered_at, amount, status from marts.fct_orders where ordered_at < $d",
            {"d": day},
        ).df()
        conversions = (
            con.execute(
                "select customer_id, campaign_id, occurred_at, revenue, message_id "
                "from marts.fct_campaign_responses where event = 'conversion' and occurred_at < $d "
                "union all "
                "select customer_id, campaign_id, occurred_at, revenue, message_id "
                "from activations.provider_events where event = 'conversion' and occurred_at < $d",
                {"d": day},
            )
            .df()
            .drop_duplicates(["message_id", "occurred_at"])
        )
        results = compute_results(day, assignments, orders, conversions.drop(columns="message_id"))
        con.execute("create schema if not exists activations")
        replace_dates(con, [("activations.campaign_results", results)], day)
    view = results[
        [
            "campaign_id",
            "treatment_n",
            "control_n",
            "treatment_rate",
            "control_rate",
            "abs_lift",
            "abs_lift_ci_low",
            "abs_lift_ci_high",
            "rel_lift",
            "p_value",
            "revenue_lift_per_customer",
        ]
    ]
    metadata = {
        "dagster/row_count": len(results),
        "results": dg.MetadataValue.md(markdown_table(view, max_rows=50, float_digits=4)),
    }
    if not results.empty and results["abs_lift_ci_low"].notna().any():
        metadata["lift_chart"] = dg.MetadataValue.md(_lift_chart(results))
    return dg.MaterializeResult(metadata=metadata)
