"""Phone normalisation (tessera.quality.phones): Python and SQL agree, and known forms map to E.164."""

from __future__ import annotations

import duckdb
import pytest

from tessera.quality.phones import normalize_phone, phone_sql
from tessera.quality.registry import RegistryError, parse_registry

CASES = [
    ("+49 151 2345678", "DE", "+491512345678"),
    ("\u00a0+49 151 2345678", None, "+491512345678"),
    ("tel:+49-151-2345678", None, "+491512345678"),
    ("+49 (0)151 2345678", None, "+491512345678"),
    ("0049 (0) 151 2345678", "US", "+491512345678"),
    ("0151 2345678", "de", "+491512345678"),
    ("(0)151 2345678", "DE", "+491512345678"),
    ("0151 2345678", None, "01512345678"),
    ("0151 2345678", "XX", "01512345678"),
    ("06 1234 5678", "IT", "+390612345678"),
    ("347 123 4567", "IT", "+393471234567"),
    ("1 (212) 555-1234", "US", "+12125551234"),
    ("212.555.1234", "CA", "+12125551234"),
    ("06 1 234 5678", "HU", "+3612345678"),
    ("8 612 34567", "LT", "+37061234567"),
    ("0 612 34567", "LT", "+37061234567"),
    # Argentina's national mobile form is not its international one minus a prefix.
    ("011 15 1234 5678", "AR", "0111512345678"),
    ("", "DE", None),
    ("  ", "DE", None),
    ("n/a", "DE", None),
    (None, "DE", None),
]


@pytest.mark.parametrize(("written", "country", "expected"), CASES)
def test_python_and_sql_give_the_same_e164_string(written, country, expected):
    assert normalize_phone(written, country) == expected
    with duckdb.connect() as con:
        sql = f"select {phone_sql('p', 'c')} from (select ?::varchar as p, ?::varchar as c)"
        assert con.execute(sql, [written, country]).fetchall()[0][0] == expected


def test_without_a_country_national_numbers_stay_digits_in_sql_too():
    with duckdb.connect() as con:
        got = con.execute(f"select {phone_sql('p')} from (select '0151 2345678' as p)").fetchall()
    assert got[0][0] == normalize_phone("0151 2345678") == "01512345678"


def test_national_prefixes_must_name_known_countries_and_digit_prefixes():
    booleans = {"true": ["yes"], "false": ["no"]}
    base = {"tables": {}, "booleans": booleans, "calling_codes": {"DE": "49"}}
    with pytest.raises(RegistryError, match="national_prefixes.FR: not a country"):
        parse_registry({**base, "national_prefixes": {"FR": ["0"]}})
    with pytest.raises(RegistryError, match="national_prefixes.DE: needs a list of digit"):
        parse_registry({**base, "national_prefixes": {"DE": "0"}})
    assert parse_registry({**base, "national_prefixes": {"DE": []}}).national_prefix("DE") == ()
