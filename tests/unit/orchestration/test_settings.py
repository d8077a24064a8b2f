"""One typed settings object: every resource, the CLIs and dbt's profile agree on the data folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tessera.orchestration.defs.resources import build_resources
from tessera.settings import (
    DBT_PROJECT_DIR,
    DEFAULT_DATA_DIR,
    DEFAULT_DUCKDB_MEMORY_LIMIT,
    WAREHOUSE_FILE,
    SettingsError,
    load_settings,
)


def test_every_resource_is_built_from_one_environment(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.yml"
    env = {
        "TESSERA_DATA_DIR": str(tmp_path / "shop"),
        "TESSERA_CATALOG": str(catalog),
        "TESSERA_DUCKDB_MEMORY_LIMIT": "1GB",
        "TESSERA_TIMEZONE": "Europe/Berlin",
    }
    resources = build_resources(env)
    shop = (tmp_path / "shop").resolve()
    assert resources["warehouse"].database == str(shop / WAREHOUSE_FILE)
    assert resources["warehouse"].connection_config == {"memory_limit": "1GB"}
    assert resources["storage"].landing_dir == shop / "landing"
    assert resources["storage"].models_dir == shop / "models"
    assert resources["dbt"].data_dir == str(shop)
    assert resources["campaign_catalog"].path == str(catalog.resolve())
    assert resources["activation"].timezone == "Europe/Berlin"
    assert resources["activation"].catalog_path == str(catalog.resolve())


def test_data_dir_argument_overrides_only_the_folder(tmp_path: Path) -> None:
    resources = build_resources({"TESSERA_DUCKDB_MEMORY_LIMIT": "2GB"}, data_dir=tmp_path)
    assert resources["warehouse"].database == str(tmp_path.resolve() / WAREHOUSE_FILE)
    assert resources["warehouse"].connection_config == {"memory_limit": "2GB"}


def test_dbt_profile_falls_back_on_the_settings_defaults() -> None:
    """dbt run by hand from dbt_project/ (no TESSERA_DATA_DIR) opens the warehouse the settings
    name, with the same memory cap."""
    profile = yaml.safe_load((DBT_PROJECT_DIR / "profiles.yml").read_text())
    output = profile["tessera"]["outputs"]["dev"]
    folder, _, file = output["path"].rpartition("/")
    assert file == WAREHOUSE_FILE
    assert folder == "{{ env_var('TESSERA_DATA_DIR', '../data') }}"
    assert (DBT_PROJECT_DIR / "../data").resolve() == DEFAULT_DATA_DIR
    memory = output["settings"]["memory_limit"]
    assert (
        memory
        == f"{{{{ env_var('TESSERA_DUCKDB_MEMORY_LIMIT', '{DEFAULT_DUCKDB_MEMORY_LIMIT}') }}}}"
    )


def test_an_empty_data_dir_means_the_default_not_the_working_directory() -> None:
    assert load_settings({"TESSERA_DATA_DIR": ""}).data_dir == DEFAULT_DATA_DIR


@pytest.mark.parametrize("value", ["2025-13-01", "yesterday", "01.01.2025"])
def test_a_malformed_partitions_start_names_the_variable(value: str) -> None:
    with pytest.raises(SettingsError, match="TESSERA_PARTITIONS_START"):
        load_settings({"TESSERA_PARTITIONS_START": value})


def test_partitions_are_read_when_used_not_at_import() -> None:
    code = (
        "import os\n"
        "import tessera.orchestration.defs.partitions as p\n"
        "os.environ['TESSERA_PARTITIONS_START'] = '2024-03-05'\n"
        "os.environ['TESSERA_TIMEZONE'] = 'Europe/Berlin'\n"
        "print(p.daily_partitions.start.date(), p.daily_partitions.timezone)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["2024-03-05", "Europe/Berlin"]
