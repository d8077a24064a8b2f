"""Real sendgrid/twilio/requests clients against the local sink: limits, faults, exactly once."""

import json
import logging

import duckdb
import pandas as pd
import requests

from tessera.activations import ledger
from tessera.activations.providers.sendgrid_email import SendGridProvider
from tessera.activations.providers.twilio_sms import TwilioSmsProvider
from tessera.activations.providers.webhook import WebhookProvider
from tessera.activations.sender import RetryPolicy, send_messages
from tessera.activations.sink import FAULT_KINDS, FaultPlan

FAST = RetryPolicy(base_delay_s=0.01, max_attempts=8)


def _providers(sink, key="SG.local-test-key.abcdefghijkl", timeout_s=10.0):
    return {
        "sendgrid": SendGridProvider(
            key, "news@shop.example", host=sink.url, sink_url=sink.url, timeout_s=timeout_s
        ),
        "twilio": TwilioSmsProvider(
            "AC" + "1" * 32,
            "tok-123456",
            "+15005550006",
            base_url=sink.url,
            status_callback_url=f"{sink.url}/status",
            sink_url=sink.url,
            timeout_s=timeout_s,
        ),
        "webhook": WebhookProvider(
            f"{sink.url}/webhook/push", "whsec-1", timeout_s, sink_url=sink.url
        ),
    }


def test_2500_emails_go_out_in_three_valid_requests(sink, messages_factory):
    msgs = messages_factory(2500)
    con = duckdb.connect()
    report = send_messages(con, msgs, _providers(sink), FAST)
    stats = sink.stats()
    assert report.sent == 2500 and report.requests == 3
    assert (
        stats["responses"] == {"202": 3}
        and stats["unique_keys"] == 2500
        and stats["duplicates"] == 0
    )
    received = sink.received()
    assert {r["message_key"] for r in received} == set(msgs.message_key)


def test_rerunning_a_finished_date_sends_nothing(sink, messages_factory):
    msgs = messages_factory(300)
    con = duckdb.connect()
    send_messages(con, msgs, _providers(sink), FAST)
    again = send_messages(con, msgs, _providers(sink), FAST)
    assert again.sent == 0 and again.requests == 0 and again.already_sent == 300
    assert sink.stats()["messages"] == 300


def test_every_fault_kind_still_delivers_each_message_exactly_once(sink, messages_factory):
    sink.set_faults(FaultPlan(rate=0.4, kinds=FAULT_KINDS, seed=11, slow_s=0.6, retry_after_s=0.05))
    email = messages_factory(2200, campaigns=3)
    sms = messages_factory(40, channel="sms")
    hook = messages_factory(600, channel="webhook")
    msgs = pd.concat([email, sms, hook], ignore_index=True)
    con = duckdb.connect()
    report = send_messages(con, msgs, _providers(sink, timeout_s=0.3), FAST, workers=4)
    sink.set_faults(None)
    stats = sink.stats()
    assert report.failed == 0 and report.failed_retryable == 0
    assert stats["unique_keys"] == len(msgs) and stats["duplicates"] == 0
    faults = {
        json.loads(line)["fault"]
        for line in (sink.folder / "requests.jsonl").read_text().splitlines()
    }
    assert {"429", "500", "503", "slow", "drop"} <= faults
    status = ledger.statuses(con, msgs.message_key)
    assert (status.status == "sent").all()
    attempts = con.execute(
        "select outcome, count(*) from activations.delivery_attempts group by 1"
    ).fetchall()
    assert dict(attempts)["transient"] > 0


def test_bad_auth_is_a_401_in_sendgrid_error_shape_and_is_not_retried(sink, messages_factory):
    resp = requests.post(f"{sink.url}/v3/mail/send", json={}, timeout=5)
    assert resp.status_code == 401 and set(resp.json()["errors"][0]) == {"field", "message", "help"}
    con = duckdb.connect()
    sink.server.api_key = "SG.the-right-key.xxxxxxxxxxxxxxxx"
    report = send_messages(con, messages_factory(5), _providers(sink, key="SG.wrong.key"), FAST)
    sink.server.api_key = None
    assert report.failed == 5 and report.requests == 1
    rows = ledger.statuses(con, messages_factory(5).message_key)
    assert set(rows.response_code) == {401} and not rows.is_retryable.any()


