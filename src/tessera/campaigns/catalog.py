"""The campaign catalog: pydantic models of marketing ops' YAML file and its loader with line numbers."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tessera import yaml12
from tessera.campaigns.attributes import BASE_ATTRIBUTES, AttributeType
from tessera.campaigns.errors import CatalogError, UnknownEnvironmentError

Channel = Literal["email", "sms", "direct_mail", "webhook"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Scalar = bool | int | float | str

_ID_PATTERN = r"^[a-z][a-z0-9_]*$"

#: Which provider serves each channel (mirrors activations.outbound.DEFAULT_CHANNEL_PROVIDERS;
#: a test keeps the two equal, campaigns/ does not import activations/).
CHANNEL_PROVIDERS: dict[str, str] = {
    "email": "sendgrid",
    "sms": "twilio",
    "webhook": "webhook",
    "direct_mail": "file",
}
Provider = Literal["sendgrid", "twilio", "webhook", "file"]
#: The environment a template id is looked up for when no other is named.
DEFAULT_ENVIRONMENT = "default"
#: A SendGrid dynamic template id: "d-" and 32 lower-case hexadecimal digits.
SENDGRID_TEMPLATE_RE = re.compile(r"^d-[0-9a-f]{32}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Dimension(_Model):
    """A micro-segment layer: buckets of one attribute (fixed bins, per-date quantiles or values)."""

    id: str = Field(pattern=_ID_PATTERN)
    attribute: str
    description: str = ""
    bins: list[float] | None = None
    quantiles: list[float] | None = None
    values: list[str] | None = None
    labels: list[str] | None = None
    other_label: str = "other"
    null_label: str = "none"

    def bucket_labels(self) -> list[str]:
        """Every label this dimension can produce (so every customer falls in one)."""
        if self.values is not None:
            return [*self.values, self.other_label, self.null_label]
        return [*(self.labels or []), self.null_label]


class Condition(_Model):
    """Operators on one attribute; several operators on one attribute are combined with AND."""

    eq: Scalar | None = None
    ne: Scalar | None = None
    lt: float | None = None
    le: float | None = None
    gt: float | None = None
    ge: float | None = None
    in_: list[Scalar] | None = Field(default=None, alias="in")
    not_in: list[Scalar] | None = None
    is_null: bool | None = None
    top_pct: float | None = Field(default=None, gt=0, le=100)

    def operators(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump(by_alias=True).items() if v is not None}


class TargetGroup(_Model):
    """A named filter over customer attributes and micro-segment buckets (all conditions AND)."""

    id: str = Field(pattern=_ID_PATTERN)
    description: str = ""
    where: dict[str, Condition] = Field(min_length=1)


class Campaign(_Model):
    """One campaign: who (target groups), how (channels in preference order), when, and rank."""

    id: str = Field(pattern=_ID_PATTERN)
    name: str = ""
    description: str = ""
    owner: str = "marketing"
    target_groups: list[str] = Field(min_length=1)
    channels: list[Channel] = Field(min_length=1)
    priority: int
    tie_break: int | None = None
    duration_days: int = Field(ge=0, le=365)
    start: dt.date
    end: dt.date | None = None
    weekdays: list[Weekday] | None = None
    control_share: float = Field(default=0.0, ge=0.0, le=0.9)
    ignore_locks: bool = False
    transactional: bool = False
    templates: dict[Channel, str]
    offer: str | None = None
    #: What kind of message it is in the audit of every message (audit.messages), e.g.
    #: `broadcast` or `onboarding`; default `transactional` or `campaign`. The collision report
    #: flags a broadcast and an onboarding message to one customer on one day.
    message_type: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*$")

    @field_validator("priority", "tie_break", mode="before")
    @classmethod
    def _strict_int(cls, value: Any) -> Any:
        # YAML `priority: 2.5` or `"high"` must not be coerced silently.
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        raise ValueError(f"must be an integer, got {value!r}")

    @property
    def display_name(self) -> str:
        return self.name or self.id

    def is_active(self, day: dt.date) -> bool:
        """Whether the campaign runs on ``day`` (inside its dates and on one of its weekdays)."""
        if day < self.start or (self.end is not None and day > self.end):
            return False
        return self.weekdays is None or WEEKDAYS[day.weekday()] in self.weekdays


class Cap(_Model):
    """At most ``max_contacts`` contacts on ``channels`` per customer in any ``days`` rolling days."""

    id: str = Field(pattern=_ID_PATTERN)
    channels: list[Channel] = Field(min_length=1)
    max_contacts: int = Field(ge=1)
    days: int = Field(ge=1, le=365)


class GlobalControl(_Model):
    """A fixed salted-hash share of all customers that receives no marketing campaign.

    Membership depends only on ``salt`` and the customer id (not on the date, the campaigns or
    the other policies), so it stays the same until the salt (or the share) is changed on
    purpose; the daily run records every change in campaigns.global_control_salts.
    """

    share: float = Field(default=0.05, ge=0.01, le=0.15)
    salt: str = Field(min_length=1)


PairRuleKind = Literal[
    "never_with", "never_followed_by", "only_with", "max_duplicates", "min_unique_offers"
]
#: Which fields each pair-rule kind needs (besides id, kind and days); the others must be unset.
PAIR_RULE_FIELDS: dict[str, tuple[str, ...]] = {
    "never_with": ("a", "b"),
    "never_followed_by": ("a", "b"),
    "only_with": ("a", "b"),
    "max_duplicates": ("max_contacts",),
    "min_unique_offers": ("min_offers",),
}


class PairRule(_Model):
    """A contact rule between campaigns or offers over a customer's last ``days`` days.

    Unica Optimize's semantics, all rules ANDed: ``never_with`` A and B never within ``days``
    of each other (both orders); ``never_followed_by`` no B within ``days`` after A; ``only_with``
    B only for customers contacted by A within ``days``; ``max_duplicates`` at most
    ``max_contacts`` contacts with the same offer (``offer``, or every offer) in ``days``;
    ``min_unique_offers`` an offer repeats inside ``days`` only once the customer holds at least
    ``min_offers`` different offers there (see docs/catalog.md).
    """

    id: str = Field(pattern=_ID_PATTERN)
    kind: PairRuleKind
    days: int = Field(ge=1, le=365)
    a: str | None = None
    b: str | None = None
    offer: str | None = None
    max_contacts: int | None = Field(default=None, ge=1)
    min_offers: int | None = Field(default=None, ge=2, le=20)


class Policies(_Model):
    """Contact policy applied to every campaign."""

    always_exclude: list[str] = Field(default_factory=list)
    caps: list[Cap] = Field(default_factory=list)
    capacity: dict[Channel, int] = Field(default_factory=dict)
    control_salt: str = "tessera"
    global_control: GlobalControl | None = None
    pair_rules: list[PairRule] = Field(default_factory=list)

    @field_validator("capacity")
    @classmethod
    def _non_negative(cls, value: dict[str, int]) -> dict[str, int]:
        for channel, n in value.items():
            if n < 0:
                raise ValueError(f"capacity for {channel} must be >= 0, got {n}")
        return value


# --------------------------------------------------------------------------- triggers (journeys)

#: Event types a trigger may start on: the collector's shop events and the stock business event.
TRIGGER_EVENTS = (
    "page_view",
    "product_view",
    "add_to_cart",
    "search",
    "app_open",
    "order",
    "inventory",
)
#: Fields of an entry event a trigger's ``event_where`` may test (``properties.<name>`` too).
EVENT_FIELDS = ("category", "product_id", "source")
_WAIT_RE = re.compile(r"^(\d+)\s*(m|min|h|d)$")
_WAIT_MINUTES = {"m": 1, "min": 1, "h": 60, "d": 1440}


def wait_minutes(text: str) -> int:
    """``30m``, ``4h``, ``1d`` -> minutes."""
    match = _WAIT_RE.match(text.strip())
    if not match:
        raise ValueError(f"wait must be a number and m, h or d (30m, 4h, 1d), got {text!r}")
    return int(match.group(1)) * _WAIT_MINUTES[match.group(2)]


class InterestAudience(_Model):
    """Who a stock event is about: customers who showed interest in the product while it was
    out of stock (their events of these types since it went out of stock, within ``days``)."""

    event_types: list[Literal["product_view", "add_to_cart"]] = Field(
        default_factory=lambda: ["product_view", "add_to_cart"], min_length=1
    )
    days: int = Field(default=30, ge=1, le=365)


class TriggerEntry(_Model):
    """How a customer enters: on an event (``event``) or on entering/leaving a target group."""

    event: (
        Literal[
            "page_view", "product_view", "add_to_cart", "search", "app_open", "order", "inventory"
        ]
        | None
    ) = None
    event_where: dict[str, Condition] = Field(default_factory=dict)
    segment: str | None = None
    segment_event: Literal["enter", "exit"] = "enter"
    audience: InterestAudience | None = None


class TriggerStep(_Model):
    """One message of a journey: sent ``wait`` after entry if still in the journey and ``when``
    (conditions on the customer's latest features and scores) holds when it is due."""

    id: str = Field(pattern=_ID_PATTERN)
    wait: str = "0m"
    channel: Channel
    template: str
    offer: str | None = None
    when: dict[str, Condition] = Field(default_factory=dict)

    @field_validator("wait")
    @classmethod
    def _wait(cls, value: str) -> str:
        wait_minutes(value)
        return value

    @property
    def wait_min(self) -> int:
        return wait_minutes(self.wait)


class TriggerExit(_Model):
    """What ends a journey before its next step: an order since entry, an unsubscribe or
    suppression of the step's address, entering another journey."""

    ordered: bool = True
    unsubscribed: bool = True
    entered_other: bool = False


class Trigger(_Model):
    """An event-triggered journey: entry, conditions on the customer, steps, exits, controls."""

    id: str = Field(pattern=_ID_PATTERN)
    name: str = ""
    description: str = ""
    entry: TriggerEntry
    #: Conditions on the customer's latest features and scores at entry (all AND).
    customer: dict[str, Condition] = Field(default_factory=dict)
    steps: list[TriggerStep] = Field(min_length=1)
    exit: TriggerExit = Field(default_factory=TriggerExit)
    #: One entry per customer and these event fields (``[product_id]``: once per product).
    key_by: list[Literal["product_id", "category"]] = Field(default_factory=list)
    #: ``never``: one entry per key ever; ``after_end``: again once the previous entry ended
    #: and ``re_entry_days`` have passed since it started.
    re_entry: Literal["never", "after_end"] = "after_end"
    re_entry_days: int = Field(default=0, ge=0, le=365)
    control_share: float = Field(default=0.0, ge=0.0, le=0.9)
    #: Days a customer who entered is locked from daily campaigns (0: not locked).
    lock_days: int = Field(default=0, ge=0, le=365)
    ignore_locks: bool = False
    transactional: bool = False
    enabled: bool = True

    @property
    def campaign_id(self) -> str:
        """The id its messages carry in the ledger, caps and locks (beside daily campaigns)."""
        return f"trigger_{self.id}"


#: Provider template ids of one catalog template: one id for every environment, or one per
#: environment (``default`` required, e.g. ``{default: d-..., production: d-...}``).
TemplateIds = str | dict[str, str]


class Catalog(_Model):
    """The whole catalog file."""

    version: Literal[1] = 1
    dimensions: list[Dimension] = Field(min_length=1)
    target_groups: list[TargetGroup] = Field(default_factory=list)
    campaigns: list[Campaign] = Field(default_factory=list)
    policies: Policies = Field(default_factory=Policies)
    #: catalog template name -> provider -> id (or ids per environment). Campaigns name
    #: templates by readable names; what a provider receives is looked up here.
    templates: dict[str, dict[Provider, TemplateIds]] = Field(default_factory=dict)
    #: Event-triggered journeys (tessera.journeys), under the same policies as the campaigns.
    triggers: list[Trigger] = Field(default_factory=list)

    def provider_template_id(
        self, name: str, provider: str, environment: str = DEFAULT_ENVIRONMENT
    ) -> str:
        """The id ``provider`` knows template ``name`` by in ``environment``.

        Unmapped names are sent as they are (a campaign may name a provider id directly).
        """
        self.check_environment(environment)
        spec = self.templates.get(name, {}).get(provider)  # type: ignore[call-overload]
        if spec is None:
            return name
        if isinstance(spec, str):
            return spec
        return spec.get(environment) or spec.get(DEFAULT_ENVIRONMENT) or name

    def environments(self) -> set[str]:
        """``default`` and every environment a per-environment template mapping names."""
        names = {DEFAULT_ENVIRONMENT}
        for by_provider in self.templates.values():
            for spec in by_provider.values():
                if isinstance(spec, dict):
                    names.update(spec)
        return names

    def check_environment(self, environment: str) -> None:
        """Refuse an environment no mapping names: a typo would send the default ids.

        ``TESSERA_ENVIRONMENT=prodution`` used to fall back silently to every template's
        ``default`` id, i.e. send test templates to real customers.
        """
        known = self.environments()
        if environment not in known:
            raise UnknownEnvironmentError(
                f"TESSERA_ENVIRONMENT={environment!r} is not an environment of the catalog's "
                f"templates section (known: {', '.join(sorted(known))}); give a template an "
                f"id for it (templates: {{name: {{sendgrid: {{default: d-..., "
                f"{environment}: d-...}}}}}}) or unset TESSERA_ENVIRONMENT"
            )

    def campaign(self, campaign_id: str) -> Campaign:
        for c in self.campaigns:
            if c.id == campaign_id:
                return c
        raise KeyError(campaign_id)

    def target_group(self, group_id: str) -> TargetGroup:
        for g in self.target_groups:
            if g.id == group_id:
                return g
        raise KeyError(group_id)

    def active_campaigns(self, day: dt.date) -> list[Campaign]:
        return [c for c in self.campaigns if c.is_active(day)]

    def template(self, campaign_id: str, channel: str) -> tuple[str, str | None]:
        """The catalog template name and offer for ``campaign_id`` on ``channel``."""
        campaign = self.campaign(campaign_id)
        return campaign.templates[channel], campaign.offer  # type: ignore[index]

    def channel_template_id(
        self, campaign_id: str, channel: str, environment: str = DEFAULT_ENVIRONMENT
    ) -> str:
        """The id the channel's provider receives for ``campaign_id`` in ``environment``."""
        name, _ = self.template(campaign_id, channel)
        provider = CHANNEL_PROVIDERS.get(channel, channel)
        return self.provider_template_id(name, provider, environment)

    def templates_frame(self) -> Any:
        """One row per (campaign_id, channel): name, template_id, offer, owner (for activations)."""
        import pandas as pd

        rows = [
            {
                "campaign_id": c.id,
                "campaign_name": c.display_name,
                "channel": ch,
                "template_id": c.templates[ch],
                "offer": c.offer,
                "owner": c.owner,
            }
            for c in self.campaigns
            for ch in c.channels
        ]
        return pd.DataFrame(
            rows,
            columns=["campaign_id", "campaign_name", "channel", "template_id", "offer", "owner"],
        )

    def fingerprint(self) -> str:
        """A short hash of the catalog content, recorded with each matrix date for audit."""
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


# --------------------------------------------------------------------------- loading with lines

Path_ = tuple[Any, ...]


def _node_lines(root: yaml.Node) -> tuple[dict[Path_, int], list[tuple[Path_, int, str]]]:
    """Map every path in the YAML tree to its 1-based line; also report duplicate mapping keys."""
    lines: dict[Path_, int] = {}
    duplicates: list[tuple[Path_, int, str]] = []

    def walk(node: yaml.Node, path: Path_) -> None:
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                key = key_node.value
                if key in seen:
                    duplicates.append((path, key_node.start_mark.line + 1, key))
                seen.add(key)
                # the key's line, not the value's: a nested mapping starts on the next line
                lines[(*path, key)] = key_node.start_mark.line + 1
                walk(value_node, (*path, key))
                lines[(*path, key)] = key_node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*path, i))

    walk(root, ())
    return lines, duplicates


