"""The journey state store: its own DuckDB file (never the warehouse), written by one run at a time."""

from __future__ import annotations

from pathlib import Path

import duckdb

from tessera.activations import ledger

SCHEMA = "journeys"

DDL = f"""
create schema if not exists {SCHEMA};
create table if not exists {SCHEMA}.ingested_files (
    file varchar primary key, events integer, ingested_at timestamp
);
create table if not exists {SCHEMA}.events (
    seq bigint not null,
    event_id varchar primary key,
    source varchar,
    event_type varchar,
    customer_id varchar,
    product_id varchar,
    category varchar,
    occurred_at timestamp,
    received_at timestamp,
    in_stock boolean,
    quantity bigint,
    properties varchar
);
create table if not exists {SCHEMA}.cursors (
    trigger_id varchar primary key, last_seq bigint, last_segment_date date
);
create table if not exists {SCHEMA}.entries (
    entry_id varchar primary key,
    trigger_id varchar not null,
    customer_id varchar not null,
    entry_key varchar not null,
    event_id varchar,
    product_id varchar,
    entered_at timestamp not null,
    is_control boolean not null,
    status varchar not null,            -- active | completed | exited
    exit_reason varchar,
    ended_at timestamp,
    received_at timestamp              -- when the entry event reached the collector
);
create table if not exists {SCHEMA}.steps (
    entry_id varchar not null,
    step_id varchar not null,
    step_index integer not null,
    trigger_id varchar not null,
    customer_id varchar not null,
    channel varchar not null,
    due_at timestamp not null,
    status varchar not null,            -- pending | sent | control | skipped | exited | suppressed | failed | unknown
    reason varchar,
    message_key varchar,
    decided_at timestamp,
    primary key (entry_id, step_id)
);
"""


def connect(path: str) -> duckdb.DuckDBPyConnection:
    """Open the store read-write and make sure its tables (and the ledger's) exist."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(path)
    ensure_schema(con)
    return con


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(DDL)
    ledger.ensure_schema(con)
