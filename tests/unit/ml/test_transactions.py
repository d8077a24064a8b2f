"""`tessera predict` on files: clear errors for bad input, scores for good input."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from tessera.ml.errors import NotEnoughHistoryError, TransactionsFileError
from tessera.ml.training import TrainConfig
from tessera.ml.transactions import predict_file

FAST = TrainConfig(num_boost_round=30, train_dates=4, valid_dates=1, min_data_in_leaf=20)


def _write(tmp_path, frame: pd.DataFrame, name: str = "tx.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False) if name.endswith(".csv") else frame.to_parquet(path)
    return path


@pytest.fixture(scope="module")
def shop_csv(tmp_path_factory, transactions):
    """The simulated log as a plain CSV with someone else's column names."""
    path = tmp_path_factory.mktemp("tx") / "export.csv"
    transactions.rename(
        columns={"customer_id": "Client", "ordered_at": "Date", "amount": "Total"}
    ).to_csv(path, index=False)
    return path


def test_plain_csv_with_other_column_names_is_scored(shop_csv, transactions):
    result = predict_file(
        shop_csv,
        date(2023, 10, 2),
        60,
        customer_col="Client",
        date_col="Date",
        amount_col="Total",
        evaluate_until=date(2023, 12, 1),
        config=FAST,
    )
    seen = transactions.loc[transactions["ordered_at"] < "2023-10-02", "customer_id"].nunique()
    assert len(result.scores) == seen
    assert list(result.scores.columns) == ["customer_id", "churn_probability", "predicted_value"]
    assert result.scores["churn_probability"].between(0, 1).all()
    assert {"auc", "spearman", "total_error_pct"} <= set(result.evaluation.columns)
    # One-order customers are scored like everyone else (no error, no NaN).
    assert result.scores.notna().all().all()


def test_empty_file_is_refused(tmp_path):
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,ordered_at,amount\n")
    with pytest.raises(TransactionsFileError, match="no transactions"):
        predict_file(path, date(2024, 1, 1), 90, config=FAST)


def test_missing_column_names_what_the_file_has(tmp_path):
    path = _write(
        tmp_path, pd.DataFrame({"customer": ["a"], "ordered_at": ["2024-01-01"], "amount": [1]})
    )
    with pytest.raises(
        TransactionsFileError,
        match=r"missing column\(s\) customer_id.*the file has customer, ordered_at, amount",
    ):
        predict_file(path, date(2024, 1, 1), 90, config=FAST)


def test_unparseable_date_names_the_row(tmp_path):
    frame = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "ordered_at": ["2024-01-01", "2024-01-02", "yesterday"],
            "amount": [1, 2, 3],
        }
    )
    with pytest.raises(
        TransactionsFileError, match=r"row 3, column 'ordered_at': unparseable .*'yesterday'"
    ):
        predict_file(_write(tmp_path, frame), date(2024, 1, 2), 90, config=FAST)


def test_unparseable_amount_names_the_row(tmp_path):
    frame = pd.DataFrame(
        {
            "customer_id": ["a", "b"],
            "ordered_at": ["2024-01-01", "2024-01-02"],
            "amount": ["1.5", "12,50 EUR"],
        }
    )
    with pytest.raises(TransactionsFileError, match=r"row 2, column 'amount'"):
        predict_file(_write(tmp_path, frame), date(2024, 1, 2), 90, config=FAST)


@pytest.mark.parametrize("bad", ["Infinity", "-inf", "1e309", "NaN"])
def test_non_finite_amount_names_the_row_and_field(tmp_path, bad):
    frame = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "ordered_at": ["2024-01-01", "2024-01-02", "2024-01-03"],
            "amount": ["1.5", "2", bad],
        }
    )
    with pytest.raises(TransactionsFileError, match=r"row 3, column 'amount': .*non-finite"):
        predict_file(_write(tmp_path, frame), date(2024, 1, 3), 90, config=FAST)


