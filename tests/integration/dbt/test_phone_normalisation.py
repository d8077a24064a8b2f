"""The warehouse's phone normalisation (macro `normalise_phone`): E.164 from what shops write.

The activations layer matches suppressions on these numbers, so two spellings of one number
must become one string, and it must be the string `normalize_phone` makes of the same number
written internationally (provider events and manual entries go through that).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from dbt_harness import Warehouse

from tessera.activations.suppressions import normalize_phone

pytestmark = pytest.mark.integration

CASES = [
    # (written, customer's country, E.164)
    ("+49 151 2345678", "DE", "+491512345678"),
    ("+49 (0)151 2345678", "DE", "+491512345678"),
    ("0049 (0) 151 2345678", "FR", "+491512345678"),
    ("0151 2345678", "DE", "+491512345678"),
    ("0151 2345678", " de ", "+491512345678"),
    ("07700 900123", "GB", "+447700900123"),
    # Italy keeps the leading 0 of landlines after its country code; mobiles have none.
    ("06 1234 5678", "IT", "+390612345678"),
    ("347 123 4567", "IT", "+393471234567"),
    # North America: ten digits, or eleven with the national prefix 1.
    ("(212) 555-1234", "US", "+12125551234"),
    ("1-212-555-1234", "US", "+12125551234"),
    ("416 555 0100", "CA", "+14165550100"),
]


@pytest.fixture(scope="module")
def normalised(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], str]:
    root = Path(tmp_path_factory.mktemp("phones"))
    warehouse = Warehouse(data_dir=root / "data", target_dir=root / "target")
    warehouse.data_dir.mkdir()
    values = ", ".join(
        "('{}', '{}')".format(p.replace("'", "''"), c.replace("'", "''")) for p, c, _ in CASES
    )
    sql = f"select p, c, {{{{ normalise_phone('p', 'c') }}}} as n from (values {values}) as v(p, c)"
    result = warehouse.dbt("show", "--inline", sql, "--limit", "100")
    assert result.success, result.exception
    table = result.result.results[0].agate_table
    return {(row["p"], row["c"]): row["n"] for row in table.rows}


@pytest.mark.parametrize(("written", "country", "expected"), CASES)
def test_every_spelling_of_a_number_becomes_one_e164_string(normalised, written, country, expected):
    assert normalised[(written, country)] == expected


def test_internationally_written_numbers_agree_with_the_activations_normaliser(normalised):
    for (written, _), value in normalised.items():
        if written.startswith(("+", "00")):
            assert normalize_phone(written) == value, written
