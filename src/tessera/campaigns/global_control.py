"""The global control group: a fixed salted-hash share of all customers that gets no marketing.

A customer is a member when ``md5_number_lower(salt || ':global_control:' || customer_id)
% 10000 < round(share * 10000)``: the lower 64 bits of the MD5 digest read little-endian, the
same number in DuckDB (`SQL_BUCKET`) and in Python (`bucket`), so every reader (the engine,
the members table, results, the review app) splits customers identically. It depends on the
salt and the customer id only: membership never moves with dates, campaigns or other policies.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import duckdb
import pandas as pd
import pyarrow as pa

from tessera.campaigns.catalog import GlobalControl

BUCKETS = 10_000
#: DuckDB expression of a customer's bucket; `$gc_salt` and a `customer_id` column in scope.
SQL_BUCKET = "md5_number_lower($gc_salt || ':global_control:' || customer_id) % 10000"

MEMBERS_TABLE = "campaigns.global_control"
SALTS_TABLE = "campaigns.global_control_salts"

MEMBERS_SCHEMA = pa.schema(
    [
        ("as_of_date", pa.date32()),
        ("customer_id", pa.string()),
        ("micro_segment_id", pa.string()),
        ("salt", pa.string()),
        ("share", pa.float64()),
    ]
)
SALTS_SCHEMA = pa.schema(
    [
        # the first matrix date that used this salt and share
        ("as_of_date", pa.date32()),
        ("salt", pa.string()),
        ("share", pa.float64()),
        ("catalog_fingerprint", pa.string()),
        ("recorded_at", pa.timestamp("us")),
    ]
)


def cut(policy: GlobalControl) -> int:
    """Buckets below this number are members."""
    return round(policy.share * BUCKETS)


def bucket(salt: str, customer_id: str) -> int:
    """The customer's bucket in 0..9999, computed as DuckDB's `SQL_BUCKET` computes it."""
    digest = hashlib.md5(f"{salt}:global_control:{customer_id}".encode()).digest()
    return int.from_bytes(digest[8:], "little") % BUCKETS


def is_member(policy: GlobalControl, customer_id: str) -> bool:
    return bucket(policy.salt, str(customer_id)) < cut(policy)


def members(
    membership: pd.DataFrame | pa.Table, policy: GlobalControl | None, as_of: dt.date
) -> pa.Table:
    """The global-control members among ``membership``'s customers (``MEMBERS_SCHEMA``)."""
    if policy is None:
        return MEMBERS_SCHEMA.empty_table()
    con = duckdb.connect()
    try:
        con.register("membership_in", membership)
        table = con.sql(
            f"""
            select cast($d as date) as as_of_date, customer_id,
                   cast(micro_segment_id as varchar) as micro_segment_id,
                   $gc_salt as salt, cast($share as double) as share
            from (select cast(customer_id as varchar) as customer_id, micro_segment_id
                  from membership_in)
            where {SQL_BUCKET} < $gc_cut
            order by customer_id
            """,
            params={
                "d": as_of,
                "gc_salt": policy.salt,
                "gc_cut": cut(policy),
                "share": policy.share,
            },
        ).to_arrow_table()
    finally:
        con.close()
    return table.cast(MEMBERS_SCHEMA)


def salt_change(
    previous: tuple[str | None, float | None] | None,
    policy: GlobalControl | None,
    as_of: dt.date,
    catalog_fingerprint: str,
) -> pa.Table:
    """The salt-history row ``as_of`` adds: none when salt and share equal the last one before.

    ``previous`` is (salt, share) of the latest row before ``as_of`` (None: no history). A
    disabled group is recorded as a row with no salt and share 0 once it had been enabled.
    """
    current = (policy.salt, policy.share) if policy is not None else (None, 0.0)
    if previous is None and policy is None:
        return SALTS_SCHEMA.empty_table()
    if previous is not None and (previous[0], float(previous[1] or 0.0)) == current:
        return SALTS_SCHEMA.empty_table()
    return pa.Table.from_pylist(
        [
            {
                "as_of_date": as_of,
                "salt": current[0],
                "share": current[1],
                "catalog_fingerprint": catalog_fingerprint,
                "recorded_at": pd.Timestamp.now(tz="UTC").tz_localize(None).to_pydatetime(),
            }
        ],
        schema=SALTS_SCHEMA,
    )
