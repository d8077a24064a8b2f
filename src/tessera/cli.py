"""The `tessera` command line: one entry point whose subcommands live beside their code."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

# Each module exposes `register(subparsers)`, adding its subcommands with
# `set_defaults(func=...)`; `func(args) -> int` is the exit code. Heavy imports stay inside the
# functions so that `tessera --help` is instant.
_SUBCOMMAND_MODULES = (
    "tessera.demo.cli",
    "tessera.orchestration.run_cli",
    "tessera.ml.cli",
    "tessera.campaigns.cli",
    "tessera.activations.cli",
    "tessera.review.cli",
)


class UserError(Exception):
    """An error the user can fix; printed as one clear line, without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tessera", description="Predictive customer marketing on Dagster, dbt and DuckDB."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(subparsers)
    return parser


#: Packages whose INFO lines `tessera` shows by default.
TESSERA_PACKAGES = ("tessera",)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # Tessera's own progress; libraries (HTTP clients, GE, alembic) only when they warn.
        for package in TESSERA_PACKAGES:
            logging.getLogger(package).setLevel(logging.INFO)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        # `tessera ... | head`: the reader left. Not an error of ours; silence the flush at exit
        # (Python's own advice) and end as a command stopped by SIGPIPE does.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + 13
    except (UserError, ValueError, OSError) as exc:
        # Domain errors (catalog, transactions file, landing data ...) subclass ValueError and
        # name the file, row and field; show them as one line unless debugging.
        if args.verbose:
            raise
        sys.stderr.write(f"tessera: error: {exc}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
