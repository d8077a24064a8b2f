"""The rule registry (rules.yml): every row rule of the landing tables, with one code and one meaning.

The quarantine SQL (through the generated dbt macro ``quality_rules``), the quarantine tables'
dbt tests and documentation, the Great Expectations gate on the landing tables and the demo
generator's vocabularies all come from here; see docs/quality.md.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path

from tessera import yaml12

REGISTRY_PATH = Path(__file__).with_name("rules.yml")

#: How much of a landing table may break a rule before the gate blocks (see rules.yml).
GATES = ("bad_share", "orphan_share", "contact_share", "any_warns")


class RegistryError(ValueError):
    """rules.yml is malformed: the message names the table, rule and field."""


@dataclass(frozen=True)
class RowRule:
    """One row rule of one landing table."""

    table: str
    code: str
    meaning: str
    columns: tuple[str, ...]
    predicate: str
    blocking: bool
    gate: str
    accepted: tuple[str, ...] = ()
    key: tuple[str, ...] = ()
    pattern: str | None = None

    def condition(self, max_timestamp_sql: str) -> str:
        """The predicate as SQL, with the accepted values and the latest sensible time filled in."""
        return self.predicate.replace("{accepted}", quoted(self.accepted)).replace(
            "{max_timestamp}", max_timestamp_sql
        )


@dataclass(frozen=True)
class Registry:
    """Everything rules.yml holds."""

    tables: dict[str, tuple[RowRule, ...]]
    staged: dict[str, str]
    booleans: dict[bool, tuple[str, ...]]
    calling_codes: dict[str, str]
    #: National (trunk) prefixes per country where they are not the default "0".
    national_prefixes: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)

    def national_prefix(self, country: str) -> tuple[str, ...]:
        """The prefixes a national number of `country` may start with (dropped, first match)."""
        return self.national_prefixes.get(country, ("0",))

    def rules(self, table: str) -> tuple[RowRule, ...]:
        if table not in self.tables:
            raise RegistryError(f"{REGISTRY_PATH.name}: no rules for table '{table}'")
        return self.tables[table]

    def rule(self, table: str, code: str) -> RowRule:
        for rule in self.rules(table):
            if rule.code == code:
                return rule
        raise RegistryError(f"{REGISTRY_PATH.name}: table '{table}' has no rule '{code}'")

    def accepted(self, table: str, code: str) -> tuple[str, ...]:
        """The accepted values of a rule (for example ``('orders', 'invalid_status')``)."""
        values = self.rule(table, code).accepted
        if not values:
            raise RegistryError(f"{REGISTRY_PATH.name}: {table}.{code} lists no accepted values")
        return values

    @property
    def boolean_texts(self) -> tuple[str, ...]:
        return self.booleans[True] + self.booleans[False]


def quoted(values: tuple[str, ...]) -> str:
    """Values as a SQL list body: 'a', 'b'."""
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def _texts(where: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        raise RegistryError(f"{REGISTRY_PATH.name}: {where} must be a list of texts")
    return tuple(str(v) for v in value)


def _rule(table: str, index: int, raw: object) -> RowRule:
    where = f"tables.{table}.rules[{index}]"
    if not isinstance(raw, dict):
        raise RegistryError(f"{REGISTRY_PATH.name}: {where} must be a mapping")
    known = {"code", "meaning", "columns", "predicate", "blocking", "gate", "accepted", "key",
             "pattern"}  # fmt: skip
    unknown = sorted(set(raw) - known)
    if unknown:
        raise RegistryError(f"{REGISTRY_PATH.name}: {where} has unknown field(s) {unknown}")
    for name in ("code", "meaning", "predicate"):
        if not isinstance(raw.get(name), str) or not raw[name].strip():
            raise RegistryError(f"{REGISTRY_PATH.name}: {where}.{name} must be a non-empty text")
    if not isinstance(raw.get("blocking"), bool):
        raise RegistryError(f"{REGISTRY_PATH.name}: {where}.blocking must be true or false")
    if raw.get("gate") not in GATES:
        raise RegistryError(f"{REGISTRY_PATH.name}: {where}.gate must be one of {GATES}")
    accepted = _texts(f"{where}.accepted", raw.get("accepted", []))
    if ("{accepted}" in raw["predicate"]) != bool(accepted):
        raise RegistryError(
            f"{REGISTRY_PATH.name}: {where}: a predicate uses {{accepted}} exactly when the rule "
            "lists accepted values"
        )
    return RowRule(
        table=table,
        code=raw["code"],
        meaning=" ".join(raw["meaning"].split()),
        columns=_texts(f"{where}.columns", raw.get("columns", [])),
        predicate=" ".join(raw["predicate"].split()),
        blocking=raw["blocking"],
        gate=raw["gate"],
        accepted=accepted,
        key=_texts(f"{where}.key", raw.get("key", [])),
        pattern=raw.get("pattern"),
    )


def parse_registry(data: object) -> Registry:
    """Validate the loaded YAML of rules.yml."""
    if not isinstance(data, dict) or not isinstance(data.get("tables"), dict):
        raise RegistryError(f"{REGISTRY_PATH.name}: needs a mapping 'tables'")
    tables: dict[str, tuple[RowRule, ...]] = {}
    staged: dict[str, str] = {}
    for table, spec in data["tables"].items():
        if not isinstance(spec, dict) or not isinstance(spec.get("rules"), list):
            raise RegistryError(f"{REGISTRY_PATH.name}: tables.{table} needs a list 'rules'")
        rules = tuple(_rule(table, i, r) for i, r in enumerate(spec["rules"]))
        codes = [r.code for r in rules]
        if len(set(codes)) != len(codes):
            raise RegistryError(f"{REGISTRY_PATH.name}: tables.{table} repeats a rule code")
        tables[table] = rules
        staged[table] = str(spec.get("staged", f"stg_shop__{table}"))
    booleans = data.get("booleans") or {}
    calling = data.get("calling_codes") or {}
    return Registry(
        tables=tables,
        staged=staged,
        booleans={
            True: _texts("booleans.true", booleans.get("true")),
            False: _texts("booleans.false", booleans.get("false")),
        },
        calling_codes={str(k): str(v) for k, v in calling.items()},
        national_prefixes=_prefixes(data.get("national_prefixes") or {}, calling),
    )


def _prefixes(spec: object, calling: dict) -> dict[str, tuple[str, ...]]:
    if not isinstance(spec, dict):
        raise RegistryError(f"{REGISTRY_PATH.name}: national_prefixes must be a mapping")
    out = {}
    for country, prefixes in spec.items():
        where = f"{REGISTRY_PATH.name}: national_prefixes.{country}"
        if str(country) not in {str(k) for k in calling}:
            raise RegistryError(f"{where}: not a country of calling_codes")
        if not isinstance(prefixes, list) or not all(
            isinstance(p, str) and p.isdigit() for p in prefixes
        ):
            raise RegistryError(f"{where}: needs a list of digit strings (may be empty)")
        out[str(country)] = tuple(prefixes)
    return out


@functools.cache
def registry() -> Registry:
    """The registry of this installation (read once per process)."""
    with REGISTRY_PATH.open(encoding="utf-8") as fh:
        return parse_registry(yaml12.safe_load(fh))