def test_negative_amounts_are_refused_unless_netted(tmp_path, transactions):
    frame = transactions.copy()
    frame.loc[10, "amount"] = -5.0
    path = _write(tmp_path, frame, "tx.parquet")
    with pytest.raises(TransactionsFileError, match=r"row 11, column 'amount': negative amount"):
        predict_file(path, date(2023, 10, 2), 60, config=FAST)
    result = predict_file(path, date(2023, 10, 2), 60, negative_amounts="net", config=FAST)
    assert len(result.scores) > 0


def test_as_of_outside_the_data_is_refused(tmp_path, transactions):
    path = _write(tmp_path, transactions, "tx.parquet")
    with pytest.raises(TransactionsFileError, match="outside the data range"):
        predict_file(path, date(2030, 1, 1), 60, config=FAST)
    with pytest.raises(TransactionsFileError, match="outside the data range"):
        predict_file(path, date(2021, 1, 1), 60, config=FAST)


def test_a_horizon_longer_than_the_history_is_carried_from_the_longest_label_window(
    tmp_path, transactions
):
    path = _write(tmp_path, transactions, "tx.parquet")
    result = predict_file(path, date(2022, 7, 1), 365, config=FAST)
    plan = result.training.plan
    assert plan.horizon == 365 and 7 <= plan.window < 365
    assert "carried to the 365-day horizon" in plan.describe()
    assert f"{plan.window}-day label windows" in plan.describe()
    assert result.scores["churn_probability"].between(0, 1).all()
    assert (result.scores["predicted_value"] >= 0).all()
    # Over a longer horizon fewer customers stay away: the carried churn is lower than the
    # label window's, customer by customer.
    short = predict_file(path, date(2022, 7, 1), plan.window, config=FAST)
    assert short.training.plan.window == plan.window
    merged = result.scores.merge(short.scores, on="customer_id", suffixes=("_h", "_w"))
    assert (merged["churn_probability_h"] <= merged["churn_probability_w"] + 1e-9).mean() > 0.95
    assert merged["predicted_value_h"].sum() > merged["predicted_value_w"].sum()


def test_history_without_two_snapshot_dates_is_refused_saying_what_is_needed(
    tmp_path, transactions
):
    path = _write(tmp_path, transactions, "tx.parquet")
    with pytest.raises(NotEnoughHistoryError, match="at least two snapshot dates"):
        predict_file(path, date(2022, 2, 5), 365, config=FAST)


def test_cli_evaluate_until_prints_metrics_against_the_actual_outcome(
    shop_csv, transactions, tmp_path, capsys
):
    import argparse

    from tessera.ml.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    out = tmp_path / "scores.parquet"
    args = parser.parse_args(
        ["predict", "--transactions", str(shop_csv), "--as-of", "2023-10-02",
         "--horizon-days", "60", "--out", str(out), "--customer-col", "Client",
         "--date-col", "Date", "--amount-col", "Total", "--evaluate-until", "2023-12-01"]
    )  # fmt: skip
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "actual outcome 2023-10-02 .. 2023-12-01" in printed
    for metric in (
        "churn AUC",
        "churn Brier",
        "value Spearman",
        "top-10% revenue capture",
        "total predicted",
        "total error %",
    ):
        assert metric in printed
    # Every candidate is shown, the winners marked; the method and label window are named.
    for label in ("LightGBM over BG/NBD", "BG/NBD + Gamma-Gamma", "RFM heuristic", "Blend"):
        assert label in printed
    assert "*" in printed and "+" in printed
    assert "60-day label windows" in printed
    # The actual total is the revenue in [as-of, until) of customers seen before as-of.
    tx = transactions
    seen = set(tx.loc[tx["ordered_at"] < "2023-10-02", "customer_id"])
    window = tx[(tx["ordered_at"] >= "2023-10-02") & (tx["ordered_at"] < "2023-12-01")]
    expected = window.loc[window["customer_id"].isin(seen), "amount"].sum()
    outcome = printed.split("actual outcome")[1]
    shown = next(line for line in outcome.splitlines() if line.startswith("total actual"))
    assert float(shown.split()[2].replace(",", "")) == pytest.approx(expected, abs=0.01)
    assert len(pd.read_parquet(out)) == len(seen)


