"""The suppression list: addresses nobody may contact again, and the check before each request.

Suppressions are keyed on the normalised **address** (e-mail or phone) and channel, not on the
customer: two customer records that share an address share its suppressions. The list is
fed by

- provider events (tessera.activations.event_store: every landed campaign_responses row,
  also in files landed since the raw load): ``unsubscribe`` and ``bounce`` suppress the
  address on the message's channel (the ledger's, else the event's), or on every channel when
  the event names a channel we do not know (``E-mail``, ``push``, empty); ``spam_report``
  suppresses it and the customer's other addresses on every channel;
- opt-outs: a customer record whose consent for a channel is false suppresses that address for
  every record that shares it;
- manual entries (the optional ``suppressions`` landing source, e.g. a CRM's do-not-contact list).

Normalisation (both sides of every comparison go through the same rule):

- e-mail: surrounding white space (including no-break and zero-width spaces) removed, lower
  case. Dots and ``+tags`` are kept: only some mailbox providers ignore them, SendGrid's own
  suppressions compare the whole address, and folding them could suppress another person's
  mailbox on a domain that does not.
- phone: every character but digits dropped; a number written with ``+`` or ``00`` gets one
  leading ``+`` (``+49 151 1234-5678`` and ``0049151 12345678`` are ``+4915112345678``).
  Matching ignores that ``+``, so a number written with and without it is one number. The
  trunk zero written in brackets after a country code (``+44 (0)20 ...``) is dropped. National
  numbers (``0151 ...``) stay as written: without a country they cannot be made international.
- webhook and direct mail: the customer id is the address.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import duckdb
import pandas as pd

from tessera.activations.errors import ActivationError
from tessera.quality import phones as quality_phones

CHANNELS = ("email", "sms", "webhook", "direct_mail")
#: A suppression on every channel (spam reports, manual entries without a channel).
ALL_CHANNELS = "*"

#: Provider events that suppress, and the exclusion/ledger reason each becomes.
EVENT_REASONS = {"unsubscribe": "unsubscribed", "bounce": "bounced", "spam_report": "spam_reported"}
#: Other names of the same events in files a shop lands itself (SendGrid's own event names in
#: an export, past-tense spellings). Staging quarantines them as unknown event types; they
#: still suppress, as every raw row does.
EVENT_ALIASES = {
    "spamreport": "spam_report",
    "spam_reported": "spam_report",
    "group_unsubscribe": "unsubscribe",
    "unsubscribed": "unsubscribe",
    "bounced": "bounce",
}
#: Every event name that suppresses (lower case), for filters over raw rows.
SUPPRESSING_EVENTS = (*EVENT_REASONS, *EVENT_ALIASES)


def event_sql(col: str) -> str:
    """DuckDB expression: the event's canonical name (aliases mapped), lower case, trimmed."""
    text = f"lower(trim(cast({col} as varchar), '{_WS_SQL}'))"
    cases = " ".join(f"when '{a}' then '{e}'" for a, e in EVENT_ALIASES.items())
    return f"(case {text} {cases} else {text} end)"


#: Every reason, in the documented order of attribution (first match wins).
REASON_ORDER = ("unsubscribed", "bounced", "spam_reported", "opted_out", "do_not_contact")

SUPPRESSION_COLUMNS = [
    "channel",
    "address",
    "match_key",
    "reason",
    "source",
    "source_event",
    "customer_id",
    "since",
]
EVENT_COLUMNS = ["message_id", "customer_id", "channel", "event", "occurred_at", "source"]
MANUAL_COLUMNS = ["address", "channel", "reason", "since", "_source_file", "_source_row"]

#: White space a pasted address may carry: ASCII, no-break, the Unicode spaces, zero-width ones.
_WS = " \t\n\r\f\v\u00a0\u1680\u2028\u2029\u202f\u205f\u3000\ufeff" + "".join(
    chr(c) for c in range(0x2000, 0x200C)
)
_WS_SQL = _WS.replace("'", "''")


class SuppressionError(ActivationError):
    """A manual suppression entry cannot be applied as written."""


def normalize_email(value: object) -> str | None:
    """Trimmed and lower-cased; None for empty values."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    text = str(value).strip(_WS).lower()
    return text or None


def normalize_phone(value: object) -> str | None:
    """International numbers in E.164 ('+' and digits; '+' or '00' written, '(0)' dropped);
    a national one stays digits, matching no customer (tessera.quality.phones, no country)."""
    return quality_phones.normalize_phone(value)


def match_key(address: str | None) -> str | None:
    """What suppressions compare: the address without a phone's leading '+'."""
    if address is None:
        return None
    return address[1:] if address.startswith("+") else address


