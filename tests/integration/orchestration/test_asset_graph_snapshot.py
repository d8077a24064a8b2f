"""The asset graph (keys, groups, deps, checks) equals the reviewed snapshot in asset_graph.json.

A change of lineage is deliberate: rewrite the snapshot with
`UPDATE_SNAPSHOT=1 .venv/bin/pytest tests/integration/orchestration/test_asset_graph_snapshot.py`
and review its diff with the code change.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tessera.orchestration.definitions import defs as load_defs

SNAPSHOT = Path(__file__).with_name("asset_graph.json")


def asset_graph_snapshot() -> dict:
    """Every asset (group, partitioned, deps) and every check (blocking), keyed by user string."""
    defs = load_defs()
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "partitioned": node.partitions_def is not None,
            "deps": sorted(p.to_user_string() for p in node.parent_keys),
        }
    checks = sorted(
        (
            {
                "asset": check_key.asset_key.to_user_string(),
                "check": check_key.name,
                "blocking": graph.get(check_key).blocking,
            }
            for check_key in graph.asset_check_keys
        ),
        key=lambda c: (c["asset"], c["check"]),
    )
    return {"assets": assets, "checks": checks}


def test_asset_graph_matches_the_snapshot() -> None:
    current = asset_graph_snapshot()
    text = json.dumps(current, indent=2, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_SNAPSHOT") == "1":
        SNAPSHOT.write_text(text)
    assert SNAPSHOT.exists(), f"{SNAPSHOT} is missing: write it with UPDATE_SNAPSHOT=1"
    recorded = json.loads(SNAPSHOT.read_text())
    added = sorted(set(current["assets"]) - set(recorded["assets"]))
    removed = sorted(set(recorded["assets"]) - set(current["assets"]))
    changed = sorted(
        k for k in set(current["assets"]) & set(recorded["assets"])
        if current["assets"][k] != recorded["assets"][k]
    )  # fmt: skip
    assert (added, removed, changed) == ([], [], []), (
        f"asset graph changed: added {added}, removed {removed}, changed {changed}; if intended, "
        "rerun with UPDATE_SNAPSHOT=1 and review the diff of asset_graph.json"
    )
    assert current["checks"] == recorded["checks"], (
        "asset checks changed; if intended, rerun with UPDATE_SNAPSHOT=1 and review the diff"
    )


#: Tables an asset body names that are neither a dep nor its key: what it writes beside its key,
#: and its own earlier dates (a dep on itself would be a cycle).
SIDE_TABLES = {
    "campaign_assignments": {"campaigns/matrix_runs", "campaigns/global_control_salts"},
    "outbound_messages": {"activations/outbound_exclusions", "activations/suppressions"},
    "send_approval": {"activations/send_approval_messages"},
    "deliveries": {"activations/suppressions"},
}
SCHEMAS = ("raw", "staging", "quarantine", "intermediate", "marts", "ml", "segments", "campaigns",
           "activations")  # fmt: skip


def test_no_asset_body_reads_a_table_it_does_not_declare() -> None:
    """Every `schema.table` an asset's body names is its key, a declared dep or a side table."""
    import inspect
    import re

    graph = load_defs().resolve_asset_graph()
    # `raw.orders` in SQL, not `tessera.ml.pipeline` in an import.
    pattern = re.compile(r"(?<![\w.])(" + "|".join(SCHEMAS) + r")\.([a-z_]+)\b")
    undeclared = {}
    for assets_def in graph.assets_defs:
        if not assets_def.is_executable:
            continue
        fn = assets_def.op.compute_fn.decorated_fn
        named = {f"{s}/{t}" for s, t in pattern.findall(inspect.getsource(fn))}
        # A check reads the asset it checks: it counts as the check's own.
        own = set(assets_def.keys) | {c.asset_key for c in assets_def.check_keys}
        allowed = {k.to_user_string() for k in own} | {
            p.to_user_string() for k in own for p in graph.get(k).parent_keys
        }
        missing = named - allowed - SIDE_TABLES.get(fn.__name__, set())
        if missing:
            undeclared[fn.__name__] = sorted(missing)
    assert undeclared == {}, f"asset bodies read tables they do not declare: {undeclared}"
