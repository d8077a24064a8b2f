"""Data Docs keep the newest runs' pages per suite, so a year of daily runs keeps a bounded folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tessera.quality.gx_sql import keep_runs, prune_data_docs
from tessera.settings import SettingsError


def _run_folder(docs: Path, suite: str, run: str, mtime: int) -> Path:
    folder = docs / "validations" / suite / run
    (folder / "20261203T000000Z").mkdir(parents=True)
    (folder / "20261203T000000Z" / "page.html").write_text("<html></html>")
    os.utime(folder, (mtime, mtime))
    return folder


def test_only_the_newest_runs_of_each_suite_are_kept(tmp_path: Path) -> None:
    docs = tmp_path / "data_docs"
    orders = [_run_folder(docs, "raw_orders", f"run-{i}", 1_000 + i) for i in range(5)]
    customers = [_run_folder(docs, "raw_customers", f"run-{i}", 2_000 + i) for i in range(2)]
    (docs / "index.html").write_text("<html></html>")
    (docs / "static").mkdir()

    removed = prune_data_docs(docs, keep=3)

    assert removed == orders[:2]
    assert [p.exists() for p in orders] == [False, False, True, True, True]
    assert all(p.exists() for p in customers)
    assert (docs / "index.html").exists() and (docs / "static").is_dir()


def test_a_folder_without_pages_is_left_alone(tmp_path: Path) -> None:
    assert prune_data_docs(tmp_path / "nothing", keep=1) == []


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_a_bad_retention_names_the_variable(value: str) -> None:
    with pytest.raises(SettingsError, match="TESSERA_DATA_DOCS_KEEP_RUNS"):
        keep_runs({"TESSERA_DATA_DOCS_KEEP_RUNS": value})


def test_retention_defaults_to_ninety_runs() -> None:
    assert keep_runs({}) == 90
    assert keep_runs({"TESSERA_DATA_DOCS_KEEP_RUNS": " 7 "}) == 7