def email_sql(col: str) -> str:
    """DuckDB expression equal to :func:`normalize_email`."""
    return f"nullif(lower(trim(cast({col} as varchar), '{_WS_SQL}')), '')"


def phone_sql(col: str) -> str:
    """DuckDB expression equal to :func:`normalize_phone`."""
    return quality_phones.phone_sql(col)


def match_key_sql(col: str) -> str:
    return f"(case when starts_with({col}, '+') then substr({col}, 2) else {col} end)"


def address_sql(channel: str, email: str, phone: str, customer_id: str) -> str:
    """The normalised address a message on ``channel`` goes to."""
    return (
        f"(case {channel} when 'email' then {email_sql(email)} "
        f"when 'sms' then {phone_sql(phone)} else cast({customer_id} as varchar) end)"
    )


def manual_entries(manual: pd.DataFrame) -> pd.DataFrame:
    """Manual do-not-contact rows as suppressions.

    ``channel`` may be empty, ``all`` or ``*`` (every channel) or one of :data:`CHANNELS`
    (any case); anything else is an error naming the file and row, since guessing a channel
    could leave the address reachable on the intended one. Rows without an address suppress
    nothing and are skipped. ``since`` is kept as information: an entry applies at once.
    """
    if manual is None or manual.empty:
        return pd.DataFrame(columns=SUPPRESSION_COLUMNS)
    m = _frame(manual, MANUAL_COLUMNS).astype(object)
    known = ", ".join(f"'{c}'" for c in CHANNELS)
    con = duckdb.connect()
    try:
        con.register("m", m)
        con.execute(
            f"""
            create temp table entries as
            select *,
                case when ch in ('', 'all', '*') then '*' else ch end as channel_n,
                case
                    when contains(addr, '@') or ch = 'email' then {email_sql("addr")}
                    when ch = 'sms' or regexp_full_match(addr, '[+0-9 ()./\-]+')
                        then {phone_sql("addr")}
                    else nullif(addr, '')
                end as address_n
            from (
                select cast(channel as varchar) as channel_raw,
                       lower(coalesce(trim(cast(channel as varchar), '{_WS_SQL}'), '')) as ch,
                       trim(cast(address as varchar), '{_WS_SQL}') as addr,
                       nullif(trim(cast(reason as varchar)), '') as note,
                       cast(since as varchar) as since_raw,
                       cast(_source_file as varchar) as file,
                       cast(_source_row as varchar) as row_n
                from m
            )
            """
        )
        bad = con.execute(
            f"""select file, row_n, channel_raw from entries
            where ch not in ('', 'all', '*', {known}) limit 1"""
        ).fetchall()
        if bad:
            file, row, channel = bad[0]
            raise SuppressionError(
                f"{file or 'suppressions'} row {row}: channel {channel!r} is not one of "
                f"{', '.join(CHANNELS)}, all or empty (every channel); fix the entry"
            )
        national = con.execute(
            """select file, row_n, addr from entries
            where address_n is not null and not starts_with(address_n, '+')
              and regexp_full_match(address_n, '[0-9]{6,}')
              and (ch = 'sms' or (channel_n = '*' and regexp_full_match(address_n, '0[1-9].*')))
            limit 1"""
        ).fetchall()
        if national:
            file, row, address = national[0]
            raise SuppressionError(
                f"{file or 'suppressions'} row {row}: phone number {address!r} has no country "
                "code, so it would match no customer (customers' numbers are international, "
                "'+49 151 ...'); write it with its country code ('+' or '00'), or set the "
                "entry's channel to webhook/direct_mail if it is a customer id"
            )
        out = con.execute(
            f"""
            select channel_n as channel, address_n as address,
                   {match_key_sql("address_n")} as match_key,
                   'do_not_contact' as reason, 'manual' as source,
                   coalesce(file, 'suppressions') || ':' || coalesce(row_n, '?')
                       || coalesce(' (' || note || ')', '') as source_event,
                   cast(null as varchar) as customer_id,
                   try_cast(since_raw as timestamp) as since
            from entries where address_n is not null
            """
        ).df()
    finally:
        con.close()
    return out[SUPPRESSION_COLUMNS]