class _Locator:
    """Turns a path in the document into "campaign x: field ... (file:line)"."""

    _KINDS = {
        "campaigns": "campaign",
        "target_groups": "target group",
        "dimensions": "dimension",
        "triggers": "trigger",
    }
    _POLICY_KINDS = {"caps": "cap", "pair_rules": "pair rule"}

    def __init__(self, display: str, data: Any, lines: dict[Path_, int]) -> None:
        self.display = display
        self.data = data
        self.lines = lines

    def line(self, path: Path_) -> int:
        path = tuple(path)
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)

    def owner_and_field(self, path: Path_) -> tuple[str, str]:
        path = tuple(path)
        if len(path) >= 2 and path[0] in self._KINDS and isinstance(path[1], int):
            item = self._item(path[:2])
            ident = item.get("id") if isinstance(item, dict) else None
            owner = f"{self._KINDS[path[0]]} {ident if ident else f'#{path[1] + 1}'}"
            rest = path[2:]
        elif (
            len(path) >= 3
            and path[0] == "policies"
            and path[1] in self._POLICY_KINDS
            and isinstance(path[2], int)
        ):
            item = self._item(path[:3])
            ident = item.get("id") if isinstance(item, dict) else None
            owner = f"{self._POLICY_KINDS[path[1]]} {ident if ident else f'#{path[2] + 1}'}"
            rest = path[3:]
        elif path and path[0] == "policies":
            owner, rest = "policies", path[1:]
        else:
            owner, rest = "catalog", path
        return owner, ".".join(str(p) for p in rest)

    def _item(self, path: Path_) -> Any:
        node = self.data
        for part in path:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                return None
        return node

    def message(self, path: Path_, text: str, line: int | None = None) -> str:
        owner, field = self.owner_and_field(path)
        where = f"{field} " if field else ""
        return f"{owner}: {where}{text} ({self.display}:{line or self.line(path)})"


