"""Fault injection of the local sink: which provider requests fail, and how."""

from __future__ import annotations

from dataclasses import dataclass

FAULT_KINDS = ("429", "500", "503", "slow", "drop")


@dataclass
class FaultPlan:
    """Which provider requests fail and how; decisions come from a seeded generator."""

    rate: float = 0.0
    kinds: tuple[str, ...] = ("429",)
    seed: int = 0
    first_n: int = 0  # additionally fault exactly the first n requests
    slow_s: float = 2.0
    retry_after_s: float = 0.2
    #: Every provider request takes this long between reading its body and storing it (a
    #: provider under load), independent of ``rate``: a client timeout below it is ambiguous.
    processing_s: float = 0.0

    @classmethod
    def from_dict(cls, d: dict) -> FaultPlan:
        plan = cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})
        plan.kinds = tuple(plan.kinds)
        bad = [k for k in plan.kinds if k not in FAULT_KINDS]
        if bad:
            raise ValueError(f"unknown fault kind(s) {bad}; choose from {FAULT_KINDS}")
        return plan
