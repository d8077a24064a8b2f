"""The catalog's templates section: readable names in campaigns, provider ids per environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from tessera.activations.content import content_from_catalog
from tessera.activations.outbound import DEFAULT_CHANNEL_PROVIDERS
from tessera.activations.sink import DYNAMIC_TEMPLATE_RE
from tessera.campaigns.catalog import CHANNEL_PROVIDERS, load_catalog, parse_catalog
from tessera.campaigns.errors import CatalogError, UnknownEnvironmentError

DEMO = Path(__file__).resolve().parents[3] / "src" / "tessera" / "campaigns" / "catalog.yml"
PROD = "d-" + "a" * 32
DEFAULT = "d-" + "b" * 32

CATALOG = f"""\
version: 1
dimensions:
  - id: tenure
    attribute: tenure_days
    bins: [7]
    labels: [new, old]
target_groups:
  - id: everyone
    where:
      tenure_days: {{ge: 0}}
campaigns:
  - id: welcome
    target_groups: [everyone]
    channels: [email, sms]
    priority: 50
    duration_days: 7
    start: 2025-01-01
    templates: {{email: em_welcome, sms: sms_welcome}}
templates:
  em_welcome:
    sendgrid:
      default: {DEFAULT}
      production: {PROD}
"""


def test_channel_template_ids_resolve_per_environment() -> None:
    catalog = parse_catalog(CATALOG)
    assert catalog.channel_template_id("welcome", "email") == DEFAULT
    assert catalog.channel_template_id("welcome", "email", "production") == PROD
    # SMS is sent as text; its template name is not a provider id and stays as it is
    assert catalog.channel_template_id("welcome", "sms", "production") == "sms_welcome"
    by_channel = {c.channel: c.template_id for c in content_from_catalog(catalog, "production")}
    assert by_channel == {"email": PROD, "sms": "sms_welcome"}


def test_a_known_environment_without_its_own_id_uses_the_default_id() -> None:
    text = (
        CATALOG.replace(
            "templates: {email: em_welcome, sms: sms_welcome}",
            "templates: {email: em_news, sms: sms_welcome}",
        )
        + f"  em_news:\n    sendgrid: {{default: {DEFAULT}}}\n"
    )
    catalog = parse_catalog(text)
    assert catalog.environments() == {"default", "production"}
    assert catalog.channel_template_id("welcome", "email", "production") == DEFAULT


@pytest.mark.parametrize("environment", ["staging", "prodution", "Production", "production "])
def test_an_environment_no_mapping_names_is_refused_not_sent_the_default_ids(
    environment: str,
) -> None:
    # A typo in TESSERA_ENVIRONMENT used to send every template's default (test) id.
    catalog = parse_catalog(CATALOG)
    with pytest.raises(UnknownEnvironmentError, match=rf"TESSERA_ENVIRONMENT={environment!r}"):
        catalog.channel_template_id("welcome", "email", environment)
    with pytest.raises(UnknownEnvironmentError, match="known: default, production"):
        content_from_catalog(catalog, environment)
    # SMS text has no id to pick, but the environment is still checked: one rule, one place.
    with pytest.raises(UnknownEnvironmentError):
        catalog.channel_template_id("welcome", "sms", environment)


def test_unmapped_email_template_is_an_error_naming_line_and_field() -> None:
    text = CATALOG.replace("templates:\n  em_welcome:", "templates:\n  em_other:")
    with pytest.raises(CatalogError) as err:
        parse_catalog(text, source="c.yml")
    (problem,) = err.value.problems
    assert problem.startswith("campaign welcome: templates.email 'em_welcome' is not a SendGrid")
    assert problem.endswith("(c.yml:18)")


def test_malformed_or_incomplete_mapped_ids_are_errors_naming_line_and_field() -> None:
    text = CATALOG.replace(f"production: {PROD}", "production: d-12345").replace(
        f"default: {DEFAULT}", f"staging: {DEFAULT}"
    )
    with pytest.raises(CatalogError) as err:
        parse_catalog(text, source="c.yml")
    problems = err.value.problems
    assert any("templates.em_welcome.sendgrid needs a 'default' id" in p for p in problems)
    assert any(
        "templates.em_welcome.sendgrid.production 'd-12345' is not a SendGrid" in p
        and p.endswith("(c.yml:23)")
        for p in problems
    )


def test_demo_catalog_ships_valid_format_ids_for_every_email_campaign() -> None:
    catalog = load_catalog(DEMO)
    emails = [c for c in content_from_catalog(catalog) if c.channel == "email"]
    assert emails and all(DYNAMIC_TEMPLATE_RE.match(c.template_id) for c in emails)


def test_catalog_and_activations_agree_on_channel_providers() -> None:
    assert CHANNEL_PROVIDERS == DEFAULT_CHANNEL_PROVIDERS
