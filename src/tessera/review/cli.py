"""`tessera review`: the marketing-ops review app on 127.0.0.1."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    review = subparsers.add_parser(
        "review",
        help="serve the review app (calendar, date, campaign, customer, programme; approve)",
        description="Marketing ops' pages over a read-only snapshot of the warehouse, refreshed "
        "whenever no run is writing it. Approvals are recorded as the user the sign-in proxy "
        "names in X-Forwarded-User, else as TESSERA_REVIEW_USER.",
    )
    review.add_argument("--port", type=int, default=8730, help="listen port (default 8730)")
    review.add_argument("--data-dir", type=Path, default=None, help="default: TESSERA_DATA_DIR")
    review.add_argument(
        "--max-age",
        type=float,
        default=60.0,
        help="seconds before the snapshot is refreshed again (default 60)",
    )
    review.set_defaults(func=_run_review)


def _run_review(args: argparse.Namespace) -> int:
    import uvicorn

    from tessera.review.app import create_app
    from tessera.settings import DataPaths, load_settings

    settings = load_settings()
    data_dir = (args.data_dir or settings.data_dir).resolve()
    paths = DataPaths(data_dir)
    app = create_app(
        paths.warehouse_path, data_dir / "review", settings.catalog_path, max_age=args.max_age
    )
    log.info("review app on http://127.0.0.1:%d (data in %s)", args.port, data_dir)
    # 127.0.0.1 only: the app approves sends; put a sign-in proxy in front to share it.
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")
    return 0
