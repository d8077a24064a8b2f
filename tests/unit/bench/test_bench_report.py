"""The benchmark's pure parts: sizes, stage naming, ratios, tables, merging and the result schema."""

from __future__ import annotations

import copy

import pytest

from tessera.bench import report
from tessera.bench.floors import aggregate_sql
from tessera.bench.run import _stage, stage_windows


@pytest.mark.parametrize(
    ("text", "expected"),
    [("10k", 10_000), ("100K", 100_000), ("1m", 1_000_000), ("2500", 2500), ("1.5m", 1_500_000)],
)
def test_size_suffixes_scale_by_thousand_and_million(text, expected):
    assert report.parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "ten", "10g", "0", "-5k", "1.0001k"])
def test_bad_sizes_are_rejected_with_the_text_named(text):
    with pytest.raises(report.BenchError, match="size|number"):
        report.parse_size(text)


def test_size_list_keeps_order_and_drops_duplicates():
    assert report.parse_sizes("1m, 10k,10000,,100k") == [1_000_000, 10_000, 100_000]
    with pytest.raises(report.BenchError):
        report.parse_sizes(" , ")


def test_size_labels_round_trip():
    for label in ("10k", "100k", "1m", "2500"):
        assert report.size_label(report.parse_size(label)) == label


@pytest.mark.parametrize(
    ("name", "group", "stage"),
    [
        ("raw_orders", "sources", "landing"),
        ("customer_features", "marts", "dbt build"),
        ("stg_shop__orders", "staging", "dbt build"),
        ("churn_model", "ml", "training"),
        ("customer_scores", "ml", "scoring"),
        ("segment_membership", "segments", "segmentation"),
        ("campaign_assignments", "campaigns", "matrix"),
        ("outbound_messages", "activations", "outbound rendering"),
        ("deliveries", "activations", "sends"),
        ("campaign_results", "activations", "activations (feedback)"),
    ],
)
def test_assets_map_to_the_stage_of_their_group(name, group, stage):
    assert report.stage_of(name, group) == stage


def test_ratio_is_time_over_floor_and_missing_when_floor_is_missing_or_zero():
    assert report.ratio(12.0, 3.0) == pytest.approx(4.0)
    assert report.ratio(None, 3.0) is None
    assert report.ratio(1.0, None) is None
    assert report.ratio(1.0, 0.0) is None


def test_stage_row_derives_ratio_and_rows_per_second():
    stage = _stage("dbt build", report.OK, seconds=10.0, rows=50_000, floor_seconds=0.5)
    assert stage["ratio"] == pytest.approx(20.0)
    assert stage["rows_per_second"] == pytest.approx(5_000.0)
    assert set(stage) == set(report.STAGE_FIELDS)


def test_peak_counts_only_samples_inside_the_stage_windows():
    samples = [(0.5, 100), (1.5, 900), (2.5, 300), (4.0, 50)]
    windows = report.merge_windows([(2.0, 3.0), (0.0, 1.0), (0.9, 1.2)])
    assert windows == [(0.0, 1.2), (2.0, 3.0)]
    assert report.peak_in_windows(samples, windows) == 300
    assert report.peak_in_windows(samples, [(10.0, 11.0)]) is None


def test_steps_are_grouped_into_stages_by_what_they_materialized():
    out = {
        "run_end": 100.0,
        "assets": {
            "raw_orders": {"group": "sources", "parents": []},
            "fct_orders": {"group": "marts", "parents": ["raw_orders"]},
            "customer_scores": {"group": "ml", "parents": ["fct_orders"]},
        },
        "steps": [
            _step("raw_tables", 0.0, 2.0, {"raw_orders": 10}),
            _step("warehouse_models", 2.0, 7.0, {"fct_orders": 10}),
            {**_step("fct_orders_gate", 7.0, 8.0, {}), "checks": [{"asset": "fct_orders"}]},
            _step("customer_scores", 8.0, None, {}, status="failure"),
        ],
    }
    stages = stage_windows(out)
    assert stages["landing"]["seconds"] == pytest.approx(2.0)
    assert stages["dbt build"]["seconds"] == pytest.approx(5.0)
    assert stages["quality checks"]["steps"] == ["fct_orders_gate"]
    # A failed step still counts until the run ended, under the stage it is named for.
    assert stages["scoring"]["failed"] == ["customer_scores"]
    assert stages["scoring"]["seconds"] == pytest.approx(92.0)


def _step(key, start, end, assets, status="success"):
    return {
        "step_key": key,
        "start": start,
        "end": end,
        "status": status,
        "assets": assets,
        "checks": [],
    }


def test_floor_query_groups_by_customer_and_sums_the_amount_cast_from_text():
    sql = aggregate_sql(
        "raw.orders", [("order_id", "VARCHAR"), ("customer_id", "VARCHAR"), ("amount", "VARCHAR")]
    )
    assert 'select "customer_id", count(*)' in sql
    assert 'sum(try_cast("amount" as double))' in sql
    assert sql.endswith("group by 1)")