def _pydantic_text(error: dict[str, Any]) -> tuple[Path_, str, Path_]:
    """A plain-English message for one pydantic error, the path it names and the path of its line."""
    path, text = _pydantic_message(error)
    return path, text, _clean_loc(error) if error["type"] == "extra_forbidden" else path


def _clean_loc(error: dict[str, Any]) -> Path_:
    return tuple(
        p
        for p in error["loc"]
        if p not in {"bool", "int", "float", "str", "list[...]", "date"}
        and not (isinstance(p, str) and p.startswith("function-"))
    )


def _pydantic_message(error: dict[str, Any]) -> tuple[Path_, str]:
    loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    # union members add their type name to the path; it means nothing to a user
    loc = tuple(
        p
        for p in loc
        if p not in {"bool", "int", "float", "str", "list[...]", "date", "literal['email','sms']"}
    )
    kind = error["type"]
    given = error.get("input")
    if kind == "extra_forbidden":
        return loc[:-1], f"unknown field {loc[-1]!r}" + _hint(str(loc[-1]))
    if kind == "missing":
        return loc[:-1], f"missing required field {loc[-1]!r}"
    if kind in {"int_type", "int_parsing", "int_from_float"}:
        return loc, f"must be an integer, got {given!r}"
    if kind in {"float_type", "float_parsing"}:
        return loc, f"must be a number, got {given!r}"
    if kind in {"bool_type", "bool_parsing"}:
        return loc, f"must be true or false, got {given!r}"
    if kind.startswith("date"):
        return loc, f"must be a real date (YYYY-MM-DD), got {given!r}"
    if kind in {"literal_error", "enum"}:
        expected = error.get("ctx", {}).get("expected", "")
        return loc, f"must be one of {expected}, got {given!r}"
    if kind == "string_pattern_mismatch":
        return loc, f"must be lower_snake_case (letters, digits, _), got {given!r}"
    if kind == "value_error":
        return loc, str(error.get("ctx", {}).get("error", error["msg"]))
    return loc, f"{error['msg'].lower()}, got {given!r}"


