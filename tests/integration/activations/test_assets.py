"""The activation assets on a tiny warehouse: review, approval, send once, events, results."""

import dagster as dg
import duckdb
import pandas as pd

from tessera.orchestration.defs.activations.assets import (
    campaign_results,
    deliveries,
    outbound_messages,
    provider_events,
    send_approval,
)
from tessera.orchestration.defs.activations.resources import (
    ActivationSettings,
    build_activation_settings,
)
from tessera.settings import DEMO_CATALOG

D = "2025-03-01"
N = 400


def _warehouse(path):
    rng = pd.Series(range(N))
    with duckdb.connect(str(path)) as con:
        for schema in ("campaigns", "marts", "ml"):
            con.execute(f"create schema {schema}")
        a = pd.DataFrame(
            {
                "as_of_date": pd.Timestamp(D).date(),
                "customer_id": "c" + rng.astype(str),
                "campaign_id": "winback",
                "channel": "email",
                "micro_segment_id": "m1",
                "is_control": rng % 5 == 0,
                "priority": 1,
                "duration_days": 7,
                "locked_until": pd.Timestamp("2025-03-08").date(),
            }
        )
        c = pd.DataFrame(
            {
                "customer_id": "c" + rng.astype(str),
                "email": "c" + rng.astype(str) + "@example.com",
                "phone": None,
                "first_name": "Ann",
                "is_email_opt_in": rng % 10 != 1,
                "is_sms_opt_in": False,
                "is_email_valid": True,
                "is_phone_valid": False,
            }
        )
        f = pd.DataFrame(
            {
                "as_of_date": pd.Timestamp(D).date(),
                "customer_id": c.customer_id,
                "top_category": "ski",
                "top_viewed_category_30d": "ski",
            }
        )
        o = pd.DataFrame(
            {
                "customer_id": ["c1"],
                "ordered_at": [pd.Timestamp("2025-03-02")],
                "amount": [10.0],
                "status": ["completed"],
            }
        )
        con.register("a", a)
        con.register("c", c)
        con.register("f", f)
        con.register("o", o)  # noqa: E702
        con.execute("create table campaigns.campaign_assignments as select * from a")
        con.execute("create table marts.dim_customers as select * from c")
        con.execute("create table marts.customer_features as select * from f")
        con.execute("create table marts.fct_orders as select * from o")
        # Upstream tables the assets require, empty here: no scores, no responses yet.
        con.execute(
            "create table ml.customer_scores "
            "(as_of_date date, customer_id varchar, top_drivers varchar)"
        )
        con.execute(
            "create table marts.fct_campaign_responses (message_id varchar, customer_id varchar, "
            "campaign_id varchar, channel varchar, event varchar, occurred_at timestamp, "
            "revenue double)"
        )


def _run(assets, resources, activation, run_config=None, partition=D):
    return dg.materialize(
        assets,
        resources={**resources, "activation": activation},
        partition_key=partition,
        run_config=run_config,
        raise_on_error=False,
    )


def test_sends_wait_for_approval_then_go_out_once(setup):
    db, resources, sink = setup
    act = ActivationSettings(sink_url=sink.url)
    review = _run([outbound_messages], resources, act)
    assert review.success
    meta = review.asset_materializations_for_node("activations__outbound_messages")[0].metadata
    assert (
        meta["messages"].value == N - N // 5 - N // 10
        and "winback" in meta["counts_per_campaign_channel"].value
    )
    blocked = _run([deliveries], resources, act)
    assert not blocked.success and sink.stats()["messages"] == 0
    assert _run([send_approval], resources, act).success
    sent = _run([deliveries], resources, act)
    assert sent.success and sink.stats()["unique_keys"] == meta["messages"].value
    assert _run([deliveries], resources, act).success and sink.stats()["duplicates"] == 0
    with duckdb.connect(str(db)) as con:
        assert (
            con.execute(
                "select count(*) from activations.deliveries where status <> 'sent'"
            ).fetchall()[0][0]
            == 0
        )


