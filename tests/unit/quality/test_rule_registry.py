"""The rule registry: the files generated from it are in sync, and malformed entries are refused."""

from __future__ import annotations

import copy
import re

import pytest
import yaml

from tessera.demo import world
from tessera.quality.generate import generated_files, stale_files
from tessera.quality.registry import REGISTRY_PATH, RegistryError, parse_registry, registry


def test_generated_dbt_files_match_the_registry() -> None:
    stale = [str(p) for p in stale_files()]
    assert not stale, f"run `make quality-rules` (python -m tessera.quality.generate): {stale}"


def test_every_rule_of_the_registry_is_in_the_generated_macro() -> None:
    reg = registry()
    macro = next(text for path, text in generated_files(reg).items() if path.suffix == ".sql")
    for table, rules in reg.tables.items():
        assert f'"{table}": [' in macro
        for rule in rules:
            assert f"'code': \"{rule.code}\"" in macro


def test_each_code_has_one_meaning_across_tables() -> None:
    # The same code on two tables names the same kind of fault; a code is never reused for a
    # different blocking behaviour.
    blocking: dict[str, set[bool]] = {}
    for rules in registry().tables.values():
        for rule in rules:
            blocking.setdefault(rule.code, set()).add(rule.blocking)
    assert all(len(v) == 1 for v in blocking.values()), blocking


def test_the_demo_draws_the_vocabularies_staging_accepts() -> None:
    reg = registry()
    assert reg.accepted("orders", "invalid_status") == world.ORDER_STATUSES
    assert reg.accepted("events", "invalid_event_type") == world.EVENT_TYPES
    assert reg.accepted("campaign_responses", "invalid_event_type") == world.RESPONSE_EVENTS


def _raw() -> dict:
    return yaml.safe_load(REGISTRY_PATH.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("gate", "sometimes", "tables.orders.rules[0].gate must be one of"),
        ("blocking", "yes", "tables.orders.rules[0].blocking must be true or false"),
        ("predicate", "", "tables.orders.rules[0].predicate must be a non-empty text"),
        ("colour", "red", "tables.orders.rules[0] has unknown field(s) ['colour']"),
    ],
)
def test_a_malformed_rule_is_refused_naming_table_rule_and_field(field, value, message) -> None:
    data = copy.deepcopy(_raw())
    data["tables"]["orders"]["rules"][0][field] = value
    with pytest.raises(RegistryError, match=re.escape(message)):
        parse_registry(data)


def test_accepted_values_and_the_predicate_placeholder_go_together() -> None:
    data = copy.deepcopy(_raw())
    status = next(r for r in data["tables"]["orders"]["rules"] if r["code"] == "invalid_status")
    del status["accepted"]
    with pytest.raises(RegistryError, match=r"tables.orders.rules\[3\]: a predicate uses"):
        parse_registry(data)


def test_a_repeated_code_is_refused() -> None:
    data = copy.deepcopy(_raw())
    rules = data["tables"]["events"]["rules"]
    rules.append(dict(rules[0]))
    with pytest.raises(RegistryError, match="tables.events repeats a rule code"):
        parse_registry(data)