def _hint(field: str) -> str:
    if field == "run_anyway":
        return (
            " (the lock override is called ignore_locks; run_anyway is reserved for"
            " 'send on yesterday's segments when today's data is blocked')"
        )
    return ""


class _Loader(yaml12.Loader):
    """Safe loading with YAML 1.2 booleans (``NO``, ``on`` stay text: :mod:`tessera.yaml12`) that
    leaves dates as text, so pydantic reports 2025-02-30 with its line."""


_Loader.add_constructor(
    "tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node)
)


#: The most YAML nodes a catalog may expand to once aliases are followed. The demo catalog has
#: about 1,500; an alias bomb (a few hundred bytes that expand to millions of nodes) stops here
#: instead of taking seconds and gigabytes in the line map and in validation.
MAX_EXPANDED_NODES = 100_000


def _expanded_size(root: yaml.Node, source: str) -> int:
    """Nodes in the document with every alias expanded, computed without expanding them."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        ident = id(node)
        if ident in sizes:
            return sizes[ident]
        if ident in active:
            raise CatalogError(
                source,
                [
                    f"catalog: an alias refers to its own anchor (a recursive structure) "
                    f"({source}:{node.start_mark.line + 1})"
                ],
            )
        active.add(ident)
        total = 1
        if isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total += sum(size(item) for item in node.value)
        active.discard(ident)
        sizes[ident] = total = min(total, MAX_EXPANDED_NODES + 1)
        return total

    return size(root)


def parse_catalog(text: str, source: str = "catalog.yml") -> Catalog:
    """Parse and validate catalog YAML; raise :class:`CatalogError` listing every problem."""
    try:
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
            if root is not None and _expanded_size(root, source) > MAX_EXPANDED_NODES:
                raise CatalogError(
                    source,
                    [
                        f"catalog: YAML anchors and aliases expand to more than "
                        f"{MAX_EXPANDED_NODES:,} nodes; write the repeated parts out or use "
                        f"fewer nested aliases ({source}:1)"
                    ],
                )
            # Built from the node already composed: the text is parsed once.
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise CatalogError(
            source, [f"catalog: not valid YAML: {problem} ({source}:{line})"]
        ) from exc
    if root is None or not isinstance(data, dict):
        raise CatalogError(source, [f"catalog: the file must be a YAML mapping ({source}:1)"])
    lines, duplicates = _node_lines(root)
    locator = _Locator(source, data, lines)
    problems = [
        locator.message(path, f"duplicate key {key!r}", line) for path, line, key in duplicates
    ]
    try:
        catalog = Catalog.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            path, text_, line_path = _pydantic_text(error)
            problems.append(locator.message(path, text_, locator.line(line_path)))
        raise CatalogError(source, list(dict.fromkeys(problems))) from None
    problems.extend(_cross_check(catalog, locator))
    if problems:
        raise CatalogError(source, list(dict.fromkeys(problems)))
    return catalog


def load_catalog(path: str | Path) -> Catalog:
    """Read and validate the catalog at ``path`` (errors name this file and its lines)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(str(path), [f"catalog: cannot read the file: {exc.strerror}"]) from exc
    return parse_catalog(text, source=str(path))


