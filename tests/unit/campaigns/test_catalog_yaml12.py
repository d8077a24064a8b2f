"""The catalog reads YAML 1.2 booleans: `no`, `NO` (Norway), `on`, `yes` stay the text written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tessera import yaml12
from tessera.campaigns.catalog import parse_catalog

DEMO = Path(__file__).resolve().parents[3] / "src" / "tessera" / "campaigns" / "catalog.yml"


@pytest.mark.parametrize("word", ["no", "NO", "No", "on", "off", "yes", "y", "n", "ON"])
def test_yaml_1_1_booleans_stay_text(word: str) -> None:
    assert yaml12.safe_load(f"a: [{word}]\n{word}: x\n") == {"a": [word], word: "x"}


@pytest.mark.parametrize(("text", "value"), [("true", True), ("False", False), ("TRUE", True)])
def test_true_and_false_are_booleans(text: str, value: bool) -> None:
    assert yaml12.safe_load(f"a: {text}") == {"a": value}


def test_a_category_called_no_is_a_category_not_false() -> None:
    # Under YAML 1.1 the list held False, and the catalog refused it as "not a string".
    text = DEMO.read_text(encoding="utf-8").replace(
        "values: [handbags, shoes, ski,", "values: [no, handbags, shoes, ski,", 1
    )
    assert text != DEMO.read_text(encoding="utf-8")
    catalog = parse_catalog(text, source="catalog.yml")
    affinity = next(d for d in catalog.dimensions if d.id == "affinity")
    assert affinity.values[0] == "no"
