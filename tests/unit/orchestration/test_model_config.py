"""The `models` asset's run config is derived from the one training configuration."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

from tessera.ml.config import TrainConfig
from tessera.orchestration.defs.ml.assets import ModelConfig


def test_every_training_field_is_run_config_with_its_default_and_description():
    fields = ModelConfig.model_fields
    for f in dataclasses.fields(TrainConfig):
        assert f.name in fields, f.name
        assert fields[f.name].default == f.default, f.name
        assert fields[f.name].description, f"{f.name} has no description"
    # The asset's own settings are there too.
    assert {"retrain_every_days", "as_of", "churn_auc_floor", "value_spearman_floor"} <= set(fields)


def test_run_config_values_reach_the_training_configuration():
    config = ModelConfig(horizon_days=30, learning_rate=0.1, max_train_rows=5000, seasonality=False)
    train = config.train_config()
    assert isinstance(train, TrainConfig)
    assert (train.horizon_days, train.learning_rate, train.max_train_rows) == (30, 0.1, 5000)
    assert train.seasonality is False
    assert ModelConfig().train_config() == TrainConfig()
    assert config.floors() == {"churn": 0.6, "value": 0.2}


def test_loading_the_config_does_not_import_the_model_libraries():
    code = (
        "import sys; import tessera.orchestration.defs.ml.assets; "
        "print(sorted(m for m in ('lightgbm', 'sklearn', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