# --------------------------------------------------------------------------- cross-field rules


def attribute_types(catalog: Catalog) -> dict[str, AttributeType]:
    """Every attribute a target group may use: base attributes plus one text per dimension."""
    return {**BASE_ATTRIBUTES, **{d.id: "text" for d in catalog.dimensions}}


def _duplicates(ids: Iterable[str]) -> list[tuple[int, str]]:
    seen: set[str] = set()
    out = []
    for i, ident in enumerate(ids):
        if ident in seen:
            out.append((i, ident))
        seen.add(ident)
    return out


def _check_dimension(i: int, d: Dimension, loc: _Locator) -> list[str]:
    p = ("dimensions", i)
    problems = []
    if d.attribute not in BASE_ATTRIBUTES:
        problems.append(loc.message((*p, "attribute"), f"unknown attribute {d.attribute!r}"))
    kinds = [k for k in ("bins", "quantiles", "values") if getattr(d, k) is not None]
    if len(kinds) != 1:
        problems.append(loc.message(p, "needs exactly one of bins, quantiles or values"))
        return problems
    kind = kinds[0]
    if kind in {"bins", "quantiles"}:
        edges = getattr(d, kind)
        if list(edges) != sorted(set(edges)):
            problems.append(loc.message((*p, kind), "must be strictly increasing"))
        if kind == "quantiles" and any(not 0 < q < 1 for q in edges):
            problems.append(loc.message((*p, kind), "quantiles must be between 0 and 1"))
        if d.labels is None or len(d.labels) != len(edges) + 1:
            problems.append(
                loc.message(
                    (*p, "labels"),
                    f"needs {len(edges) + 1} labels for {len(edges)} {kind} edges,"
                    f" got {0 if d.labels is None else len(d.labels)}",
                )
            )
        if BASE_ATTRIBUTES.get(d.attribute) not in (None, "number"):
            problems.append(loc.message((*p, "attribute"), f"{d.attribute!r} is not numeric"))
    elif d.labels is not None:
        problems.append(loc.message((*p, "labels"), "use values (and other_label) for categories"))
    labels = d.bucket_labels()
    if len(set(labels)) != len(labels):
        problems.append(loc.message(p, f"bucket labels must be distinct, got {labels}"))
    return problems


