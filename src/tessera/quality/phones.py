"""Phone numbers in E.164 form ('+' and digits), in Python and as SQL: one definition.

The warehouse (dbt macro `normalise_phone`, generated from here), the quality gate and the
activations layer (suppression matching) all normalise with these, so two spellings of one
number become one string on every side of a comparison:

- a number is international when its first '+' or digit is '+', or it starts with '00';
  then a bracketed trunk zero is dropped ('+49 (0)151 ...' = '+49 151 ...');
- otherwise it is national: with the customer's country (rules.yml `calling_codes`) its
  national prefix (`national_prefixes`, default '0') is dropped and the calling code put in
  front; without a known country it stays digits only, which no check accepts as a phone.
"""

from __future__ import annotations

import re

from tessera.quality.registry import Registry, registry

_TRUNK_RE = r"\(\s*0\s*\)"


def normalize_phone(value: object, country: object = None) -> str | None:
    """E.164 for `value` (a customer's `country` for national numbers); None when empty."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = str(value)
    marker = re.sub(r"[^0-9+]", "", text)
    international = marker.startswith(("+", "00"))
    if international:
        text = re.sub(_TRUNK_RE, "", text)
    digits = re.sub(r"[^0-9]", "", text)
    if not digits:
        return None
    if marker.startswith("+"):
        return "+" + digits
    if digits.startswith("00") and len(digits) > 2:
        return "+" + digits[2:]
    reg = registry()
    key = str(country).strip().upper() if country is not None else ""
    code = reg.calling_codes.get(key)
    if code is None:
        return digits
    for prefix in reg.national_prefix(key):
        if digits.startswith(prefix):
            digits = digits[len(prefix) :]
            break
    return "+" + code + digits


def phone_sql(phone: str, country: str | None = None, reg: Registry | None = None) -> str:
    """SQL (DuckDB; PostgreSQL has the same functions) equal to :func:`normalize_phone` for
    the expressions `phone` and `country` (None: no country, national numbers stay digits)."""
    text = f"cast({phone} as varchar)"
    marker = f"regexp_replace({text}, '[^0-9+]', '', 'g')"
    international = f"(starts_with({marker}, '+') or starts_with({marker}, '00'))"
    cleaned = (
        f"(case when {international} then regexp_replace({text}, '{_TRUNK_RE}', '', 'g') "
        f"else {text} end)"
    )
    digits = f"regexp_replace({cleaned}, '[^0-9]', '', 'g')"
    national = digits
    if country is not None:
        reg = reg or registry()
        key = f"upper(trim(cast({country} as varchar)))"
        codes = " ".join(f"when '{c}' then '{code}'" for c, code in reg.calling_codes.items())
        special = []
        for c in reg.calling_codes:
            prefixes = reg.national_prefix(c)
            if prefixes == ("0",):
                continue
            strip = " ".join(
                f"when starts_with({digits}, '{p}') then substr({digits}, {len(p) + 1})"
                for p in prefixes
            )
            special.append(
                f"when '{c}' then " + (f"(case {strip} else {digits} end)" if strip else digits)
            )
        default = (
            f"(case when starts_with({digits}, '0') then substr({digits}, 2) else {digits} end)"
        )
        rest = f"(case {key} {' '.join(special)} else {default} end)"
        national = f"coalesce('+' || (case {key} {codes} end) || {rest}, {digits})"
    return f"""(case
        when {digits} = '' or {phone} is null then null
        when starts_with({marker}, '+') then '+' || {digits}
        when starts_with({digits}, '00') and length({digits}) > 2 then '+' || substr({digits}, 3)
        else {national} end)"""
