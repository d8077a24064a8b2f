"""Retry-After is honoured in both forms RFC 9110 allows: delay-seconds and an HTTP date."""

from __future__ import annotations

import email.utils

import pytest

from tessera.activations.providers.base import parse_retry_after

NOW = 1_800_000_000.0


def test_retry_after_as_an_http_date_is_the_seconds_until_that_date() -> None:
    date = email.utils.formatdate(NOW + 90, usegmt=True)  # e.g. "Fri, 15 Jan 2027 08:01:30 GMT"
    assert parse_retry_after({"Retry-After": date}, NOW) == pytest.approx(90.0)


def test_retry_after_date_in_the_past_means_retry_now() -> None:
    date = email.utils.formatdate(NOW - 30, usegmt=True)
    assert parse_retry_after({"Retry-After": date}, NOW) == 0.0


def test_retry_after_seconds_still_work_and_garbage_falls_back_to_the_reset_header() -> None:
    assert parse_retry_after({"Retry-After": " 2 "}, NOW) == 2.0
    headers = {"Retry-After": "soon", "X-RateLimit-Reset": str(NOW + 5)}
    assert parse_retry_after(headers, NOW) == pytest.approx(5.0)
    assert parse_retry_after({"Retry-After": "nan"}, NOW) is None
