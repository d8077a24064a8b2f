"""The suppression list read from a warehouse and a landing folder as the pipeline leaves them."""

import duckdb
import pandas as pd
import pytest

from tessera.activations.events import write_atomic_parquet
from tessera.activations.suppression_sources import SuppressionSources
from tessera.warehouse.landing import LandingError, load_landing

RESPONSE_COLUMNS = ["message_id", "customer_id", "campaign_id", "channel", "event", "occurred_at"]


@pytest.fixture
def shop(tmp_path):
    landing = tmp_path / "landing"
    (landing / "campaign_responses").mkdir(parents=True)
    (landing / "campaign_responses" / "history.csv").write_text(
        ",".join(RESPONSE_COLUMNS)
        + "\n"
        # Staging would hold this row back (unknown customer); it still suppresses the address.
        + "k1,ghost,welcome,email,Unsubscribe,2025-02-01T10:00:00+01:00\n"
        + "k2,c2,welcome,email,open,2025-02-01 10:00:00\n"
    )
    (landing / "suppressions").mkdir()
    (landing / "suppressions" / "crm.csv").write_text("address,channel\n+49 151 1111111,sms\n")
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    load_landing(con, landing, ("campaign_responses", "suppressions"))
    con.execute("create schema marts; create schema activations")
    con.execute(
        "create table marts.dim_customers as select * from (values "
        "('c1', ' Ann@Shop.com ', '+4915100000', true, true), "
        "('c2', 'bo@shop.com', null, false, true)) "
        "t(customer_id, email, phone, is_email_opt_in, is_sms_opt_in)"
    )
    con.execute(
        "create table activations.deliveries as select 'k1' as message_key, 'email' as channel, "
        "'ann@shop.com' as address"
    )
    yield con, landing
    con.close()


def test_raw_rows_opt_outs_and_manual_entries_make_the_list(shop):
    con, landing = shop
    sources = SuppressionSources(con, landing)
    listed = sources()
    got = set(zip(listed.channel, listed.address, listed.reason, strict=True))
    assert got == {
        ("email", "ann@shop.com", "unsubscribed"),
        ("email", "bo@shop.com", "opted_out"),
        ("sms", "+491511111111", "do_not_contact"),
    }
    # The CSV is already in the warehouse: the send-time check does not read it again.
    assert sources.landed_events().empty


def test_an_event_file_landed_after_the_load_is_read_and_a_broken_one_stops_the_check(shop):
    con, landing = shop
    sources = SuppressionSources(con, landing)
    late = pd.DataFrame(
        {
            "message_id": ["k9"],
            "customer_id": ["c2"],
            "campaign_id": ["welcome"],
            "channel": ["email"],
            "event": ["bounce"],
            "occurred_at": ["2025-03-01 00:30:00"],
            "revenue": [None],
        }
    )
    write_atomic_parquet(late, landing / "campaign_responses", "events-late.parquet")
    listed = sources()
    assert ("bo@shop.com", "bounced") in set(zip(listed.address, listed.reason, strict=True))
    (landing / "campaign_responses" / "broken.csv").write_text("message_id\nk\n")
    with pytest.raises(LandingError, match="broken.csv: missing column"):
        sources()


def test_a_withdrawal_in_any_staged_record_suppresses_the_address(shop):
    con, landing = shop
    con.execute("create schema staging")
    # A later version of c1 withdrew e-mail consent; the current row has not caught up yet.
    con.execute(
        "create table staging.stg_shop__customers as select * from (values "
        "('c1', 'ann@shop.com', '+4915100000', false, true)) "
        "t(customer_id, email, phone, is_email_opt_in, is_sms_opt_in)"
    )
    listed = SuppressionSources(con, landing)()
    reasons = set(zip(listed.address, listed.reason, strict=True))
    assert ("ann@shop.com", "opted_out") in reasons


def test_sendgrid_event_names_in_raw_and_late_files_suppress(shop):
    # A shop's own SendGrid export: 'spamreport' and 'group_unsubscribe' are not contract
    # names (staging quarantines them) but they are somebody's complaint and unsubscribe.
    con, landing = shop
    con.execute(
        "insert into raw.campaign_responses (message_id, customer_id, campaign_id, channel, "
        "event, occurred_at) values ('k7', 'c2', 'welcome', 'email', 'spamreport', "
        "'2025-02-02 10:00:00')"
    )
    sources = SuppressionSources(con, landing)
    late = pd.DataFrame(
        {
            "message_id": ["k8"],
            "customer_id": ["c1"],
            "campaign_id": ["welcome"],
            "channel": ["sms"],
            "event": ["group_unsubscribe"],
            "occurred_at": ["2025-03-01 00:30:00"],
            "revenue": [None],
        }
    )
    write_atomic_parquet(late, landing / "campaign_responses", "events-late.parquet")
    got = set(zip(sources().channel, sources().address, sources().reason, strict=True))
    assert ("*", "bo@shop.com", "spam_reported") in got
    assert ("sms", "+4915100000", "unsubscribed") in got
