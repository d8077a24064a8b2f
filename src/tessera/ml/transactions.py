"""`tessera predict`: churn and value from any transaction file, trained on its own history."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd

from tessera.ml.errors import NotEnoughHistoryError, TransactionsFileError
from tessera.ml.evaluation import compare_models, verdict
from tessera.ml.features import add_season_index, transaction_features
from tessera.ml.training import (
    TrainConfig,
    TrainingResult,
    build_training_set,
    candidate_predictions,
    plan_slices,
    train_models,
)

log = logging.getLogger(__name__)

NEGATIVE_POLICIES = ("error", "net")
#: Rows without a customer id: refuse the file (default) or leave them out, counted.
MISSING_CUSTOMER_POLICIES = ("error", "drop")


def _reader(path: Path) -> str:
    suffix = path.suffix.lower()
    quoted = str(path).replace("'", "''")
    if suffix in (".parquet", ".pq"):
        return f"read_parquet('{quoted}')"
    if suffix in (".csv", ".txt", ".tsv") or path.name.lower().endswith(".csv.gz"):
        return f"read_csv('{quoted}', all_varchar = true, header = true)"
    raise TransactionsFileError(f"{path}: unsupported file type {suffix!r}; use .csv or .parquet")


def load_transactions(
    con: duckdb.DuckDBPyConnection,
    path: str | Path,
    customer_col: str = "customer_id",
    date_col: str = "ordered_at",
    amount_col: str = "amount",
    negative_amounts: str = "error",
    quantity_col: str | None = None,
    price_col: str | None = None,
    missing_customers: str = "error",
) -> dict[str, object]:
    """Validate the file and create table `transactions(customer_id, ordered_at, amount)`.

    Rows are numbered from 1 in file order (for a CSV, row N is line N+1 under the header).
    Rows of one customer and day are one purchase (amounts summed). Negative amounts are
    refused by default; with `negative_amounts='net'` days whose net is not positive are
    dropped (refunds net out purchases on the same day only).

    A file of order lines (one row per product) gives ``quantity_col`` and ``price_col``
    instead of an amount: a line's amount is quantity x unit price, each column checked on its
    own. Rows without a customer id are refused by default; ``missing_customers='drop'`` leaves
    them out and counts them (``dropped_missing_customer`` in the result), for files such as
    guest checkouts that have no customer to score.
    """
    path = Path(path)
    if not path.exists():
        raise TransactionsFileError(f"{path}: file not found")
    if negative_amounts not in NEGATIVE_POLICIES:
        raise TransactionsFileError(f"negative_amounts must be one of {NEGATIVE_POLICIES}")
    if missing_customers not in MISSING_CUSTOMER_POLICIES:
        raise TransactionsFileError(f"missing_customers must be one of {MISSING_CUSTOMER_POLICIES}")
    if (quantity_col is None) != (price_col is None):
        raise TransactionsFileError(
            "order lines need both a quantity and a unit price column "
            "(--quantity-col and --price-col), or neither (then --amount-col is the amount)"
        )
    lines = quantity_col is not None
    value_cols = (quantity_col, price_col) if lines else (amount_col,)
    try:
        con.execute(
            f"create or replace temp table tx_raw as select row_number() over () as _row, * from {_reader(path)}"
        )
    except duckdb.Error as exc:
        raise TransactionsFileError(
            f"{path}: cannot read the file ({exc.__class__.__name__}: {str(exc).splitlines()[0]})"
        ) from exc
    columns = [r[0] for r in con.execute("describe tx_raw").fetchall() if r[0] != "_row"]
    missing = [c for c in (customer_col, date_col, *value_cols) if c not in columns]
    if missing:
        raise TransactionsFileError(
            f"{path}: missing column(s) {', '.join(missing)}; the file has {', '.join(columns) or 'no columns'} "
            "(map yours with --customer-col, --date-col and --amount-col, or --quantity-col and "
            "--price-col for order lines)"
        )
    n = con.execute("select count(*) from tx_raw").fetchall()[0][0]
    if n == 0:
        raise TransactionsFileError(f"{path}: the file has no transactions")
    cid, dcol = (f'"{c}"' for c in (customer_col, date_col))
    quoted = [f'"{c}"' for c in value_cols]
    raw_values = ", ".join(
        f"{q} as raw_value_{i}, try_cast({q} as double) as value_{i}" for i, q in enumerate(quoted)
    )
    amount = "value_0 * value_1" if lines else "value_0"
    con.execute(
        f"""create or replace temp table tx_typed as
        select *, {amount} as amount from (
            select _row, nullif(trim(cast({cid} as varchar)), '') as customer_id,
                   {dcol} as raw_date, {raw_values},
                   coalesce(try_cast(try_cast({dcol} as timestamptz) at time zone 'UTC' as timestamp),
                            try_cast({dcol} as timestamp),
                            try_cast(try_cast({dcol} as date) as timestamp)) as ordered_at
            from tx_raw)"""
    )

    def first_bad(condition: str, what: str, column: str, value_col: str) -> None:
        bad = con.execute(
            f"select _row, {value_col}, count(*) over () from tx_typed where {condition} order by _row limit 1"
        ).fetchall()
        if bad:
            row, value, count = bad[0]
            raise TransactionsFileError(
                f"{path}: row {row}, column {column!r}: {what} (value {value!r}); {count} row(s) affected"
            )

    dropped = 0
    if missing_customers == "drop":
        dropped = con.execute("select count(*) from tx_typed where customer_id is null").fetchall()
        dropped = dropped[0][0]
        con.execute("delete from tx_typed where customer_id is null")
        if dropped == n:
            raise TransactionsFileError(
                f"{path}: no row has a customer id (column {customer_col!r})"
            )
    first_bad(
        "customer_id is null",
        "missing customer id (leave such rows out with --missing-customers drop)",
        customer_col,
        "customer_id",
    )
    first_bad("ordered_at is null", "unparseable or missing date", date_col, "raw_date")
    what = ("quantity", "unit price") if lines else ("amount",)
    for i, (column, name) in enumerate(zip(value_cols, what, strict=True)):
        first_bad(
            f"value_{i} is null or not isfinite(value_{i})",
            f"unparseable, missing or non-finite {name}",
            column,
            f"raw_value_{i}",
        )
    if lines:
        first_bad(
            "not isfinite(amount)", "quantity x unit price overflows", value_cols[0], "raw_value_0"
        )
    if negative_amounts == "error":
        first_bad(
            "amount < 0",
            f"negative {'line amount (a return?)' if lines else 'amount (refund?)'}; remove "
            "refunds or pass --negative-amounts net",
            value_cols[0],
            "raw_value_0",
        )
        # One purchase occasion per customer and day, as BG/NBD counts them: several rows of
        # one day (items of one basket, split payments) are one repeat opportunity, not many.
        con.execute(
            """create or replace temp table transactions as
            select customer_id, min(ordered_at) as ordered_at, sum(amount) as amount
            from tx_typed group by customer_id, cast(ordered_at as date)"""
        )
    else:
        con.execute(
            """create or replace temp table transactions as
            select customer_id, min(ordered_at) as ordered_at, sum(amount) as amount
            from tx_typed group by customer_id, cast(ordered_at as date) having sum(amount) > 0"""
        )
    lo, hi, rows, customers = con.execute(
        "select min(ordered_at), max(ordered_at), count(*), count(distinct customer_id) from transactions"
    ).fetchall()[0]
    if rows == 0:
        raise TransactionsFileError(
            f"{path}: no transaction with a positive amount after netting refunds"
        )
    return {
        "first": lo,
        "last": hi,
        "rows": rows,
        "customers": customers,
        "file_rows": n,
        "dropped_missing_customer": dropped,
    }


@dataclass
class PredictResult:
    """Scores at as-of, the training run behind them and, optionally, the evaluation."""

    scores: pd.DataFrame
    training: TrainingResult
    evaluation: pd.DataFrame | None = None
    evaluation_message: str | None = None
    #: What loading the file found: rows, customers, date range, rows left out.
    file_info: dict[str, object] | None = None


#: At most this many snapshot dates: weekly over a short file, wider spacing over a long one.
MAX_SNAPSHOT_DATES = 52
#: A snapshot date needs this much history before it for its features.
MIN_HISTORY_DAYS = 28


def snapshot_dates(first: date, as_of: date, horizon_days: int, config: TrainConfig) -> list[date]:
    """Snapshot dates back from as-of, each with at least four weeks of history: weekly while
    that gives at most `MAX_SNAPSHOT_DATES`, else spaced by whole weeks to stay within it.
    Which of them get labels (and over which window) is `plan_slices`'s choice."""
    earliest = first + timedelta(days=MIN_HISTORY_DAYS)
    weekly = max(0, (as_of - earliest).days // 7)
    step = 7 * max(1, -(-weekly // MAX_SNAPSHOT_DATES))
    out = []
    d = as_of - timedelta(days=step)
    while d >= earliest:
        out.append(d)
        d -= timedelta(days=step)
    return sorted(out)


def predict_file(
    path: str | Path,
    as_of: date,
    horizon_days: int,
    customer_col: str = "customer_id",
    date_col: str = "ordered_at",
    amount_col: str = "amount",
    negative_amounts: str = "error",
    evaluate_until: date | None = None,
    config: TrainConfig | None = None,
    quantity_col: str | None = None,
    price_col: str | None = None,
    missing_customers: str = "error",
) -> PredictResult:
    """Train on the file's history before `as_of` and score every customer seen before it."""
    config = replace(config or TrainConfig(), horizon_days=horizon_days)
    if horizon_days < 1:
        raise TransactionsFileError(f"horizon must be at least 1 day, got {horizon_days}")
    con = duckdb.connect()
    con.execute(f"set threads to {config.num_threads}")
    info = load_transactions(
        con,
        path,
        customer_col,
        date_col,
        amount_col,
        negative_amounts,
        quantity_col=quantity_col,
        price_col=price_col,
        missing_customers=missing_customers,
    )
    first, last = info["first"].date(), info["last"].date()
    if not first < as_of <= last + timedelta(days=1):
        raise TransactionsFileError(
            f"{path}: as-of {as_of} is outside the data range {first} .. {last} "
            "(it must be after the first transaction and at most the day after the last)"
        )
    if evaluate_until is not None and not as_of < evaluate_until <= last + timedelta(days=1):
        raise TransactionsFileError(
            f"{path}: --evaluate-until {evaluate_until} must be after as-of {as_of} and at most "
            f"the day after the last transaction ({last})"
        )
    dates = snapshot_dates(first, as_of, horizon_days, config)
    try:
        plan = plan_slices(
            dates, as_of, horizon_days, config.train_dates, config.valid_dates, config.eval_dates
        )
    except NotEnoughHistoryError as exc:
        raise NotEnoughHistoryError(
            f"{path}: not enough history: data starts {first}, as-of {as_of}; the models need "
            f"at least two snapshot dates {MIN_HISTORY_DAYS} days or more after the first "
            f"order with some days of orders after each, i.e. about {MIN_HISTORY_DAYS + 14} "
            f"days before as-of ({exc})"
        ) from exc
    features = transaction_features(con, "transactions", [*plan.all_dates, as_of])
    con.register("tx_features", features)
    training_set = build_training_set(con, "tx_features", "transactions", plan, horizon_days)
    result = train_models(training_set, plan, config, refit_all=evaluate_until is not None)
    current = add_season_index(
        con,
        "transactions",
        features[features["as_of_date"] == as_of].reset_index(drop=True),
        horizon_days,
    )
    current = result.churn.spec.prepare(current, horizon_days)
    churn = result.churn.predict(current)
    scores = pd.DataFrame(
        {
            "customer_id": current["customer_id"],
            "churn_probability": churn,
            "predicted_value": result.value.predict(current, churn),
        }
    )
    out = PredictResult(scores=scores, training=result, file_info=info)
    if evaluate_until is not None:
        outcome_days = (evaluate_until - as_of).days
        con.register("current_features", current)
        actual = con.execute(
            f"""select f.customer_id, count(t.customer_id) = 0 as churned, coalesce(sum(t.amount), 0) as value
            from current_features f left join transactions t
              on t.customer_id = f.customer_id and t.ordered_at >= timestamp '{as_of}'
             and t.ordered_at < timestamp '{evaluate_until}'
            group by f.customer_id"""
        ).df()
        labelled = current.merge(actual, on="customer_id", how="left")
        labelled["label_churned"] = labelled["churned"].astype(int)
        labelled["label_value"] = labelled["value"].astype(float)
        if outcome_days != horizon_days:
            labelled = add_season_index(con, "transactions", labelled, outcome_days)
        out.evaluation, out.evaluation_message = evaluate_candidates(result, labelled, outcome_days)
        if outcome_days != horizon_days:
            out.evaluation_message += (
                f" (note: the outcome window is {outcome_days} days, the horizon {horizon_days})"
            )
    return out


def evaluate_candidates(
    result: TrainingResult, labelled: pd.DataFrame, days: int
) -> tuple[pd.DataFrame, str]:
    """Every candidate of the final fit against the actual outcome over `days`: the metric
    table and a line naming the winner the held-out slice chose."""
    fitted = result.final_candidates
    frame = result.churn.spec.prepare(labelled, days)
    predictions = candidate_predictions(fitted.churn, fitted.value, frame, days)
    # The scores themselves: the winners as written, with any level anchoring of a baseline.
    predictions["churn_scores"] = result.churn.predict(frame, days)
    predictions["value_scores"] = result.value.predict(frame, horizon=days)
    table = compare_models(predictions)
    return table, verdict(table.drop(index="scores"), result.winners).message


def write_table(frame: pd.DataFrame, path: str | Path) -> None:
    """Write CSV or Parquet by the file's suffix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".parquet", ".pq"):
        frame.to_parquet(path, index=False)
    elif path.suffix.lower() == ".csv":
        frame.to_csv(path, index=False)
    else:
        raise TransactionsFileError(f"{path}: output must end in .csv or .parquet")