def _check_target_group(
    i: int, g: TargetGroup, types: dict[str, AttributeType], buckets: dict[str, list[str]], loc
) -> list[str]:
    return _check_where(("target_groups", i, "where"), g.where, types, buckets, loc)


def _check_where(
    path: Path_,
    where: dict[str, Condition],
    types: dict[str, AttributeType],
    buckets: dict[str, list[str]],
    loc,
) -> list[str]:
    """Conditions on customer attributes (a target group's ``where``, a trigger's conditions)."""
    problems = []
    for attr, cond in where.items():
        p = (*path, attr)
        if attr not in types:
            problems.append(
                loc.message(p, f"unknown attribute {attr!r} (not a feature, score or dimension)")
            )
            continue
        kind = types[attr]
        ops = cond.operators()
        if not ops:
            problems.append(loc.message(p, "needs at least one operator (eq, lt, in, ...)"))
        for op, value in ops.items():
            if op in {"lt", "le", "gt", "ge", "top_pct"} and kind != "number":
                problems.append(loc.message((*p, op), f"{op} needs a numeric attribute"))
            values = value if isinstance(value, list) else [value]
            if op in {"eq", "ne", "in", "not_in"}:
                for v in values:
                    bad = (
                        (kind == "bool" and not isinstance(v, bool))
                        or (kind == "number" and isinstance(v, bool | str))
                        or (kind == "text" and not isinstance(v, str))
                    )
                    if bad:
                        problems.append(loc.message((*p, op), f"must be a {kind}, got {v!r}"))
                    elif attr in buckets and v not in buckets[attr]:
                        problems.append(
                            loc.message(
                                (*p, op), f"unknown bucket {v!r}; buckets are {buckets[attr]}"
                            )
                        )
    return problems


def _ranks_tied(a: Campaign, b: Campaign) -> bool:
    """Whether no declared rule separates two campaigns of equal priority that can both run."""
    if a.priority != b.priority:
        return False
    if a.tie_break is not None and b.tie_break is not None and a.tie_break != b.tie_break:
        return False
    if (a.tie_break is None) != (b.tie_break is None):
        return False
    if a.start != b.start:
        return False  # the earlier start wins: a declared tie-break
    a_end = a.end or dt.date.max
    b_end = b.end or dt.date.max
    overlap = max(a.start, b.start) <= min(a_end, b_end)
    if overlap and a.weekdays is not None and b.weekdays is not None:
        overlap = bool(set(a.weekdays) & set(b.weekdays))
    return overlap


def _check_campaign(i: int, c: Campaign, groups: set[str], loc: _Locator) -> list[str]:
    p = ("campaigns", i)
    problems = []
    for j, g in enumerate(c.target_groups):
        if g not in groups:
            problems.append(loc.message((*p, "target_groups", j), f"unknown target group {g!r}"))
    if len(set(c.channels)) != len(c.channels):
        problems.append(loc.message((*p, "channels"), "lists a channel twice"))
    for ch in c.channels:
        if ch not in c.templates:
            problems.append(loc.message((*p, "templates"), f"needs a template for channel {ch}"))
    for ch in c.templates:
        if ch not in c.channels:
            problems.append(loc.message((*p, "templates", ch), f"template for unused channel {ch}"))
    if c.end is not None and c.end < c.start:
        problems.append(loc.message((*p, "end"), f"{c.end} is before start {c.start}"))
    elif c.weekdays is not None:
        if not c.weekdays:
            problems.append(loc.message((*p, "weekdays"), "is empty: the campaign never runs"))
        elif c.end is not None and (c.end - c.start).days < 7:
            days = [c.start + dt.timedelta(n) for n in range((c.end - c.start).days + 1)]
            if not any(c.is_active(d) for d in days):
                problems.append(
                    loc.message(
                        (*p, "weekdays"),
                        f"no {'/'.join(c.weekdays)} between {c.start} and {c.end}: never runs",
                    )
                )
    return problems


