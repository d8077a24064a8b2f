"""Suppressions by address: shared addresses, opt-outs, manual entries, the send-time check."""

import datetime as dt

import duckdb
import pandas as pd
import pytest

from tessera.activations import ledger
from tessera.activations.content import ChannelContent, content_frame
from tessera.activations.outbound import build_outbound
from tessera.activations.providers.base import Provider
from tessera.activations.sender import send_messages
from tessera.activations.suppressions import (
    SendTimeCheck,
    SuppressionError,
    already_contacted,
    build_suppressions,
    email_sql,
    normalize_email,
    normalize_phone,
    phone_sql,
)

D = dt.date(2025, 3, 1)


def _outbound(customers, events=None, manual=None, campaigns=("welcome",), sent=None):
    ids = list(customers["customer_id"])
    assignments = pd.concat(
        [
            pd.DataFrame(
                {
                    "as_of_date": D,
                    "customer_id": ids,
                    "campaign_id": camp,
                    "channel": customers.get("channel", "email"),
                    "is_control": False,
                    "priority": 10 - i,
                }
            )
            for i, camp in enumerate(campaigns)
        ]
    )
    events = (
        events
        if events is not None
        else pd.DataFrame(columns=["customer_id", "channel", "event", "occurred_at"])
    )
    content = content_frame([ChannelContent(c, "email", "d-abc", "10% off") for c in campaigns])
    return build_outbound(
        D,
        assignments,
        customers,
        pd.DataFrame({"customer_id": ids}),
        pd.DataFrame({"customer_id": ids}),
        events,
        content,
        manual=manual,
        sent=sent,
    )


def _event(customer_id, channel, event, occurred_at, message_id):
    """One provider event, as campaign_responses rows arrive."""
    return pd.DataFrame(
        {
            "message_id": [message_id],
            "customer_id": [customer_id],
            "channel": [channel],
            "event": [event],
            "occurred_at": [pd.Timestamp(occurred_at)],
        }
    )


def _customers(emails, opt_in=True, phones=None):
    n = len(emails)
    return pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "email": emails,
            "phone": phones or ["+4915112345678"] * n,
            "is_email_opt_in": opt_in if isinstance(opt_in, list) else [opt_in] * n,
            "is_sms_opt_in": True,
        }
    )


@pytest.mark.parametrize(
    ("event", "reason"),
    [("unsubscribe", "unsubscribed"), ("bounce", "bounced"), ("spam_report", "spam_reported")],
)
def test_an_event_on_one_customer_suppresses_every_customer_with_that_address(event, reason):
    # c0 and c2 share an address written differently; c0's event must stop c2's mail too.
    customers = _customers([" ANN@Shop.com ", "bo@shop.com", "ann@shop.com"])
    events = _event("c0", "email", event, "2025-02-20", "k-old")
    messages, excluded = _outbound(customers, events)
    assert list(messages["customer_id"]) == ["c1"]
    assert dict(zip(excluded.customer_id, excluded.reason, strict=True)) == {
        "c0": reason,
        "c2": reason,
    }


def test_an_opt_out_on_one_record_suppresses_the_address_for_the_others():
    customers = _customers(["ann@shop.com", "ANN@shop.com ", "bo@shop.com"], [False, True, True])
    messages, excluded = _outbound(customers)
    assert list(messages["customer_id"]) == ["c2"]
    assert dict(zip(excluded.customer_id, excluded.reason, strict=True)) == {
        "c0": "no_consent",
        "c1": "opted_out",
    }


def test_an_event_suppresses_the_address_its_message_went_to_even_after_an_address_change():
    customers = _customers(["new@shop.com", "old@shop.com"])
    events = _event("c0", "email", "unsubscribe", "2025-02-20", "k1")
    sent = pd.DataFrame({"message_key": ["k1"], "channel": ["email"], "address": ["old@shop.com"]})
    messages, excluded = _outbound(customers, events, sent=sent)
    assert list(excluded["customer_id"]) == ["c1"] and list(messages["customer_id"]) == ["c0"]


def test_manual_entries_match_normalised_addresses_and_phone_numbers_on_their_channels():
    customers = _customers(
        ["ann@shop.com", "bo@shop.com", "cy@shop.com"],
        phones=["+49 151 1234-5678", "0049 151 99999999", "+33612345678"],
    )
    customers["channel"] = ["email", "sms", "sms"]
    manual = pd.DataFrame(
        {
            "address": ["\u00a0Ann@SHOP.com", "+4915199999999", "cy@shop.com"],
            "channel": ["", "SMS", "email"],
            "reason": ["crm do-not-contact", None, None],
            "_source_file": "suppressions/crm.csv",
            "_source_row": [1, 2, 3],
        }
    )
    messages, excluded = _outbound(customers, manual=manual)
    # cy's e-mail is suppressed, not the phone her sms goes to.
    assert list(messages["customer_id"]) == ["c2"]
    assert set(excluded["reason"]) == {"do_not_contact"} and len(excluded) == 2


