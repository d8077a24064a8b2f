"""Suite-wide fixtures: isolate every test from ./data and share one small demo shop."""

from __future__ import annotations

import datetime as dt
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

#: The small shop integration tests share: big enough for models and segments to mean something,
#: small enough to build in seconds.
SMALL_SHOP = {"customers": 1500, "seed": 7, "days": 400}
SMALL_SHOP_END = dt.date(2026, 6, 1)


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> None:
    """No test reads or writes the developer's ./data unless it points somewhere itself."""
    default = tmp_path_factory.getbasetemp() / "default-data"
    monkeypatch.setenv("TESSERA_DATA_DIR", str(default))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    for secret in ("SENDGRID_API_KEY", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
        monkeypatch.delenv(secret, raising=False)


@pytest.fixture(scope="session")
def small_shop_end() -> dt.date:
    """The exclusive end of the small shop's data: its last campaign date."""
    return SMALL_SHOP_END


@pytest.fixture(scope="session")
def small_shop_landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only landing folder of a small synthetic shop (copy it before changing files)."""
    from tessera.demo.generator import generate_shop

    root = tmp_path_factory.mktemp("small-shop")
    landing = root / "landing"
    generate_shop(
        landing,
        customers=SMALL_SHOP["customers"],
        seed=SMALL_SHOP["seed"],
        start=SMALL_SHOP_END - dt.timedelta(days=SMALL_SHOP["days"]),
        end=SMALL_SHOP_END,
    )
    return landing


@dataclass(frozen=True)
class PostgresServer:
    """A PostgreSQL server of the test session on 127.0.0.1 (password authentication)."""

    host: str
    port: int
    user: str
    password: str

    def create_database(self, name: str) -> str:
        """Create database ``name`` (fresh) and return its name."""
        import psycopg2

        conn = psycopg2.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname="postgres",
        )
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'drop database if exists "{name}"')
            cur.execute(f'create database "{name}"')
        conn.close()
        return name


def _postgres_bindir() -> Path | None:
    """Where pg_ctl lives: on PATH, else Debian's /usr/lib/postgresql/<newest>/bin."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3])
    )
    return versions[-1].parent if versions else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for this test session, in a scratch folder of its own.

    It listens on 127.0.0.1 only. A server refuses to run as root, so as root it runs as the
    ``postgres`` user that Debian's package creates. Without the binaries the test skips with
    what to install (`make system-deps` installs them as root); in CI (``CI`` set) it fails.
    """
    bindir = _postgres_bindir()
    if bindir is None:
        message = (
            "no PostgreSQL server binaries (Debian: apt-get install postgresql; "
            "`make system-deps` does it as root)"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    prefix: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="tessera-pg-"))
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(root, owner.pw_uid, owner.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    password = secrets.token_hex(16)
    pwfile = root / "pwfile"
    pwfile.write_text(password + "\n")
    if prefix:
        os.chown(pwfile, owner.pw_uid, owner.pw_gid)
    data = root / "data"
    port = _free_port()
    subprocess.run(
        [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "tessera", "--pwfile",
         str(pwfile), "--auth=scram-sha-256", "-E", "UTF8", "--no-sync"],
        check=True, capture_output=True,
    )  # fmt: skip
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    subprocess.run(
        [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l",
         str(root / "server.log"), "-w", "-t", "60", "start"],
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        yield PostgresServer("127.0.0.1", port, "tessera", password)
    finally:
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
        )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)