def _cross_check(catalog: Catalog, loc: _Locator) -> list[str]:
    problems: list[str] = []
    for section, items in (
        ("dimensions", catalog.dimensions),
        ("target_groups", catalog.target_groups),
        ("campaigns", catalog.campaigns),
    ):
        for i, ident in _duplicates(x.id for x in items):
            problems.append(loc.message((section, i, "id"), f"duplicate id {ident!r}"))
    for i, ident in _duplicates(c.id for c in catalog.policies.caps):
        problems.append(loc.message(("policies", "caps", i, "id"), f"duplicate id {ident!r}"))
    problems.extend(_check_pair_rules(catalog, loc))
    clash = {d.id for d in catalog.dimensions} & set(BASE_ATTRIBUTES)
    for i, d in enumerate(catalog.dimensions):
        if d.id in clash:
            problems.append(
                loc.message(("dimensions", i, "id"), f"{d.id!r} clashes with an attribute name")
            )
        problems.extend(_check_dimension(i, d, loc))
    types = attribute_types(catalog)
    buckets = {d.id: d.bucket_labels() for d in catalog.dimensions}
    for i, g in enumerate(catalog.target_groups):
        problems.extend(_check_target_group(i, g, types, buckets, loc))
    group_ids = {g.id for g in catalog.target_groups}
    for i, c in enumerate(catalog.campaigns):
        problems.extend(_check_campaign(i, c, group_ids, loc))
    for i, a in enumerate(catalog.campaigns):
        for b in catalog.campaigns[:i]:
            if a.id != b.id and _ranks_tied(a, b):
                problems.append(
                    loc.message(
                        ("campaigns", i, "priority"),
                        f"ties with campaign {b.id} (priority {a.priority}, same start {a.start},"
                        " overlapping dates) and no tie_break decides: give one a different"
                        " priority or both distinct tie_break values",
                    )
                )
    problems.extend(_check_templates(catalog, loc))
    problems.extend(_check_triggers(catalog, types, buckets, group_ids, loc))
    for j, g in enumerate(catalog.policies.always_exclude):
        if g not in group_ids:
            problems.append(
                loc.message(("policies", "always_exclude", j), f"unknown target group {g!r}")
            )
    return problems


def _check_pair_rules(catalog: Catalog, loc: _Locator) -> list[str]:
    """Each pair rule names what its kind needs, known campaigns and an offer some campaign has."""
    problems: list[str] = []
    rules = catalog.policies.pair_rules
    for i, ident in _duplicates(r.id for r in rules):
        problems.append(loc.message(("policies", "pair_rules", i, "id"), f"duplicate id {ident!r}"))
    campaign_ids = {c.id for c in catalog.campaigns}
    offers = {c.offer for c in catalog.campaigns if c.offer}
    for i, r in enumerate(rules):
        p = ("policies", "pair_rules", i)
        needed = PAIR_RULE_FIELDS[r.kind]
        for name in needed:
            if getattr(r, name) is None:
                problems.append(loc.message(p, f"kind {r.kind} needs {name!r}"))
        # max_duplicates without an offer applies to every offer
        allowed = set(needed) | ({"offer"} if r.kind == "max_duplicates" else set())
        for name in ("a", "b", "offer", "max_contacts", "min_offers"):
            if name not in allowed and getattr(r, name) is not None:
                problems.append(
                    loc.message(
                        (*p, name),
                        f"is not used by kind {r.kind} (it takes "
                        f"{', '.join(sorted(allowed | {'days'}))})",
                    )
                )
        for name in ("a", "b"):
            value = getattr(r, name)
            if name in needed and value is not None and value not in campaign_ids:
                problems.append(loc.message((*p, name), f"unknown campaign {value!r}"))
        if r.kind in {"never_with", "only_with"} and r.a is not None and r.a == r.b:
            problems.append(
                loc.message(
                    (*p, "b"),
                    f"names campaign {r.a} as both a and b (for a pause between two contacts "
                    "of one campaign use never_followed_by)",
                )
            )
        if r.kind == "max_duplicates" and r.offer is not None and r.offer not in offers:
            problems.append(
                loc.message(
                    (*p, "offer"),
                    f"no campaign has offer {r.offer!r} (offers: {', '.join(sorted(offers)) or 'none'})",
                )
            )
    return problems


def _template_id_problem(provider: str, template_id: str) -> str | None:
    if provider == "sendgrid" and not SENDGRID_TEMPLATE_RE.match(template_id):
        return (
            f"{template_id!r} is not a SendGrid dynamic template id (d- followed by 32 "
            "lower-case hexadecimal digits)"
        )
    return None


