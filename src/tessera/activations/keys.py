"""Deterministic message keys: one per (campaign, customer, date, channel)."""

from __future__ import annotations

import hashlib

#: Versioned salt: changing it would change every key and so re-send history; never change it.
KEY_SALT = "tessera-message-v1"


def message_key(campaign_id: str, customer_id: str, as_of_date: str, channel: str) -> str:
    """The 32-hex-char key of a message; ``keys_sql`` computes the same value in DuckDB."""
    raw = f"{KEY_SALT}|{campaign_id}|{customer_id}|{as_of_date}|{channel}"
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]


def key_sql(campaign: str, customer: str, as_of: str, channel: str) -> str:
    """A DuckDB expression computing ``message_key`` from column expressions."""
    return (
        f"substr(sha256('{KEY_SALT}|' || {campaign} || '|' || {customer} || '|' || "
        f"strftime({as_of}, '%Y-%m-%d') || '|' || {channel}), 1, 32)"
    )