def test_floor_query_without_a_measure_only_counts():
    sql = aggregate_sql("t", [("category", "VARCHAR"), ("event_type", "VARCHAR")])
    assert 'select "category", count(*) as n, 0 as s' in sql


def _result() -> dict:
    size = {
        "customers": 10_000,
        "seed": 42,
        "campaign_date": "2026-06-01",
        "stages": [
            _stage("generate", report.CACHED, seconds=12.0, peak_rss_bytes=300 << 20, rows=900_000),
            _stage("dbt build", report.OK, seconds=30.0, rows=900_000, floor_seconds=0.3),
            _stage("sends", report.NOT_AVAILABLE, "activations not landed"),
        ],
        "end_to_end": {"status": report.OK, "seconds": 45.0, "peak_rss_bytes": 800 << 20},
        "steps": [],
    }
    return {
        "schema_version": report.SCHEMA_VERSION,
        "date": "2026-11-29",
        "machine": {
            "cpus": 2,
            "memory_bytes": 8 << 30,
            "platform": "Linux",
            "python": "3.11.7",
            "duckdb": "2.0.0",
        },
        "floor_repeats": 3,
        "sizes": [size],
        "matrix": {"status": report.NOT_AVAILABLE, "note": "campaigns.bench", "customers": 1},
    }


def test_a_complete_result_passes_the_schema():
    report.validate_result(_result())


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("sizes", 0, "stages", 1, "status"), "great", "status"),
        (("sizes", 0, "stages", 1, "seconds"), -1.0, "seconds"),
        (("schema_version",), 99, "schema_version"),
    ],
)
def test_schema_errors_name_the_field(path, value, message):
    result = _result()
    target = result
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(report.BenchError, match=message):
        report.validate_result(result)


def test_schema_names_a_missing_field():
    result = _result()
    del result["sizes"][0]["stages"][0]["floor"]
    with pytest.raises(report.BenchError, match=r"sizes\[0\]\.stages\[0\]: missing floor"):
        report.validate_result(result)


def test_text_table_aligns_columns_and_shows_missing_values_as_dashes():
    size = _result()["sizes"][0]
    text = report.text_table(report.TABLE_HEADER, report.table_rows(size))
    lines = text.splitlines()
    assert lines[0].startswith("stage")
    assert len({len(line) for line in lines[:2]}) == 1
    dbt = next(line for line in lines if line.startswith("dbt build"))
    assert dbt.split()[-1] == "100.0x"
    sends = next(line for line in lines if line.startswith("sends"))
    assert sends.endswith("-")
    assert lines[-1].startswith("end to end")


def test_markdown_report_has_one_table_per_size_and_escapes_pipes():
    results = _result()
    results["sizes"][0]["stages"][2]["note"] = "a|b"
    md = report.markdown_report(results)
    assert md.count("| stage | status |") == 1
    assert "|---|---:|" in md
    assert "- sends: a|b" in md
    assert report.markdown_table(["a"], [["x|y"]]).endswith("| x\\|y |")


def test_merging_keeps_other_sizes_of_the_day_and_replaces_a_rerun_size():
    old = _result()
    big = copy.deepcopy(old["sizes"][0])
    big["customers"] = 1_000_000
    old["sizes"].append(big)
    old["matrix"] = {"status": report.OK, "seconds": 3.0}
    new = _result()
    new["sizes"][0]["end_to_end"]["seconds"] = 40.0
    new["matrix"] = None
    merged = report.merge_results(old, new)
    assert [s["customers"] for s in merged["sizes"]] == [10_000, 1_000_000]
    assert merged["sizes"][0]["end_to_end"]["seconds"] == 40.0
    assert merged["matrix"] == {"status": report.OK, "seconds": 3.0}


@pytest.mark.parametrize(
    ("seconds", "text"), [(None, "-"), (0.123, "0.12s"), (42.0, "42.0s"), (754.0, "12m34s")]
)
def test_seconds_format(seconds, text):
    assert report.fmt_seconds(seconds) == text


def test_bytes_and_counts_format():
    assert report.fmt_bytes(3 << 30) == "3.0 GiB"
    assert report.fmt_bytes(512) == "512 B"
    assert report.fmt_count(2_500_000) == "2.50M"
    assert report.fmt_count(932_000) == "932k"
    assert report.fmt_count(None) == "-"


def test_slowest_steps_are_listed_longest_first_and_unfinished_ones_skipped():
    steps = [
        {"step_key": "a", "start": 0.0, "end": 1.0},
        {"step_key": "b", "start": 1.0, "end": 9.0},
        {"step_key": "c", "start": 9.0, "end": None},
        {"step_key": "d", "start": 9.0, "end": 12.0},
    ]
    assert report.slowest_steps(steps, n=2) == [("b", 8.0), ("d", 3.0)]
