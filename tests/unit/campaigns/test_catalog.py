"""Catalog validation: every error names the file, the line and the field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tessera.campaigns.catalog import load_catalog, parse_catalog
from tessera.campaigns.cli import register
from tessera.campaigns.errors import CatalogError

DEMO = Path(__file__).resolve().parents[3] / "src" / "tessera" / "campaigns" / "catalog.yml"

BASE = """\
version: 1
dimensions:
  - id: tenure
    attribute: tenure_days
    bins: [7]
    labels: [new, old]
target_groups:
  - id: everyone
    where:
      tenure_days: {ge: 0}
campaigns:
  - id: winback_ski
    target_groups: [everyone]
    channels: [email]
    priority: 50
    duration_days: 7
    start: 2025-01-01
    templates: {email: em_winback}
  - id: newsletter
    target_groups: [everyone]
    channels: [email]
    priority: 10
    duration_days: 0
    start: 2025-01-01
    templates: {email: em_news}
templates:
  em_winback: {sendgrid: d-00000000000000000000000000000001}
  em_news: {sendgrid: {default: d-00000000000000000000000000000002}}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(CatalogError) as info:
        parse_catalog(text, source="catalog.yml")
    assert str(info.value).startswith("catalog.yml: ")
    return info.value.problems


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    lines = [i + 1 for i, ln in enumerate(text.splitlines()) if needle in ln]
    return lines[occurrence - 1]


def test_demo_catalog_is_valid_and_exposes_templates():
    catalog = load_catalog(DEMO)
    assert len(catalog.campaigns) >= 10
    template, offer = catalog.template("cart_incentive", "email")
    assert template == "em_cart_incentive" and offer == "free shipping"
    frame = catalog.templates_frame()
    assert set(frame["channel"]) == {"email", "sms", "direct_mail", "webhook"}


def test_base_catalog_is_valid():
    assert [c.id for c in parse_catalog(BASE).campaigns] == ["winback_ski", "newsletter"]


def test_wrong_type_names_campaign_field_and_line():
    text = BASE.replace("priority: 50", "priority: 'high'")
    assert problems(text) == [
        "campaign winback_ski: priority must be an integer, got 'high' "
        f"(catalog.yml:{line_of(text, 'high')})"
    ]


def test_unknown_field_is_an_error_with_its_line():
    text = BASE.replace("    duration_days: 7\n", "    duration_days: 7\n    colour: red\n")
    (msg,) = problems(text)
    assert "campaign winback_ski:" in msg and "unknown field 'colour'" in msg
    assert msg.endswith(f"(catalog.yml:{line_of(text, 'colour')})")


def test_run_anyway_is_rejected_with_a_pointer_to_ignore_locks():
    text = BASE.replace("    duration_days: 7\n", "    duration_days: 7\n    run_anyway: true\n")
    (msg,) = problems(text)
    assert "ignore_locks" in msg and f"catalog.yml:{line_of(text, 'run_anyway')}" in msg


def test_duplicate_campaign_id_is_an_error():
    text = BASE.replace("id: newsletter", "id: winback_ski")
    msgs = problems(text)
    assert any(
        "duplicate id 'winback_ski'" in m
        and f"catalog.yml:{line_of(text, 'id: winback_ski', 2)}" in m
        for m in msgs
    )


def test_unknown_attribute_in_target_group_is_an_error():
    text = BASE.replace("tenure_days: {ge: 0}", "tenure_dayz: {ge: 0}")
    (msg,) = problems(text)
    assert msg.startswith("target group everyone: where.tenure_dayz unknown attribute")
    assert msg.endswith(f"(catalog.yml:{line_of(text, 'tenure_dayz')})")


def test_unknown_bucket_of_a_dimension_is_an_error():
    text = BASE.replace("tenure_days: {ge: 0}", "tenure: {eq: ancient}")
    (msg,) = problems(text)
    assert "unknown bucket 'ancient'" in msg and f"catalog.yml:{line_of(text, 'ancient')}" in msg


def test_equal_priority_same_start_without_tie_break_is_an_error():
    text = BASE.replace("priority: 10", "priority: 50")
    (msg,) = problems(text)
    assert msg.startswith("campaign newsletter: priority ties with campaign winback_ski")
    assert msg.endswith(f"(catalog.yml:{line_of(text, 'priority: 50', 2)})")


def test_equal_priority_is_fine_with_tie_breaks_or_different_starts():
    tied = BASE.replace("priority: 10", "priority: 50")
    parse_catalog(
        tied.replace(
            "start: 2025-01-01\n    templates: {email: em_news}",
            "start: 2025-01-02\n    templates: {email: em_news}",
        )
    )
    parse_catalog(
        tied.replace(
            "priority: 50\n    duration_days: 7",
            "priority: 50\n    tie_break: 1\n    duration_days: 7",
        ).replace(
            "priority: 50\n    duration_days: 0",
            "priority: 50\n    tie_break: 2\n    duration_days: 0",
        )
    )


@pytest.mark.parametrize(
    ("edit", "expected", "needle"),
    [
        (
            (
                "start: 2025-01-01\n    templates: {email: em_winback}",
                "start: 2025-02-30\n    templates: {email: em_winback}",
            ),
            "start must be a real date (YYYY-MM-DD), got '2025-02-30'",
            "2025-02-30",
        ),
        (
            (
                "start: 2025-01-01\n    templates: {email: em_winback}",
                "start: 2025-03-01\n    end: 2025-02-01\n    templates: {email: em_winback}",
            ),
            "end 2025-02-01 is before start 2025-03-01",
            "end: 2025-02-01",
        ),
        (
            (
                "start: 2025-01-01\n    templates: {email: em_winback}",
                "start: 2025-03-04\n    end: 2025-03-05\n    weekdays: [sat]\n    templates: {email: em_winback}",
            ),
            "weekdays no sat between 2025-03-04 and 2025-03-05: never runs",
            "weekdays",
        ),
    ],
)
def test_impossible_dates_are_errors(edit, expected, needle):
    text = BASE.replace(*edit)
    (msg,) = problems(text)
    assert msg == f"campaign winback_ski: {expected} (catalog.yml:{line_of(text, needle)})"


def test_missing_template_and_unknown_channel_are_errors():
    text = BASE.replace(
        "channels: [email]\n    priority: 50", "channels: [email, fax]\n    priority: 50"
    )
    (msg,) = problems(text)
    assert "channels.1 must be one of" in msg and "'fax'" in msg
    assert msg.endswith(f"(catalog.yml:{line_of(text, 'fax')})")


def test_all_problems_are_listed_at_once():
    text = BASE.replace("priority: 50", "priority: 'high'").replace("priority: 10", "priority: x")
    assert len(problems(text)) == 2


def test_cli_validate_exit_codes(tmp_path, capsys):
    import argparse

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    good = parser.parse_args(["catalog", "validate", str(DEMO)])
    assert good.func(good) == 0
    assert "OK" in capsys.readouterr().out
    bad_file = tmp_path / "catalog.yml"
    bad_file.write_text(BASE.replace("priority: 50", "priority: 'high'"))
    bad = parser.parse_args(["catalog", "validate", str(bad_file)])
    assert bad.func(bad) == 2
    err = capsys.readouterr().err
    assert re.search(r"priority must be an integer, got 'high' \(.*catalog\.yml:\d+\)", err)