def test_a_manual_entry_with_an_unknown_channel_names_its_file_and_row():
    manual = pd.DataFrame(
        {"address": ["a@x.com"], "channel": ["mail"], "_source_file": "suppressions/crm.csv"}
    )
    manual["_source_row"] = 7
    with pytest.raises(SuppressionError, match=r"suppressions/crm.csv row 7: channel 'mail'"):
        build_suppressions(None, None, manual)


@pytest.mark.parametrize(
    ("address", "channel"),
    [
        ("0151 2345678", "sms"),
        ("0151 2345678", ""),
        ("(0)151-2345678", "all"),
        ("2125551234", "sms"),
    ],
)
def test_a_manual_phone_number_without_country_code_is_refused_not_silently_unmatched(
    address, channel
):
    # Customers' numbers are international: a national entry would suppress nobody.
    manual = pd.DataFrame(
        {
            "address": ["ok@x.com", address],
            "channel": ["", channel],
            "_source_file": "suppressions/crm.csv",
            "_source_row": [1, 2],
        }
    )
    with pytest.raises(
        SuppressionError, match=r"suppressions/crm.csv row 2: phone number .*country"
    ):
        build_suppressions(None, None, manual)


@pytest.mark.parametrize(
    ("address", "channel"),
    [("+49 151 2345678", "sms"), ("0049 151 2345678", ""), ("0012345", "webhook"), ("123456", "")],
)
def test_international_numbers_and_customer_ids_are_accepted_as_manual_entries(address, channel):
    manual = pd.DataFrame(
        {"address": [address], "channel": [channel], "_source_file": "s.csv", "_source_row": [1]}
    )
    assert len(build_suppressions(None, None, manual)) == 1


def test_missing_sources_give_an_empty_list():
    assert build_suppressions(None, None, None).empty


def test_one_message_per_address_and_channel_on_a_date_across_campaigns():
    customers = _customers(["ann@shop.com", "Ann@Shop.com"])
    messages, excluded = _outbound(customers, campaigns=("high", "low"))
    assert list(zip(messages.campaign_id, messages.customer_id, strict=True)) == [("high", "c0")]
    assert set(excluded["reason"]) == {"duplicate_address"} and len(excluded) == 3


@pytest.mark.parametrize(
    "text",
    [" ANN@Shop.com ", "\u00a0a.b+x@Gmail.COM\u200b", "", None, "plain"],
)
def test_python_and_sql_email_normalisation_agree(text):
    got = duckdb.sql(f"select {email_sql('x')} from (select $1::varchar as x)", params=[text])
    assert got.fetchall()[0][0] == normalize_email(text)


@pytest.mark.parametrize(
    "text",
    [
        "+49 151 1234-5678",
        "0049151 12345678",
        "0151 123",
        "(555) 123-4567",
        "+49 (0)151 1234-5678",
        "0049 ( 0 ) 15112345678",
        "(0)151 1234",
        "",
        None,
        "x",
    ],
)
def test_python_and_sql_phone_normalisation_agree(text):
    got = duckdb.sql(f"select {phone_sql('x')} from (select $1::varchar as x)", params=[text])
    assert got.fetchall()[0][0] == normalize_phone(text)


class Recording(Provider):
    name = "sendgrid"
    max_batch = 10

    def __init__(self):
        self.sent: list[str] = []

    def send_batch(self, batch):
        self.sent += [m.address for m in batch]
        return {m.key: None for m in batch}


def test_the_list_is_read_again_before_each_window_and_a_late_unsubscribe_is_not_sent(
    messages_factory,
):
    msgs = messages_factory(40)
    late = msgs["address"].iloc[30]
    provider = Recording()

    def load():
        # An unsubscribe lands while the first window is out (as at D 00:30 before a 06:00 send).
        if not provider.sent:
            return build_suppressions(None, None, None)
        return build_suppressions(
            None, None, pd.DataFrame({"address": [late.upper()], "_source_row": [1]})
        )

    check = SendTimeCheck(load)
    con = duckdb.connect()
    report = send_messages(
        con, msgs, {"sendgrid": provider}, window_messages=10, workers=1, recheck=check
    )
    assert late not in provider.sent and len(provider.sent) == 39 and check.reads == 4
    row = con.execute(
        "select status, error from activations.deliveries where address = $a", {"a": late}
    ).fetchall()
    assert row[0][0] == "suppressed" and row[0][1].startswith("do_not_contact")
    assert report.suppressed[0][2].startswith("do_not_contact")
    # A rerun neither sends it nor re-marks anything.
    again = send_messages(con, msgs, {"sendgrid": provider}, recheck=check)
    assert again.sent == 0 and late not in provider.sent


def test_an_address_already_contacted_that_date_under_another_key_is_not_mailed_again(
    messages_factory,
):
    first = messages_factory(5, campaigns=1)
    con, provider = duckdb.connect(), Recording()
    send_messages(con, first, {"sendgrid": provider})
    # The matrix rebuilt for the same date under another campaign: new keys, same addresses.
    second = messages_factory(8, campaigns=1)
    second["campaign_id"] = "other"
    second["message_key"] = second["message_key"] + "-other"
    check = SendTimeCheck(
        lambda: build_suppressions(None, None, None), lambda w: already_contacted(con, w)
    )
    report = send_messages(con, second, {"sendgrid": provider}, recheck=check)
    assert report.sent == 3 and len(provider.sent) == len(set(provider.sent)) == 8
    reasons = {r for _, _, r in report.suppressed}
    assert len(report.suppressed) == 5 and all(
        r.startswith("address_already_contacted") for r in reasons
    )
    assert ledger.STATUSES[-1] == "suppressed"