def build_suppressions(
    events: pd.DataFrame | None,
    customers: pd.DataFrame | None,
    manual: pd.DataFrame | None = None,
    sent: pd.DataFrame | None = None,
    before: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """The suppression list (one row per channel, address, reason and source event).

    ``events``: provider events (message_id, customer_id, channel, event, occurred_at, source);
    only those before ``before`` count when it is given. ``customers``: current customer records
    (customer_id, email, phone, is_email_opt_in, is_sms_opt_in). ``sent``: message_key and the
    address a message went to (ledger or outbound rows), so an event suppresses the address the
    message was sent to even if the customer's record changed since. Missing inputs (a shop
    without responses yet) are empty.
    """
    con = duckdb.connect()
    try:
        con.register("ev", _frame(events, EVENT_COLUMNS))
        con.register(
            "cust",
            _frame(
                customers, ["customer_id", "email", "phone", "is_email_opt_in", "is_sms_opt_in"]
            ),
        )
        con.register("sent", _frame(sent, ["message_key", "channel", "address"]))
        reasons = " ".join(f"when '{e}' then '{r}'" for e, r in EVENT_REASONS.items())
        names = ", ".join(f"'{e}'" for e in SUPPRESSING_EVENTS)
        cutoff = "" if before is None else "and try_cast(e.occurred_at as timestamp) < $before"
        params = {} if before is None else {"before": pd.Timestamp(before).to_pydatetime()}
        known = ", ".join(f"'{c}'" for c in CHANNELS)
        # A channel none of ours ('E-mail', 'push', empty): the event is still somebody's
        # unsubscribe, so it holds on every channel (below) unless the ledger knows the message.
        ev_channel = (
            f"(case when lower(trim(cast(e.channel as varchar), '{_WS_SQL}')) in ({known}) "
            f"then lower(trim(cast(e.channel as varchar), '{_WS_SQL}')) end)"
        )
        frame = con.execute(
            f"""
            with e as (
                select cast(e.message_id as varchar) as message_id,
                       cast(e.customer_id as varchar) as customer_id,
                       {ev_channel} as channel,
                       {event_sql("e.event")} as event,
                       try_cast(e.occurred_at as timestamp) as since,
                       cast(e.source as varchar) as source
                from ev e
                where {event_sql("e.event")} in ({names}) {cutoff}
            ),
            c as (
                select cast(customer_id as varchar) as customer_id,
                       {email_sql("email")} as email, {phone_sql("phone")} as phone,
                       is_email_opt_in, is_sms_opt_in
                from cust
            ),
            s as (
                select distinct cast(message_key as varchar) as message_key,
                       cast(channel as varchar) as channel, cast(address as varchar) as address
                from sent where address is not null
            ),
            resolved as (
                -- The channel and address the message went on (the ledger knows them), else
                -- the event's channel and the customer's address on it.
                select coalesce(s.channel, e.channel) as channel, s.address as sent_address,
                       c.email, c.phone, e.event, e.source, e.message_id, e.customer_id, e.since
                from e
                left join s on s.message_key = e.message_id
                left join c on c.customer_id = e.customer_id
            ),
            event_rows as (
                select r.channel,
                       coalesce(r.sent_address, case r.channel when 'email' then r.email
                           when 'sms' then r.phone else r.customer_id end) as address,
                       case r.event {reasons} end as reason, r.source,
                       r.message_id as source_event, r.customer_id, r.since
                from resolved r where r.channel is not null
                union all
                -- Channel unknown: the customer's address on every channel.
                select ch.channel,
                       case ch.channel when 'email' then r.email when 'sms' then r.phone
                           else r.customer_id end as address,
                       case r.event {reasons} end as reason, r.source,
                       r.message_id as source_event, r.customer_id, r.since
                from resolved r
                cross join (select unnest([{known}]) as channel) ch
                where r.channel is null
            ),
            spam_rows as (
                -- A spam report stops the customer on every channel, at every address we hold.
                select ch.channel,
                       case ch.channel when 'email' then c.email when 'sms' then c.phone
                           else c.customer_id end as address,
                       'spam_reported' as reason, e.source, e.message_id as source_event,
                       e.customer_id, e.since
                from e
                join c on c.customer_id = e.customer_id
                cross join (select unnest(['email', 'sms', 'webhook', 'direct_mail']) as channel) ch
                where e.event = 'spam_report'
            ),
            opt_out_rows as (
                select 'email' as channel, email as address, 'opted_out' as reason,
                       'customers' as source, customer_id as source_event, customer_id,
                       cast(null as timestamp) as since
                from c where is_email_opt_in = false and email is not null
                union all
                select 'sms', phone, 'opted_out', 'customers', customer_id, customer_id,
                       cast(null as timestamp)
                from c where is_sms_opt_in = false and phone is not null
            ),
            spam_all as (
                select '*' as channel, address, reason, source, source_event, customer_id, since
                from event_rows where reason = 'spam_reported'
            ),
            unioned as (
                select * from event_rows where reason <> 'spam_reported'
                union all select * from spam_all
                union all select * from spam_rows
                union all select * from opt_out_rows
            )
            select distinct channel, address,
                   {match_key_sql("address")} as match_key,
                   reason, source, source_event, customer_id, since
            from unioned where address is not null and address <> ''
            """,
            params,
        ).df()
    finally:
        con.close()
    out = pd.concat(
        [d for d in (frame, manual_entries(manual)) if not d.empty]
        or [pd.DataFrame(columns=SUPPRESSION_COLUMNS)],
        ignore_index=True,
    )[SUPPRESSION_COLUMNS]
    return out.sort_values(
        ["channel", "match_key", "reason", "source", "source_event"], na_position="last"
    ).reset_index(drop=True)


def _frame(df: pd.DataFrame | None, columns: list[str]) -> pd.DataFrame:
    """``df`` with every column in ``columns`` (missing ones NULL); an empty frame for None."""
    if df is None:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    out = df.copy()
    for c in columns:
        if c not in out.columns:
            out[c] = None
    return out[columns]


def suppressed_messages(messages: pd.DataFrame, suppressions: pd.DataFrame) -> pd.DataFrame:
    """The messages whose (channel, address) is suppressed: message_key and the first reason in
    :data:`REASON_ORDER` with its source event."""
    if messages.empty or suppressions.empty:
        return pd.DataFrame(columns=["message_key", "reason", "source_event"])
    con = duckdb.connect()
    try:
        con.register("m", messages[["message_key", "channel", "address"]])
        con.register("sup", suppressions[SUPPRESSION_COLUMNS])
        order = " ".join(f"when '{r}' then {i}" for i, r in enumerate(REASON_ORDER))
        return con.execute(
            f"""
            select message_key, arg_min(reason, rank) as reason,
                   arg_min(source_event, rank) as source_event
            from (
                select m.message_key, s.reason, s.source_event,
                       (case s.reason {order} else 99 end) * 1 as rank
                from m join sup s
                  on s.match_key = {match_key_sql("cast(m.address as varchar)")}
                 and s.channel in (m.channel, '*')
            )
            group by message_key order by message_key
            """
        ).df()
    finally:
        con.close()


class SendTimeCheck:
    """Re-reads the suppression list and the ledger right before each window of requests.

    ``load`` returns the current suppression list (it must read what landed since the day's
    build: event files, manual entries, the warehouse's events). Beside suppressions, a message
    whose address already received (or may have received) another message on the same channel
    and campaign date is held back as ``address_already_contacted``: a rebuilt matrix under
    another campaign must not mail an address twice on one day.
    """

    def __init__(
        self,
        load: Callable[[], pd.DataFrame],
        already_out: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    ) -> None:
        self._load = load
        self._already_out = already_out
        self.reads = 0

    def __call__(self, window: pd.DataFrame) -> pd.DataFrame:
        """Messages of ``window`` that must not be sent: message_key, reason, source_event."""
        self.reads += 1
        hits = [suppressed_messages(window, self._load())]
        if self._already_out is not None:
            hits.append(self._already_out(window))
        out = pd.concat([h for h in hits if not h.empty] or [hits[0]], ignore_index=True)
        return out.drop_duplicates("message_key", keep="first").reset_index(drop=True)


def already_contacted(con: duckdb.DuckDBPyConnection, window: pd.DataFrame) -> pd.DataFrame:
    """Messages in ``window`` whose address got another key on the same channel and date that
    is sent or may be out (sending, unknown), per the ledger."""
    from tessera.activations.ledger import OUT_STATUSES, SCHEMA

    if window.empty:
        return pd.DataFrame(columns=["message_key", "reason", "source_event"])
    con.register("_window", window[["message_key", "channel", "address", "as_of_date"]])
    statuses = ", ".join(f"'{s}'" for s in OUT_STATUSES)
    try:
        return con.execute(
            f"""
            select w.message_key, 'address_already_contacted' as reason,
                   min(d.message_key) as source_event
            from _window w join {SCHEMA}.deliveries d
              on d.channel = w.channel and d.as_of_date = cast(w.as_of_date as date)
             and {match_key_sql("d.address")} = {match_key_sql("cast(w.address as varchar)")}
             and d.message_key <> w.message_key and d.status in ({statuses})
            group by w.message_key
            """
        ).df()
    finally:
        con.unregister("_window")


def reasons_by_key(hits: pd.DataFrame) -> Mapping[str, str]:
    """key -> "reason (source event)" for the ledger's error column."""
    return {
        k: f"{r} ({s})" if s is not None and not pd.isna(s) else str(r)
        for k, r, s in hits[["message_key", "reason", "source_event"]].itertuples(index=False)
    }
