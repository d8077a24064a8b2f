"""`tessera predict`: churn and value scores from a plain transaction file."""

from __future__ import annotations

import argparse
from datetime import date


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="train on a transaction file's own history and score its customers",
        description=(
            "Reads a CSV or Parquet of transactions (one row per order), trains LightGBM churn "
            "and value models on the history before --as-of, and writes one row per customer "
            "seen before --as-of: customer_id, churn_probability (no purchase in the next H "
            "days), predicted_value (revenue in the next H days)."
        ),
    )
    parser.add_argument("--transactions", required=True, help="CSV or Parquet file")
    parser.add_argument(
        "--as-of", required=True, type=_date, help="cut-off date: data before it is used"
    )
    parser.add_argument(
        "--horizon-days", type=int, default=90, help="prediction horizon H (default 90)"
    )
    parser.add_argument("--out", required=True, help="output .csv or .parquet")
    parser.add_argument("--customer-col", default="customer_id")
    parser.add_argument("--date-col", default="ordered_at")
    parser.add_argument("--amount-col", default="amount")
    parser.add_argument(
        "--quantity-col",
        help="order lines: the quantity column (with --price-col; the amount is their product)",
    )
    parser.add_argument("--price-col", help="order lines: the unit price column")
    parser.add_argument(
        "--missing-customers",
        choices=("error", "drop"),
        default="error",
        help="rows without a customer id: refuse the file (default) or leave them out, counted",
    )
    parser.add_argument(
        "--negative-amounts",
        choices=("error", "net"),
        default="error",
        help="refund rows: refuse them (default) or net them per customer and day",
    )
    parser.add_argument(
        "--evaluate-until",
        type=_date,
        help="also print metrics against the actual outcome from --as-of to this date (exclusive)",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.set_defaults(func=run_predict)


def run_predict(args: argparse.Namespace) -> int:
    import logging
    import sys
    import time

    from tessera.ml.evaluation import MODEL_LABELS
    from tessera.ml.training import TrainConfig
    from tessera.ml.transactions import predict_file, write_table

    began = time.perf_counter()
    result = predict_file(
        args.transactions,
        args.as_of,
        args.horizon_days,
        customer_col=args.customer_col,
        date_col=args.date_col,
        amount_col=args.amount_col,
        negative_amounts=args.negative_amounts,
        quantity_col=args.quantity_col,
        price_col=args.price_col,
        missing_customers=args.missing_customers,
        evaluate_until=args.evaluate_until,
        config=TrainConfig(horizon_days=args.horizon_days, seed=args.seed),
    )
    write_table(result.scores, args.out)
    logging.getLogger(__name__).info("done in %.1f s", time.perf_counter() - began)
    out = sys.stdout
    training = result.training
    out.write(f"wrote {len(result.scores):,} customers to {args.out}\n")
    dropped = (result.file_info or {}).get("dropped_missing_customer", 0)
    if dropped:
        out.write(f"left out {dropped:,} row(s) without a customer id (--missing-customers drop)\n")
    out.write(f"method: {training.plan.describe()}\n")
    out.write(
        f"scores from: churn {MODEL_LABELS[training.winners['churn']]}, value "
        f"{MODEL_LABELS[training.winners['value']]} (refit on all {len(training.plan.final)} "
        "labelled snapshot dates after the held-out check)\n"
    )
    for note in training.notes:
        out.write(f"note: {note}\n")
    window = training.plan.evaluation_window
    out.write(
        f"\nheld-out check inside the file's history ({window}-day labels from "
        f"{', '.join(d.isoformat() for d in training.plan.evaluation)}):\n"
    )
    out.write(_table(training.metrics, training.winners) + "\n")
    out.write(training.verdict_message + "\n")
    if result.evaluation is not None:
        out.write(f"\nactual outcome {args.as_of} .. {args.evaluate_until} (exclusive):\n")
        out.write(_table(result.evaluation, training.winners) + "\n")
        out.write(result.evaluation_message + "\n")
    return 0


SHOWN = (
    "auc",
    "brier",
    "mean_predicted",
    "observed_rate",
    "spearman",
    "top_decile_share",
    "total_predicted",
    "total_actual",
    "total_error_pct",
)
ROW_NAMES = {
    "auc": "churn AUC",
    "brier": "churn Brier",
    "mean_predicted": "mean predicted churn",
    "observed_rate": "observed churn",
    "spearman": "value Spearman",
    "top_decile_share": "top-10% revenue capture",
    "total_predicted": "total predicted",
    "total_actual": "total actual",
    "total_error_pct": "total error %",
}


def _table(metrics, winners: dict[str, str]) -> str:
    """Candidates as columns, the winner of each target marked (* churn, + value)."""
    from tessera.ml.evaluation import MODEL_LABELS

    table = metrics[list(SHOWN)].T.rename(index=ROW_NAMES)
    names = {}
    for model in table.columns:
        mark = ("*" if winners.get("churn") == model else "") + (
            "+" if winners.get("value") == model else ""
        )
        names[model] = MODEL_LABELS.get(model, model) + mark
    table = table.rename(columns=names)
    text = table.to_string(float_format=lambda v: f"{v:,.3f}")
    return text + "\n(* scores churn, + scores value)"
