"""`tessera review`: the marketing-ops review app on 127.0.0.1, and its users."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import secrets
import sys
from pathlib import Path

log = logging.getLogger(__name__)

#: Where approvals and holds go unless --dagster-url says otherwise.
DAGSTER_URL_VAR = "TESSERA_DAGSTER_URL"
DEFAULT_DAGSTER_URL = "http://127.0.0.1:3000"
#: Hosts that keep the app on this machine; any other --host is warned about.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def register(subparsers: argparse._SubParsersAction) -> None:
    review = subparsers.add_parser(
        "review",
        help="serve the review app (calendar, date, campaign, customer, programme; approve/hold)",
        description="Marketing ops' pages over a read-only snapshot of the warehouse, refreshed "
        "whenever no run is writing it. Every page needs a signed-in user of the users file "
        "(`tessera review add-user`). Approvals and holds launch Dagster's approve_and_send job "
        "through its GraphQL API.",
    )
    review.add_argument("--port", type=int, default=8730, help="listen port (default 8730)")
    review.add_argument(
        "--host",
        default="127.0.0.1",
        help="listen address (default 127.0.0.1; 0.0.0.0 only inside a container or behind a "
        "TLS proxy, as in deploy/docker-compose.yml)",
    )
    review.add_argument("--data-dir", type=Path, default=None, help="default: TESSERA_DATA_DIR")
    review.add_argument(
        "--users", type=Path, default=None, help="users file (default: TESSERA_REVIEW_USERS, "
        "else review-users.yml in the data folder)"
    )  # fmt: skip
    review.add_argument(
        "--max-age",
        type=float,
        default=60.0,
        help="seconds before the snapshot is refreshed again (default 60)",
    )
    review.add_argument(
        "--dagster-url",
        default=None,
        help=f"the Dagster webserver decisions go to (default: {DAGSTER_URL_VAR}, else "
        f"{DEFAULT_DAGSTER_URL})",
    )
    review.add_argument(
        "--approve-directly",
        action="store_true",
        help="no Dagster webserver: record approvals and holds in the warehouse from the app "
        "(only while no run writes it); Dagster then shows no send_approval materialization",
    )
    review.set_defaults(func=_run_review)
    commands = review.add_subparsers(dest="review_command", metavar="{add-user}")
    add = commands.add_parser(
        "add-user",
        help="add a reviewer (or set a new password/token) in the users file",
        description="Stores only a salted scrypt hash of the password (asked twice on a "
        "terminal, else read as one line from stdin) or the sha256 of a generated token, which "
        "is printed once.",
    )
    add.add_argument("name")
    add.add_argument("--role", choices=("approver", "viewer"), default="approver")
    add.add_argument("--data-dir", type=Path, default=None, help="default: TESSERA_DATA_DIR")
    add.add_argument("--users", type=Path, default=None, help="users file (as for review)")
    how = add.add_mutually_exclusive_group()
    how.add_argument(
        "--token", action="store_true", help="generate an API token (Authorization: Bearer)"
    )
    how.add_argument(
        "--generate-password",
        type=Path,
        metavar="FILE",
        help="generate a random password and write it to FILE (mode 600) instead of asking",
    )
    add.set_defaults(func=_add_user)


def _paths(args: argparse.Namespace) -> tuple[Path, Path]:
    from tessera.review.auth import users_path
    from tessera.settings import load_settings

    data_dir = (args.data_dir or load_settings().data_dir).resolve()
    return data_dir, (args.users.resolve() if args.users else users_path(data_dir))


def _add_user(args: argparse.Namespace) -> int:
    from tessera.review.auth import (
        User,
        UsersFileError,
        hash_password,
        load_users,
        new_token,
        save_user,
    )

    _, path = _paths(args)
    try:
        existing = load_users(path).get(args.name)
    except UsersFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    keep = {"password": existing.password, "token": existing.token} if existing else {}
    if args.token:
        token, stored = new_token()
        save_user(path, User(args.name, args.role, keep.get("password", ""), stored))
        print(f"token for {args.name} (shown once; send it as 'Authorization: Bearer ...'):")
        print(token)
        return 0
    if args.generate_password:
        password = secrets.token_urlsafe(12)
        target = args.generate_password
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")
    elif sys.stdin.isatty():
        password = getpass.getpass(f"password for {args.name}: ")
        if password != getpass.getpass("again: "):
            print("error: the passwords differ; nothing was changed", file=sys.stderr)
            return 2
    else:
        password = sys.stdin.readline().rstrip("\n")
    if len(password) < 8:
        print("error: a password needs at least 8 characters; nothing was changed", file=sys.stderr)
        return 2
    save_user(path, User(args.name, args.role, hash_password(password), keep.get("token", "")))
    where = f"; the password is in {args.generate_password}" if args.generate_password else ""
    print(f"{args.name} ({args.role}) can sign in to the review app (users file {path}){where}")
    return 0


def _run_review(args: argparse.Namespace) -> int:
    import uvicorn

    from tessera.review.app import create_app
    from tessera.review.approvals import DagsterDecisions, DirectDecisions
    from tessera.review.auth import Authenticator, UsersFileError, session_secret
    from tessera.settings import DataPaths, load_settings

    settings = load_settings()
    data_dir, users = _paths(args)
    paths = DataPaths(data_dir)
    try:
        auth = Authenticator(users, session_secret())
        known = auth.users()
        url = args.dagster_url or os.environ.get(DAGSTER_URL_VAR) or DEFAULT_DAGSTER_URL
        decisions = (
            DirectDecisions(paths.warehouse_path) if args.approve_directly
            else DagsterDecisions(url)
        )  # fmt: skip
    except (UsersFileError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not known:
        log.warning(
            "no reviewer in %s yet: every page asks to sign in; add one with "
            "`tessera review add-user <name>`",
            users,
        )
    app = create_app(
        paths.warehouse_path,
        data_dir / "review",
        settings.catalog_path,
        auth,
        decisions,
        max_age=args.max_age,
    )
    target = "recorded directly" if args.approve_directly else f"sent to Dagster at {url}"
    log.info(
        "review app on http://%s:%d (data in %s; decisions %s)",
        args.host,
        args.port,
        data_dir,
        target,
    )
    if args.host not in LOOPBACK_HOSTS:
        # The app approves sends: beyond this machine it belongs behind a TLS proxy.
        log.warning(
            "the review app listens on %s, not only on this machine: serve it to people through "
            "a TLS proxy (deploy/docker-compose.yml publishes it on 127.0.0.1 only)",
            args.host,
        )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