def _check_templates(catalog: Catalog, loc: _Locator) -> list[str]:
    """Template ids per channel's provider: mapped ids well-formed, every campaign's resolvable."""
    problems: list[str] = []
    for name, by_provider in catalog.templates.items():
        for provider, spec in by_provider.items():
            path: Path_ = ("templates", name, provider)
            ids = {DEFAULT_ENVIRONMENT: spec} if isinstance(spec, str) else dict(spec)
            if isinstance(spec, dict) and DEFAULT_ENVIRONMENT not in spec:
                problems.append(
                    loc.message(
                        path,
                        f"needs a '{DEFAULT_ENVIRONMENT}' id (used by every environment not "
                        f"listed; has {', '.join(sorted(spec)) or 'none'})",
                    )
                )
            for env, template_id in ids.items():
                problem = _template_id_problem(provider, template_id)
                if problem:
                    where = path if isinstance(spec, str) else (*path, env)
                    problems.append(loc.message(where, problem))
    for i, c in enumerate(catalog.campaigns):
        for channel, name in c.templates.items():
            provider = CHANNEL_PROVIDERS.get(channel, channel)
            if name in catalog.templates and provider in catalog.templates[name]:
                continue  # checked above
            problem = _template_id_problem(provider, name)
            if problem:
                problems.append(
                    loc.message(
                        ("campaigns", i, "templates", channel),
                        f"{problem}: map it in the catalog's templates section, e.g. "
                        f"templates: {{{name}: {{{provider}: {{default: d-...}}}}}}",
                    )
                )
    return problems


def _check_triggers(
    catalog: Catalog,
    types: dict[str, AttributeType],
    buckets: dict[str, list[str]],
    group_ids: set[str],
    loc: _Locator,
) -> list[str]:
    problems: list[str] = []
    for i, ident in _duplicates(t.id for t in catalog.triggers):
        problems.append(loc.message(("triggers", i, "id"), f"duplicate id {ident!r}"))
    campaign_ids = {c.id for c in catalog.campaigns}
    for i, t in enumerate(catalog.triggers):
        p: Path_ = ("triggers", i)
        if t.campaign_id in campaign_ids:
            problems.append(loc.message((*p, "id"), f"clashes with campaign {t.campaign_id}"))
        e = t.entry
        if (e.event is None) == (e.segment is None):
            problems.append(loc.message((*p, "entry"), "needs exactly one of event or segment"))
        if e.segment is not None and e.segment not in group_ids:
            problems.append(
                loc.message((*p, "entry", "segment"), f"unknown target group {e.segment!r}")
            )
        if e.segment is not None and (e.event_where or e.audience):
            problems.append(
                loc.message((*p, "entry"), "event_where and audience need an entry event")
            )
        if (e.audience is not None) != (e.event == "inventory"):
            problems.append(
                loc.message(
                    (*p, "entry", "audience"),
                    "an inventory entry needs an audience (who showed interest), and only it",
                )
            )
        for field_name in e.event_where:
            if field_name not in (*EVENT_FIELDS, "in_stock", "quantity") and not (
                field_name.startswith("properties.") and len(field_name) > 11
            ):
                problems.append(
                    loc.message(
                        (*p, "entry", "event_where", field_name),
                        f"unknown event field {field_name!r} (one of "
                        f"{', '.join(EVENT_FIELDS)}, in_stock, quantity, properties.<name>)",
                    )
                )
        if "product_id" in t.key_by and e.event in ("search", "app_open", "page_view"):
            problems.append(loc.message((*p, "key_by"), f"{e.event} events carry no product_id"))
        if e.segment is not None and t.key_by:
            problems.append(loc.message((*p, "key_by"), "segment triggers are keyed by customer"))
        problems.extend(_check_where((*p, "customer"), t.customer, types, buckets, loc))
        for part, where in [("customer", t.customer)] + [
            (f"steps.{j}.when", s.when) for j, s in enumerate(t.steps)
        ]:
            for attr, cond in where.items():
                if cond.top_pct is not None:
                    at = (*p, *part.split("."), attr)
                    at = tuple(int(x) if isinstance(x, str) and x.isdigit() else x for x in at)
                    problems.append(
                        loc.message(
                            (*at, "top_pct"),
                            "top_pct is a share of one date's customers: use a target group "
                            "with it (entry.segment) instead",
                        )
                    )
        for j, d in _duplicates(s.id for s in t.steps):
            problems.append(loc.message((*p, "steps", j, "id"), f"duplicate step id {d!r}"))
        waits = [s.wait_min for s in t.steps]
        if waits != sorted(waits):
            problems.append(
                loc.message((*p, "steps"), "steps must be in order of their wait (from entry)")
            )
        for j, step in enumerate(t.steps):
            problems.extend(_check_where((*p, "steps", j, "when"), step.when, types, buckets, loc))
            problem = _template_id_problem(CHANNEL_PROVIDERS[step.channel], step.template)
            mapped = CHANNEL_PROVIDERS[step.channel] in catalog.templates.get(step.template, {})
            if problem and not mapped:
                problems.append(loc.message((*p, "steps", j, "template"), problem))
    return problems
