"""Champion/challenger: a worse model is never promoted, an equal or better one is."""

from __future__ import annotations

import json
from dataclasses import replace

from tessera.ml.registry import (
    champion,
    data_fingerprint,
    list_entries,
    load_model,
    register,
    should_promote,
)
from tessera.ml.training import train_models


def _weak(training_set, plan, small_config):
    """A run whose winner is a one-tree LightGBM: worse than any champion on every metric.

    (Left to choose, a weak run picks BG/NBD, which ties a champion that picked it too.)"""
    weak_config = replace(small_config, num_boost_round=1, num_leaves=2, bgnbd_features=False)
    weak = train_models(training_set, plan, weak_config)
    weak.winners = {"churn": "lightgbm", "value": "lightgbm"}
    return weak


def test_promotion_rule():
    assert should_promote(0.80, None, 0.6) == (True, "no champion yet")
    assert should_promote(0.80, 0.80, 0.6)[0] is True
    assert should_promote(0.81, 0.80, 0.6)[0] is True
    assert should_promote(0.79, 0.80, 0.6)[0] is False
    assert should_promote(0.55, None, 0.6)[0] is False
    assert should_promote(float("nan"), None, 0.6)[0] is False


def test_worse_challenger_is_not_promoted_and_equal_one_is(tmp_path, training, small_config):
    training_set, plan, good = training
    fingerprint = data_fingerprint(training_set)
    first = register(tmp_path, good, fingerprint)
    assert first.metadata["promoted"] == {"churn": True, "value": True}
    meta = first.metadata
    assert meta["data_fingerprint"] == fingerprint
    assert meta["training_window"]["evaluation"] == [d.isoformat() for d in plan.evaluation]
    assert "lightgbm" in meta["library_versions"] and meta["features"]

    second = register(tmp_path, _weak(training_set, plan, small_config), fingerprint)
    assert second.version != first.version
    assert second.metadata["promoted"]["churn"] is False
    assert "champion" in second.metadata["promotion"]["churn"]["reason"]
    assert champion(tmp_path, "churn", plan.cutoff).version == first.version

    # Same model again under other settings that do not change it: equal is promoted.
    same = train_models(training_set, plan, replace(small_config, max_train_rows=10**7))
    third = register(tmp_path, same, fingerprint)
    promotion = third.metadata["promotion"]
    assert promotion["churn"]["promoted"] is True, json.dumps(promotion)
    # (The one-tree run may have won value on top-10% capture: then it is the champion.)
    value = promotion["value"]
    assert value["promoted"] is (value["challenger"] >= value["champion"] - 1e-9)
    assert champion(tmp_path, "churn", plan.cutoff).version == third.version
    assert len(list_entries(tmp_path)) == 3
    assert load_model(third, "churn").predict(training_set.head(5)).shape == (5,)
    # The champion is whichever candidate won, and the metadata says which and why.
    assert third.metadata["promotion"]["churn"]["model"] == same.winners["churn"]
    assert set(third.metadata["fits"]) == {"evaluation", "final"}


def test_champion_must_be_trained_before_the_date(tmp_path, training):
    training_set, plan, good = training
    register(tmp_path, good, data_fingerprint(training_set))
    assert champion(tmp_path, "churn", plan.cutoff) is not None
    assert champion(tmp_path, "churn", plan.evaluation[0]) is None


def test_a_challenger_that_lost_still_counts_as_the_weekly_retrain(
    tmp_path, training, small_config, monkeypatch
):
    import json
    from datetime import timedelta

    import pytest

    from tessera.ml import pipeline

    training_set, plan, good = training
    fingerprint = data_fingerprint(training_set)
    register(tmp_path, good, fingerprint)
    loser = register(tmp_path, _weak(training_set, plan, small_config), fingerprint)
    assert loser.metadata["promoted"]["churn"] is False
    # The losing challenger was the retrain of the week after the champion's.
    meta_path = loser.path / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["cutoff"] = (plan.cutoff + timedelta(days=7)).isoformat()
    meta_path.write_text(json.dumps(meta))

    class Retrained(Exception):
        pass

    def train(*args, **kwargs):
        raise Retrained

    monkeypatch.setattr(pipeline, "train_from_warehouse", train)
    day_8 = plan.cutoff + timedelta(days=8)
    champs = pipeline.ensure_champions(None, tmp_path, day_8, small_config, retrain_every_days=7)
    assert champs.trained is None
    assert champs.churn.version != loser.version
    with pytest.raises(Retrained):
        pipeline.ensure_champions(
            None, tmp_path, plan.cutoff + timedelta(days=14), small_config, retrain_every_days=7
        )