def _load(tmp_path, frame: pd.DataFrame, **kwargs):
    import duckdb

    from tessera.ml.transactions import load_transactions

    con = duckdb.connect()
    info = load_transactions(con, _write(tmp_path, frame), **kwargs)
    rows = con.execute(
        "select customer_id, cast(ordered_at as date) as day, amount from transactions "
        "order by customer_id, day"
    ).fetchall()
    return info, rows


LINES = pd.DataFrame(
    {
        "Customer": ["a", "a", "b", "a"],
        "InvoiceDate": ["2024-01-02 10:00", "2024-01-02 10:00", "2024-01-02 11:00", "2024-01-09"],
        "Quantity": ["2", "1", "3", "4"],
        "UnitPrice": ["1.5", "10", "2", "0.25"],
    }
)
LINE_COLS = {
    "customer_col": "Customer",
    "date_col": "InvoiceDate",
    "quantity_col": "Quantity",
    "price_col": "UnitPrice",
}


def test_order_lines_are_priced_quantity_times_unit_price_and_summed_per_day(tmp_path):
    info, rows = _load(tmp_path, LINES, **LINE_COLS)
    assert [(c, str(d), a) for c, d, a in rows] == [
        ("a", "2024-01-02", 13.0),
        ("a", "2024-01-09", 1.0),
        ("b", "2024-01-02", 6.0),
    ]
    assert info["file_rows"] == 4 and info["rows"] == 3


def test_order_lines_need_both_quantity_and_price(tmp_path):
    with pytest.raises(TransactionsFileError, match="--quantity-col and --price-col"):
        _load(
            tmp_path,
            LINES,
            customer_col="Customer",
            date_col="InvoiceDate",
            quantity_col="Quantity",
        )


def test_an_unparseable_unit_price_names_its_row_and_column(tmp_path):
    frame = LINES.copy()
    frame.loc[2, "UnitPrice"] = "2,00"
    with pytest.raises(
        TransactionsFileError, match=r"row 3, column 'UnitPrice': unparseable.*unit price"
    ):
        _load(tmp_path, frame, **LINE_COLS)


def test_a_returned_line_is_refused_unless_netted(tmp_path):
    frame = LINES.copy()
    frame.loc[1, "Quantity"] = "-1"
    with pytest.raises(TransactionsFileError, match=r"row 2, column 'Quantity': negative line"):
        _load(tmp_path, frame, **LINE_COLS)
    _, rows = _load(tmp_path, frame, negative_amounts="net", **LINE_COLS)
    # a's 2 January nets to 3 - 10 < 0: that day is no purchase; the other days stay.
    assert [(c, str(d), a) for c, d, a in rows] == [
        ("a", "2024-01-09", 1.0),
        ("b", "2024-01-02", 6.0),
    ]


def test_rows_without_a_customer_are_refused_unless_dropped_and_counted(tmp_path):
    frame = LINES.copy()
    frame.loc[2, "Customer"] = " "
    with pytest.raises(
        TransactionsFileError, match=r"row 3, column 'Customer': missing customer id.*drop"
    ):
        _load(tmp_path, frame, **LINE_COLS)
    info, rows = _load(tmp_path, frame, missing_customers="drop", **LINE_COLS)
    assert info["dropped_missing_customer"] == 1
    assert {c for c, _, _ in rows} == {"a"}
    frame["Customer"] = ""
    with pytest.raises(TransactionsFileError, match="no row has a customer id"):
        _load(tmp_path, frame, missing_customers="drop", **LINE_COLS)
