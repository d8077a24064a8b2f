"""The review app over HTTP: every page needs a signed-in user, viewers cannot decide, and an
approval or hold from the date page is recorded with who made it."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import duckdb
import pytest
import requests
import uvicorn
from review_data import D

from tessera.review.app import create_app
from tessera.review.approvals import DirectDecisions
from tessera.review.auth import Authenticator, User, hash_password, new_token, save_user
from tessera.settings import DEMO_CATALOG

TOKEN_HOLDER = {}


@pytest.fixture
def app(tmp_path: Path, warehouse: Path):
    users = tmp_path / "review-users.yml"
    save_user(users, User("anna", "approver", hash_password("correct horse")))
    save_user(users, User("vic", "viewer", hash_password("viewer pass")))
    token, stored = new_token()
    save_user(users, User("bot", "viewer", token=stored))
    TOKEN_HOLDER["token"] = token
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    asgi = create_app(
        warehouse,
        tmp_path / "review",
        DEMO_CATALOG,
        Authenticator(users, b"s" * 32),
        DirectDecisions(warehouse),
        max_age=0.0,
    )
    server = uvicorn.Server(uvicorn.Config(asgi, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _signed_in(app: str, user: str, password: str) -> requests.Session:
    session = requests.Session()
    response = session.post(
        f"{app}/login", data={"user": user, "password": password, "next": f"/date/{D}"}
    )
    assert response.status_code == 200 and response.url.endswith(f"/date/{D}")
    return session


def test_every_page_but_sign_in_and_health_needs_a_user(app: str) -> None:
    for path in ("/calendar", f"/date/{D}", "/customer?customer_id=C1", "/programme"):
        response = requests.get(f"{app}{path}", allow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next=")
    assert requests.post(f"{app}/date/{D}/decide", data={"action": "approve"}).status_code == 401
    assert requests.get(f"{app}/healthz").text == "ok"
    assert "Sign in" in requests.get(f"{app}/login").text


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(app: str) -> None:
    wrong = requests.post(f"{app}/login", data={"user": "anna", "password": "nope"})
    unknown = requests.post(f"{app}/login", data={"user": "ghost", "password": "nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert "wrong user name or password" in wrong.text and "wrong user name or password" in (
        unknown.text
    )
    assert "tessera_review" not in wrong.cookies


def test_sign_in_never_redirects_off_the_app(app: str) -> None:
    session = requests.Session()
    response = session.post(
        f"{app}/login",
        data={"user": "anna", "password": "correct horse", "next": "//evil.example/x"},
        allow_redirects=False,
    )
    assert response.headers["location"] == "/calendar"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


def test_an_approver_approves_and_holds_from_the_date_page(app: str, warehouse: Path) -> None:
    session = _signed_in(app, "anna", "correct horse")
    page = session.get(f"{app}/date/{D}").text
    assert 'id="approve"' in page and 'id="hold"' in page and "anna (approver)" in page
    fingerprint = page.split('name="fingerprint" value="')[1].split('"')[0]
    approved = session.post(
        f"{app}/date/{D}/decide",
        data={"action": "approve", "note": "ok", "fingerprint": fingerprint},
    )
    assert approved.status_code == 200 and "approved 4 messages as anna" in approved.text
    held = session.post(f"{app}/date/{D}/decide", data={"action": "hold", "note": "wait"})
    assert "on hold" in held.text
    stale = session.post(
        f"{app}/date/{D}/decide", data={"action": "approve", "fingerprint": "0" * 32}
    )
    assert stale.status_code == 409 and "not the ones reviewed" in stale.text
    with duckdb.connect(str(warehouse), read_only=True) as con:
        audit = con.execute(
            "select action, actor, note from audit.approvals order by recorded_at"
        ).fetchall()
    assert audit == [("approve", "anna", "ok"), ("hold", "anna", "wait")]


def test_a_viewer_sees_the_date_but_cannot_decide(app: str, warehouse: Path) -> None:
    session = _signed_in(app, "vic", "viewer pass")
    page = session.get(f"{app}/date/{D}").text
    assert 'id="approve"' not in page and "is a viewer" in page
    refused = session.post(f"{app}/date/{D}/decide", data={"action": "approve"})
    assert refused.status_code == 403
    bearer = {"Authorization": f"Bearer {TOKEN_HOLDER['token']}"}
    assert requests.get(f"{app}/date/{D}", headers=bearer).status_code == 200
    assert requests.post(f"{app}/date/{D}/decide", headers=bearer).status_code == 403
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = {t for (t,) in con.execute("select table_name from duckdb_tables()").fetchall()}
    assert "approvals" not in tables


def test_signing_out_ends_the_session(app: str) -> None:
    session = _signed_in(app, "anna", "correct horse")
    session.post(f"{app}/logout")
    response = session.get(f"{app}/calendar", allow_redirects=False)
    assert response.status_code == 303
