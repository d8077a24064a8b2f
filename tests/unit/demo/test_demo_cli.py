"""`tessera demo generate`: defaults, clear errors, and no silent overwrite."""

from __future__ import annotations

import datetime as dt

import pytest

from tessera.cli import main
from tessera.demo.cli import DemoCliError, resolve_dates


def test_dates_default_to_two_years_up_to_today():
    assert resolve_dates(None, None, today=dt.date(2025, 3, 1)) == (
        dt.date(2023, 3, 2),
        dt.date(2025, 3, 1),
    )
    assert resolve_dates("2024-01-01", "2024-02-01") == (dt.date(2024, 1, 1), dt.date(2024, 2, 1))


@pytest.mark.parametrize(
    ("start", "end", "flag"),
    [
        ("2025-13-01", "2025-12-01", "--start"),
        (None, "yesterday", "--end"),
        ("2025-01-02", "2025-01-02", "--start"),
    ],
)
def test_bad_dates_name_the_flag(start, end, flag):
    with pytest.raises(DemoCliError, match=flag) as err:
        resolve_dates(start, end)
    assert isinstance(err.value, ValueError)


def _generate(out, *extra):
    return main(
        ["demo", "generate", "--customers", "300", "--start", "2025-01-01", "--end", "2025-04-01"]
        + ["--out", str(out), *extra]
    )


def test_generate_writes_the_shop_and_prints_a_summary(tmp_path, capsys):
    assert _generate(tmp_path / "landing") == 0
    out = capsys.readouterr().out
    assert "customers" in out and "events" in out and str(tmp_path / "landing") in out
    assert (tmp_path / "landing" / "orders" / "part-00000.parquet").exists()
    assert (tmp_path / "ground_truth" / "customers.parquet").exists()


def test_existing_landing_folder_is_kept_unless_forced(tmp_path, capsys):
    landing = tmp_path / "landing"
    assert _generate(landing) == 0
    stamp = (landing / "orders" / "part-00000.parquet").stat().st_mtime_ns
    assert _generate(landing, "--seed", "9") == 2
    assert "--force" in capsys.readouterr().err
    assert (landing / "orders" / "part-00000.parquet").stat().st_mtime_ns == stamp
    assert _generate(landing, "--seed", "9", "--force") == 0


def test_cli_errors_are_one_line_with_exit_code_2(tmp_path, capsys):
    assert main(["demo", "generate", "--out", str(tmp_path), "--end", "2025-02-30"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tessera: error: --end") and "\n" not in err
    assert _generate(tmp_path / "x", "--customers", "0") == 2
    assert "--customers" in capsys.readouterr().err