@pytest.mark.parametrize(
    ("channel", "suppressed_on"),
    [
        ("E-mail", {"email", "sms", "webhook", "direct_mail"}),
        ("mail", {"email", "sms", "webhook", "direct_mail"}),
        ("push", {"email", "sms", "webhook", "direct_mail"}),
        ("", {"email", "sms", "webhook", "direct_mail"}),
        (None, {"email", "sms", "webhook", "direct_mail"}),
        # Our own channel, written with case and white space: that channel only.
        (" EMAIL\u00a0", {"email"}),
    ],
)
def test_an_unsubscribe_on_a_channel_we_do_not_know_holds_on_every_channel(channel, suppressed_on):
    # 'E-mail' used to become a suppression on a channel no message has: the customer who
    # unsubscribed was mailed again, and so was every record sharing the address.
    customers = _customers(["ann@shop.com", "Ann@shop.com"])
    events = _event("c0", channel, "unsubscribe", "2025-02-01", "m1")
    messages, excluded = _outbound(customers, events=events)
    assert messages.empty
    assert set(excluded["reason"]) == {"unsubscribed"}
    sup = build_suppressions(events, customers)
    assert set(sup["channel"]) == suppressed_on


def test_an_sms_unsubscribe_leaves_email_reachable():
    customers = _customers(["ann@shop.com"])
    events = _event("c0", "sms", "unsubscribe", "2025-02-01", "m1")
    messages, _ = _outbound(customers, events=events)
    assert list(messages.customer_id) == ["c0"]


def test_the_ledger_channel_of_the_message_wins_over_the_event_channel():
    # The event says sms, but message m1 went by e-mail to an address the record no longer has.
    customers = _customers(["new@shop.com", "old@shop.com"])
    events = _event("c0", "sms", "unsubscribe", "2025-02-01", "m1")
    sent = pd.DataFrame({"message_key": ["m1"], "channel": ["email"], "address": ["old@shop.com"]})
    sup = build_suppressions(events, customers, sent=sent)
    assert set(zip(sup.channel, sup.address, strict=True)) == {("email", "old@shop.com")}


@pytest.mark.parametrize(
    "text", ["+49 (0)151 1234-5678", "+49(0)15112345678", "0049 (0) 151 12345678"]
)
def test_a_bracketed_trunk_zero_is_the_same_number(text):
    assert normalize_phone(text) == "+4915112345678"
    # A national number keeps its zero: without a country code it is not dropped.
    assert normalize_phone("(0)151 1234") == "01511234"


@pytest.mark.parametrize("written", ["<ann@shop.com>", "Ann<ann@shop.com>", "mailto:ann@shop.com"])
def test_an_address_the_client_would_rewrite_is_excluded_in_the_plan(written):
    # ann@shop.com unsubscribed; another record holds her address in a form that SendGrid's
    # client rewrites to ann@shop.com. The plan shows it as invalid, never as a message.
    customers = _customers(["ann@shop.com", written])
    events = _event("c0", "email", "unsubscribe", "2025-02-01", "m1")
    messages, excluded = _outbound(customers, events=events)
    assert messages.empty
    assert dict(zip(excluded.customer_id, excluded.reason, strict=True)) == {
        "c0": "unsubscribed",
        "c1": "invalid_contact",
    }


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ("spamreport", "spam_reported"),
        ("group_unsubscribe", "unsubscribed"),
        ("Unsubscribed", "unsubscribed"),
        (" bounced ", "bounced"),
        ("SPAM_REPORTED", "spam_reported"),
    ],
)
def test_sendgrid_and_past_tense_event_names_in_a_landed_file_suppress(event, reason):
    # A shop landing its own SendGrid export writes 'spamreport' and 'group_unsubscribe';
    # staging quarantines them as unknown types, and they used to suppress nobody.
    customers = _customers(["ann@shop.com", "ann@shop.com"])
    events = _event("c0", "email", event, "2025-02-01", "m1")
    messages, excluded = _outbound(customers, events=events)
    assert messages.empty and set(excluded["reason"]) == {reason}


@pytest.mark.parametrize("phone", ["015112345678", "0151 1234 5678", "+015112345678", "+4915"])
def test_sms_to_a_number_that_is_not_international_is_invalid(phone):
    # '+49 151 ...' opted out; '0151 ...' may be the same phone, and nothing can tell.
    customers = _customers(["a@shop.com", "b@shop.com"], phones=["+4915112345678", phone])
    customers["channel"] = "sms"
    customers["is_sms_opt_in"] = [False, True]
    messages, excluded = _outbound(customers)
    assert messages.empty
    assert dict(zip(excluded.customer_id, excluded.reason, strict=True)) == {
        "c0": "no_consent",
        "c1": "invalid_contact",
    }
