"""The journeys call the matrix's rules instead of copies: control hash and conditions."""

from __future__ import annotations

import inspect
import re

import duckdb
import pandas as pd

from tessera.campaigns import engine
from tessera.campaigns.catalog import Condition
from tessera.campaigns.engine import assign_campaigns, control_sql
from tessera.campaigns.segmentation import condition_sql
from tests.unit.campaigns.campaign_builders import D0, make_catalog, membership


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_the_matrix_statement_uses_the_same_control_expression():
    source = _squash(inspect.getsource(engine))
    assert (
        _squash(control_sql("$salt", "k.campaign_id", "m.customer_id", "w.control_cut")) in source
    )


def test_control_membership_agrees_with_the_daily_matrix():
    ids = [f"c{i:03d}" for i in range(300)]
    catalog = make_catalog(
        [{"id": "promo", "target_groups": ["g"], "control_share": 0.3}], control_salt="s1"
    )
    daily = assign_campaigns(membership({c: ["g"] for c in ids}), catalog, D0, None)
    daily = daily.assignments.to_pandas().set_index("customer_id")["is_control"]
    con = duckdb.connect()
    con.register("ids", pd.DataFrame({"customer_id": ids}))
    ours = (
        con.execute(
            f"select customer_id, {control_sql(repr('s1'), repr('promo'), 'customer_id', '3000')} "
            "from ids order by 1"
        )
        .df()
        .set_index("customer_id")
        .iloc[:, 0]
    )
    assert 40 < int(ours.sum()) < 140
    assert (daily.sort_index() == ours.sort_index()).all()


def test_conditions_are_the_target_groups_rule():
    con = duckdb.connect()
    con.register("t", pd.DataFrame({"churn_probability": [0.2, 0.7, None]}))
    where = " and ".join(condition_sql("churn_probability", Condition(gt=0.5)))
    rows = con.execute(f"select {where} from t").fetchall()
    assert [r[0] for r in rows] == [False, True, False]  # NULL never satisfies a condition