def test_kill_switch_and_volume_ceiling_stop_before_any_request(setup):
    _, resources, sink = setup
    assert _run([outbound_messages], resources, ActivationSettings(sink_url=sink.url)).success
    off = _run(
        [deliveries],
        resources,
        ActivationSettings(sink_url=sink.url, auto_send=True, kill_switch=True),
    )
    assert not off.success
    capped = _run(
        [deliveries],
        resources,
        ActivationSettings(sink_url=sink.url, auto_send=True, max_daily_email=10),
    )
    assert not capped.success and sink.stats()["messages"] == 0


def test_events_flow_back_and_results_are_measured(setup):
    db, resources, sink = setup
    act = ActivationSettings(sink_url=sink.url, auto_send=True)
    assert _run([outbound_messages, deliveries], resources, act).success
    assert dg.materialize([provider_events], resources={**resources}).success
    result = _run([campaign_results], resources, act, partition="2025-03-09")
    assert result.success
    with duckdb.connect(str(db)) as con:
        events = con.execute("select count(*) from activations.provider_events").fetchall()[0][0]
        row = con.execute(
            "select treatment_n, control_n, treatment_conversions from activations.campaign_results"
        ).fetchall()[0]
    assert events > N // 2 and row[0] == N - N // 5 and row[1] == N // 5 and row[2] > 0


def test_without_live_flag_every_provider_targets_the_sink_and_secrets_stay_env_vars(
    monkeypatch, tmp_path
):
    env = {
        "SENDGRID_API_KEY": "SG.real-looking.key-value-123",
        "TESSERA_SINK_URL": "http://127.0.0.1:9999",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    act = build_activation_settings(env)
    providers = act.build_providers(tmp_path)
    assert providers["sendgrid"].host == "http://127.0.0.1:9999"
    assert "real-looking" not in repr(providers) and not act.live


def test_content_changed_after_approval_is_not_sent_and_the_refusal_names_it(setup):
    db, resources, sink = setup
    act = ActivationSettings(sink_url=sink.url)
    assert _run([outbound_messages], resources, act).success
    assert _run([send_approval], resources, act).success
    with duckdb.connect(str(db)) as con:
        # Same message keys, other content: what a rebuild after a catalog or data edit gives.
        con.execute(
            "update activations.outbound_messages set address = 'attacker@evil.example' "
            "where customer_id in ('c2', 'c3')"
        )
        con.execute(
            "update activations.outbound_messages set template_id = 'd-" + "e" * 32 + "', "
            "personalization = replace(personalization, 'Ann', 'Mallory') where customer_id = 'c4'"
        )
    blocked = _run([deliveries], resources, act)
    assert not blocked.success and sink.stats()["messages"] == 0
    failure = blocked.get_step_failure_events()[0].event_specific_data.error.message
    assert (
        "2 addresses, 1 template id, 1 personalization changed" in failure
        and "since approval at" in failure
    )
    assert _run([send_approval], resources, act).success
    assert _run([deliveries], resources, act).success and sink.stats()["duplicates"] == 0


def test_a_configured_catalog_that_is_missing_stops_the_plan_instead_of_placeholder_templates(
    setup, tmp_path
):
    _, resources, sink = setup
    missing = tmp_path / "catalog.yml"
    act = ActivationSettings(sink_url=sink.url, auto_send=True, catalog_path=str(missing))
    result = _run([outbound_messages, deliveries], resources, act)
    assert not result.success
    failure = result.get_step_failure_events()[0].event_specific_data.error
    assert f"{missing}: 1 problem(s)" in failure.to_string()
    assert "cannot read the file" in failure.to_string()
    assert sink.stats()["messages"] == 0


def test_an_unknown_template_environment_stops_the_plan_before_any_request(setup):
    _, resources, sink = setup
    catalog = str(DEMO_CATALOG)
    act = ActivationSettings(
        sink_url=sink.url, auto_send=True, catalog_path=catalog, environment="prodution"
    )
    result = _run([outbound_messages, deliveries], resources, act)
    assert not result.success
    failure = result.get_step_failure_events()[0].event_specific_data.error
    assert "TESSERA_ENVIRONMENT='prodution'" in failure.to_string()
    assert sink.stats()["messages"] == 0
