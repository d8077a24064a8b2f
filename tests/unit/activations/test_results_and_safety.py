"""Uplift statistics, volume ceilings and signatures."""

import datetime as dt
import time

import numpy as np
import pandas as pd
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tessera.activations.errors import SendBlockedError
from tessera.activations.providers import webhook
from tessera.activations.results import campaign_results, newcombe_diff, wilson
from tessera.activations.sender import check_volume
from tessera.activations.signing import public_key_b64, sign_payload, verify_payload


def test_wilson_and_newcombe_match_published_values():
    # Newcombe (1998) example: 56/70 vs 48/80 -> difference 0.2, CI (0.0524, 0.3339).
    lo, hi = newcombe_diff(np.array([56]), np.array([70]), np.array([48]), np.array([80]))
    assert lo[0] == pytest.approx(0.0524, abs=1e-3) and hi[0] == pytest.approx(0.3339, abs=1e-3)
    wl, wh = wilson(np.array([0]), np.array([10]))
    assert wl[0] == pytest.approx(0.0, abs=1e-12) and wh[0] == pytest.approx(0.2775, abs=1e-3)


def test_campaign_results_find_a_planted_uplift_and_read_nothing_after_the_date():
    rng = np.random.default_rng(7)
    n = 6000
    day = dt.date(2025, 3, 1)
    a = pd.DataFrame(
        {
            "as_of_date": day,
            "customer_id": [f"c{i}" for i in range(n)],
            "campaign_id": "w",
            "is_control": rng.random(n) < 0.25,
            "duration_days": 7,
        }
    )
    converts = rng.random(n) < np.where(a.is_control, 0.04, 0.08)
    orders = pd.DataFrame(
        {
            "customer_id": a.customer_id[converts],
            "ordered_at": pd.Timestamp("2025-03-03"),
            "amount": 40.0,
            "status": "completed",
        }
    )
    late = pd.DataFrame(
        {
            "customer_id": a.customer_id[a.is_control],
            "ordered_at": pd.Timestamp("2025-03-09"),
            "amount": 1.0,
            "status": "completed",
        }
    )  # after the 7-day window
    none = pd.DataFrame(columns=["customer_id", "campaign_id", "occurred_at", "revenue"])
    r = campaign_results(dt.date(2025, 3, 12), a, pd.concat([orders, late]), none).iloc[0]
    assert r.abs_lift_ci_low > 0 and r.abs_lift_ci_low < 0.04 < r.abs_lift_ci_high
    assert r.treatment_n + r.control_n == n and r.p_value < 0.001 and r.revenue_lift_ci_low > 0
    early = campaign_results(dt.date(2025, 3, 2), a, orders, none).iloc[0]
    assert early.treatment_conversions == 0 and early.share_windows_complete == 0.0


def test_volume_ceiling_stops_a_day_far_above_usual():
    history = pd.DataFrame({"channel": ["email"] * 5, "sent": [1000, 1100, 900, 1000, 1050]})
    check_volume({"email": 2900}, history, factor=3.0, floor=100)
    with pytest.raises(SendBlockedError, match="email: 3,500 planned > ceiling 3,000"):
        check_volume({"email": 3500}, history, factor=3.0, floor=100)
    with pytest.raises(SendBlockedError, match="sms"):
        check_volume({"sms": 11}, history, factor=3.0, floor=100, explicit={"sms": 10})


def test_event_signature_verifies_only_the_exact_raw_bytes():
    key = ec.generate_private_key(ec.SECP256R1())
    raw = b'[{"event":"open","message_key":"k"}]'
    sig = sign_payload(key, "1700000000", raw)
    pub = public_key_b64(key)
    assert verify_payload(pub, "1700000000", raw, sig)
    assert not verify_payload(pub, "1700000000", b'[{"event": "open", "message_key": "k"}]', sig)
    assert not verify_payload(pub, "1700000001", raw, sig)
    assert not verify_payload(pub, "1700000000", raw, "bm90IGEgc2ln")


def test_webhook_hmac_rejects_tampering_and_stale_timestamps():
    ts = str(int(time.time()))
    sig = webhook.sign("s3cret", ts, b"{}")
    assert webhook.verify("s3cret", ts, b"{}", sig)
    assert not webhook.verify("other", ts, b"{}", sig)
    assert not webhook.verify("s3cret", ts, b"{ }", sig)
    old = str(int(time.time()) - 3600)
    assert not webhook.verify("s3cret", old, b"{}", webhook.sign("s3cret", old, b"{}"))
