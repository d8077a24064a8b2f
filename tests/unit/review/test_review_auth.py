"""Sign-in for the review app: hashed credentials from the users file, signed sessions."""

from __future__ import annotations

from pathlib import Path

import pytest

from tessera.review.auth import (
    MAX_FAILURES,
    SESSION_SECONDS,
    Authenticator,
    User,
    UsersFileError,
    hash_password,
    load_users,
    new_token,
    save_user,
)


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def users(tmp_path: Path) -> Path:
    path = tmp_path / "review-users.yml"
    save_user(path, User("anna", "approver", hash_password("correct horse")))
    save_user(path, User("vic", "viewer", hash_password("viewer pass")))
    return path


def _auth(path: Path, clock: Clock | None = None) -> Authenticator:
    return Authenticator(path, b"k" * 32, clock=clock or Clock())


def test_the_file_keeps_hashes_only_and_only_its_owner_reads_it(users: Path) -> None:
    text = users.read_text()
    assert "correct horse" not in text and "scrypt$" in text
    assert users.stat().st_mode & 0o077 == 0


def test_a_password_signs_in_its_user_only(users: Path) -> None:
    auth = _auth(users)
    assert auth.check_password("anna", "correct horse").role == "approver"
    assert auth.check_password("anna", "viewer pass") is None
    assert auth.check_password("nobody", "correct horse") is None


def test_repeated_failures_lock_the_user_out_for_a_while(users: Path) -> None:
    clock = Clock()
    auth = _auth(users, clock)
    for _ in range(MAX_FAILURES):
        assert auth.check_password("anna", "guess") is None
    assert auth.check_password("anna", "correct horse") is None  # locked, right password or not
    clock.t += 61
    assert auth.check_password("anna", "correct horse") is not None


def test_a_session_cookie_is_signed_expires_and_ends_with_a_new_password(users: Path) -> None:
    clock = Clock()
    auth = _auth(users, clock)
    cookie = auth.session_cookie(auth.check_password("anna", "correct horse"))
    assert auth.check_session(cookie).name == "anna"
    payload, signature = cookie.split(".")
    assert auth.check_session(payload + "." + signature[::-1]) is None
    assert Authenticator(users, b"x" * 32, clock=clock).check_session(cookie) is None
    assert auth.check_session("garbage") is None
    clock.t += SESSION_SECONDS + 1
    assert auth.check_session(cookie) is None
    clock.t -= SESSION_SECONDS + 1
    save_user(users, User("anna", "approver", hash_password("new password!")))
    assert auth.check_session(cookie) is None  # the file changed: the old session is over


def test_a_token_signs_in_a_script(tmp_path: Path) -> None:
    path = tmp_path / "users.yml"
    token, stored = new_token()
    save_user(path, User("bot", "viewer", token=stored))
    auth = _auth(path)
    assert auth.check_token(token).name == "bot"
    assert auth.check_token(token + "x") is None
    assert token not in path.read_text()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "users:\n  anna:\n    password: hunter22\n",
            r"users\.anna\.password: not a password hash",
        ),
        ("users:\n  anna:\n    token: abc\n", r"users\.anna\.token: not a token hash"),
        ("users:\n  anna:\n    role: boss\n    token: x\n", r"users\.anna\.role: 'boss'"),
        ("users:\n  anna:\n    pasword: x\n", r"unknown field\(s\) pasword"),
        ("users:\n  anna:\n    role: viewer\n", "neither a password nor a token"),
        ("people:\n  anna: {}\n", "single top-level key 'users'"),
        ("users: [\n", "not valid YAML"),
    ],
)
def test_a_malformed_users_file_names_the_file_user_and_field(
    tmp_path: Path, body: str, message: str
) -> None:
    path = tmp_path / "review-users.yml"
    path.write_text(body)
    with pytest.raises(UsersFileError, match=message) as err:
        load_users(path)
    assert str(path) in str(err.value)


def test_no_file_means_no_user(tmp_path: Path) -> None:
    assert load_users(tmp_path / "missing.yml") == {}
