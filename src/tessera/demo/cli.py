"""`tessera demo generate`: write the synthetic demo shop into the landing folder."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path


class DemoCliError(ValueError):
    """A `tessera demo` argument is wrong; the message names the flag."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `tessera demo generate`."""
    demo = subparsers.add_parser("demo", help="the synthetic demo shop")
    demo_sub = demo.add_subparsers(dest="demo_command", metavar="COMMAND")
    demo.set_defaults(func=lambda args: (demo.print_help(), 2)[1])
    gen = demo_sub.add_parser(
        "generate",
        help="write a realistic synthetic shop as landing Parquet files",
        description="Write customers, orders, order_items, events and campaign_responses for "
        "a synthetic shop into the landing folder, plus its latent ground truth beside it.",
    )
    gen.add_argument("--customers", type=int, default=None, help="customers (default: settings)")
    gen.add_argument("--seed", type=int, default=None, help="random seed (default: settings, 42)")
    gen.add_argument(
        "--start", default=None, help="first day, YYYY-MM-DD (default: end - 730 days)"
    )
    gen.add_argument(
        "--end", default=None, help="day after the last data, YYYY-MM-DD (default: today, UTC)"
    )
    gen.add_argument("--out", type=Path, default=None, help="landing folder (default: settings)")
    gen.add_argument(
        "--dirty-rate", type=float, default=0.01, help="share of dirty rows (default 0.01)"
    )
    gen.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="processes for chunks of 100,000 customers (default: one per core)",
    )
    gen.add_argument("--force", action="store_true", help="replace an existing landing folder")
    gen.set_defaults(func=generate)


def _parse_day(value: str, flag: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise DemoCliError(f"{flag}: '{value}' is not a date (expected YYYY-MM-DD)") from None


def resolve_dates(
    start: str | None, end: str | None, today: date | None = None
) -> tuple[date, date]:
    """--start/--end as dates: end defaults to today (UTC), start to end - 730 days."""
    end_day = _parse_day(end, "--end") if end else (today or datetime.now(UTC).date())
    start_day = _parse_day(start, "--start") if start else end_day - timedelta(days=730)
    if start_day >= end_day:
        raise DemoCliError(f"--start ({start_day}) must be before --end ({end_day})")
    return start_day, end_day


def generate(args: argparse.Namespace) -> int:
    from tessera.demo.generator import generate_shop
    from tessera.settings import load_settings

    settings = load_settings()
    start, end = resolve_dates(args.start, args.end)
    customers = settings.demo_customers if args.customers is None else args.customers
    seed = settings.demo_seed if args.seed is None else args.seed
    if customers < 1:
        raise DemoCliError(f"--customers must be at least 1, got {customers}")
    if not 0.0 <= args.dirty_rate <= 0.2:
        raise DemoCliError(f"--dirty-rate must be between 0 and 0.2, got {args.dirty_rate}")
    out = (args.out or settings.landing_dir).resolve()
    if out.exists() and any(out.iterdir()) and not args.force:
        raise DemoCliError(
            f"--out: landing folder {out} already has data; pass --force to replace it "
            "or --out to write elsewhere"
        )
    summary = generate_shop(
        out, customers, seed, start, end, dirty_rate=args.dirty_rate, workers=args.workers
    )
    width = max(len(t) for t in summary.rows)
    lines = [
        f"demo shop: {customers:,} customers, seed {seed}, {start} .. {end} (exclusive), "
        f"dirty rate {args.dirty_rate:g}",
        *(f"  {name:<{width}}  {n:>12,} rows" for name, n in summary.rows.items()),
        f"written to {summary.out_dir} in {summary.elapsed_seconds:.1f} s",
        f"ground truth (never read by the pipeline): {summary.ground_truth_path}",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
