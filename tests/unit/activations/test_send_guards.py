"""Guards of the send loop against a recording fake provider: unique keys, send-time checks."""

import duckdb
import pandas as pd
import pytest

from tessera.activations import ledger
from tessera.activations.errors import SendBlockedError
from tessera.activations.providers.base import Provider
from tessera.activations.sender import send_messages


class Recording(Provider):
    name = "sendgrid"
    max_batch = 1000

    def __init__(self):
        self.sent: list[str] = []

    def send_batch(self, batch):
        self.sent += [m.key for m in batch]
        return {m.key: f"id-{m.key}" for m in batch}


def test_a_duplicated_outbound_row_is_registered_and_sent_once(messages_factory):
    msgs = messages_factory(5)
    doubled = pd.concat([msgs, msgs.iloc[[1, 1, 3]]], ignore_index=True)
    con, provider = duckdb.connect(), Recording()
    report = send_messages(con, doubled, {"sendgrid": provider})
    assert sorted(provider.sent) == sorted(msgs.message_key) and report.sent == 5
    assert con.execute("select count(*) from activations.deliveries").fetchall()[0][0] == 5


def test_rows_sharing_a_key_but_not_their_content_stop_the_run_before_any_request(
    messages_factory,
):
    msgs = messages_factory(3)
    other = msgs.iloc[[0]].assign(address="attacker@evil.example")
    con, provider = duckdb.connect(), Recording()
    with pytest.raises(SendBlockedError, match="1 message key.* several different outbound rows"):
        send_messages(con, pd.concat([msgs, other]), {"sendgrid": provider})
    assert provider.sent == []


def test_the_ledger_itself_refuses_a_second_row_for_a_key(messages_factory):
    con = duckdb.connect()
    ledger.ensure_schema(con)
    ledger.register(con, messages_factory(2))
    with pytest.raises(duckdb.ConstraintException):
        con.execute(
            "insert into activations.deliveries (message_key, as_of_date, status) "
            "select message_key, as_of_date, 'pending' from activations.deliveries limit 1"
        )


def test_an_old_ledger_without_the_index_gains_it_on_start(messages_factory):
    con = duckdb.connect()
    con.execute("create schema activations")
    con.execute(
        "create table activations.deliveries (message_key varchar not null, as_of_date date "
        "not null, campaign_id varchar, customer_id varchar, channel varchar, provider varchar, "
        "status varchar not null, attempts integer not null default 0, batch_id varchar, "
        "provider_message_id varchar, response_code integer, response_excerpt varchar, "
        "error varchar, is_retryable boolean, created_at timestamp, first_attempt_at timestamp, "
        "last_attempt_at timestamp, sent_at timestamp)"
    )
    ledger.ensure_schema(con)
    assert ledger.register(con, messages_factory(3)) == 3
    with pytest.raises(duckdb.ConstraintException):
        con.execute(
            "insert into activations.deliveries (message_key, as_of_date, status) "
            "select message_key, as_of_date, 'pending' from activations.deliveries limit 1"
        )
