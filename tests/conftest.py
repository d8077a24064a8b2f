"""Suite-wide fixtures: isolate every test from ./data and share one small demo shop."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

#: The small shop integration tests share: big enough for models and segments to mean something,
#: small enough to build in seconds.
SMALL_SHOP = {"customers": 1500, "seed": 7, "days": 400}
SMALL_SHOP_END = dt.date(2026, 6, 1)


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> None:
    """No test reads or writes the developer's ./data unless it points somewhere itself."""
    default = tmp_path_factory.getbasetemp() / "default-data"
    monkeypatch.setenv("TESSERA_DATA_DIR", str(default))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    for secret in ("SENDGRID_API_KEY", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
        monkeypatch.delenv(secret, raising=False)


@pytest.fixture(scope="session")
def small_shop_end() -> dt.date:
    """The exclusive end of the small shop's data: its last campaign date."""
    return SMALL_SHOP_END


@pytest.fixture(scope="session")
def small_shop_landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only landing folder of a small synthetic shop (copy it before changing files)."""
    from tessera.demo.generator import generate_shop

    root = tmp_path_factory.mktemp("small-shop")
    landing = root / "landing"
    generate_shop(
        landing,
        customers=SMALL_SHOP["customers"],
        seed=SMALL_SHOP["seed"],
        start=SMALL_SHOP_END - dt.timedelta(days=SMALL_SHOP["days"]),
        end=SMALL_SHOP_END,
    )
    return landing
