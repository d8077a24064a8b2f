"""API keys never reach Dagster's storage: keys with newlines, spaces or quotes, real runs.

Mounted secrets often end in a newline and .env files wrap values in quotes. Tessera strips
surrounding whitespace (and one pair of surrounding quotes) when it loads a secret, and redacts
every form of it (raw, stripped, repr- and JSON-escaped, inside auth headers) from exception
texts before they propagate. Each test runs `deliveries` through Dagster with a DAGSTER_HOME
in tmp and greps every byte Tessera and Dagster wrote for each form of the key.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource
from test_assets import D, _warehouse

from tessera.activations.providers.base import clean_secret, secret_forms
from tessera.orchestration.defs.activations.assets import deliveries, outbound_messages
from tessera.orchestration.defs.activations.resources import ActivationSettings
from tessera.orchestration.defs.resources import DataStorage

CORE = "SG.tEsTkEy0123456789abcd.ZyXwVuTsRqPoNmLkJiHgFeDcBa9876543210"


def _forms(secret: str) -> set[str]:
    forms = {secret, secret.strip(), repr(secret)[1:-1], json.dumps(secret)[1:-1]}
    forms |= {repr(secret.encode())[2:-1], CORE}
    forms.add(base64.b64encode(secret.encode()).decode())
    # parts long enough to identify the key on their own
    forms |= {part for part in CORE.split(".") if len(part) >= 16}
    return {f for f in forms if len(f) >= 8}


def _leaks(root: Path, secret: str) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        found += [f"{path.relative_to(root)}: {f!r}" for f in _forms(secret) if f.encode() in data]
    return found


def _materialize(tmp_path: Path, sink, key: str) -> dg.ExecuteInProcessResult:
    db = tmp_path / "data" / "warehouse.duckdb"
    db.parent.mkdir(parents=True, exist_ok=True)
    _warehouse(db)
    resources = {
        "warehouse": DuckDBResource(database=str(db)),
        "storage": DataStorage(data_dir=str(tmp_path / "data")),
        "activation": ActivationSettings(
            live=True,
            sendgrid_api_key=key,
            sendgrid_host=sink.url,
            auto_send=True,
            timeout_s=5.0,
            max_attempts=2,
            base_delay_s=0.01,
        ),
    }
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        assert dg.materialize(
            [outbound_messages], resources=resources, partition_key=D, instance=instance
        ).success
        result = dg.materialize(
            [deliveries],
            resources=resources,
            partition_key=D,
            instance=instance,
            raise_on_error=False,
        )
        # Everything Dagster recorded, as the UI would show it (event log of both runs).
        records = instance.get_records_for_run(result.run_id).records
        text = "\n".join(
            dg.serialize_value(r.event_log_entry)
            for r in records  # type: ignore[arg-type]
        )
    (tmp_path / "event_log_dump.txt").write_text(text)
    return result


@pytest.mark.parametrize(
    "key",
    [CORE + "\n", f'  "{CORE}"  \n', f"\t{CORE} "],
    ids=["trailing-newline", "quotes-and-spaces", "tab-and-space"],
)
def test_key_with_surrounding_whitespace_or_quotes_sends_and_leaks_nowhere(
    tmp_path, sink, key
) -> None:
    result = _materialize(tmp_path, sink, key)
    assert result.success
    assert sink.stats()["duplicates"] == 0 and sink.stats()["messages"] > 0
    assert _leaks(tmp_path, key) == []


def test_key_that_cannot_be_a_header_fails_the_run_with_the_key_redacted(tmp_path, sink) -> None:
    key = CORE[:30] + "\n" + CORE[30:]  # a newline inside the key: no stripping can save it
    result = _materialize(tmp_path, sink, key)
    assert not result.success and sink.stats()["messages"] == 0
    with duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb")) as con:
        errors = [r[0] for r in con.execute("select error from activations.deliveries").fetchall()]
    assert errors and all("Invalid header" in e and "***" in e for e in errors)
    assert _leaks(tmp_path, key) == []


def test_clean_secret_strips_whitespace_and_one_pair_of_quotes() -> None:
    assert clean_secret(f' "{CORE}"\n') == CORE
    assert clean_secret(f"'{CORE}'") == CORE
    assert clean_secret(None) is None and clean_secret("  \n") is None
    assert {CORE, repr(CORE + "\n")[1:-1]} <= set(secret_forms(CORE + "\n"))