def test_an_invalid_recipient_fails_alone_with_the_providers_reason(sink, messages_factory):
    email = messages_factory(4)
    email.loc[2, "address"] = "broken@"
    sms = messages_factory(3, channel="sms")
    sms.loc[1, "address"] = "12"
    con = duckdb.connect()
    report = send_messages(con, pd.concat([email, sms]), _providers(sink), FAST)
    assert report.sent == 5 and report.failed == 2
    failed = con.execute(
        "select channel, error from activations.deliveries where status = 'failed' order by channel"
    ).fetchall()
    assert failed[0][0] == "email" and "personalizations.2.to.0.email" in failed[0][1]
    assert failed[1][0] == "sms" and "21211" in failed[1][1]


def test_webhook_with_a_wrong_secret_is_rejected_by_the_sink(tmp_path, messages_factory):
    from tessera.activations.sink import running_sink

    with running_sink(tmp_path, webhook_secret="right", with_events=False) as sink:
        con = duckdb.connect()
        bad = WebhookProvider(f"{sink.url}/webhook/push", "wrong")
        assert (
            send_messages(
                con, messages_factory(3, channel="webhook"), {"webhook": bad}, FAST
            ).failed
            == 3
        )
        good = WebhookProvider(f"{sink.url}/webhook/push", "right")
        assert (
            send_messages(
                con,
                messages_factory(3, channel="webhook"),
                {"webhook": good},
                FAST,
                retry_failed=True,
            ).sent
            == 3
        )


def test_no_secret_reaches_logs_ledger_or_errors(sink, messages_factory, caplog):
    key = "SG.VerySecretKeyValue0001.ZZZsecretZZZsecretZZZ"
    token = "twilio-secret-token-98765"
    sink.server.api_key = "SG.some-other-key.xxxxxxxxxxxxxxxx"  # force 401 responses
    caplog.set_level(logging.DEBUG)
    providers = _providers(sink, key=key)
    providers["twilio"] = TwilioSmsProvider(
        "AC" + "2" * 32, token, "+15005550006", base_url=sink.url
    )
    con = duckdb.connect()
    msgs = pd.concat([messages_factory(3), messages_factory(2, channel="sms")])
    send_messages(con, msgs, providers, FAST)
    sink.server.api_key = None
    dumped = (
        con.execute("select * from activations.deliveries").df().to_csv()
        + con.execute("select * from activations.delivery_attempts").df().to_csv()
    )
    for secret in (key, token):
        assert secret not in caplog.text
        assert secret not in dumped
    assert "python_http_client" in caplog.text or "Request" in caplog.text  # debug logging was on


def test_event_endpoint_rejects_unsigned_and_badly_signed_posts(sink):
    raw = b'[{"event":"open","timestamp":1740800000,"message_key":"k1","customer_id":"c1","campaign_id":"w"}]'
    assert requests.post(sink.events_url, data=raw, timeout=5).status_code == 401
    headers = {
        "X-Twilio-Email-Event-Webhook-Signature": "MEUCIQ==",
        "X-Twilio-Email-Event-Webhook-Timestamp": "1",
    }
    assert requests.post(sink.events_url, data=raw, headers=headers, timeout=5).status_code == 403
    assert not list((sink.folder.parent / "landing").glob("campaign_responses/*.parquet"))


def test_sink_events_land_as_contract_files_dated_from_the_campaign_date(sink, messages_factory):
    msgs = messages_factory(1500, day="2024-06-10")
    send_messages(duckdb.connect(), msgs, _providers(sink), FAST)
    sink.flush()
    landed = pd.read_parquet(sink.folder.parent / "landing" / "campaign_responses")
    assert list(landed.columns) == [
        "message_id",
        "customer_id",
        "campaign_id",
        "channel",
        "event",
        "occurred_at",
        "revenue",
    ]
    assert set(landed.message_id) <= set(msgs.message_key)
    times = pd.to_datetime(landed.occurred_at)
    assert times.min() >= pd.Timestamp("2024-06-10") and times.max() < pd.Timestamp("2024-06-18")
    counts = landed.event.value_counts()
    assert counts["delivered"] > 1300 and counts["open"] > 100 and counts["conversion"] > 10
    assert landed.loc[landed.event == "conversion", "revenue"].gt(0).all()
