"""Sign-in for the review app: users from a config file, hashed passwords or tokens, sessions
in a signed cookie.

The users file (``review-users.yml`` in the data folder, or ``TESSERA_REVIEW_USERS``) holds
no secret in clear, only hashes that ``tessera review add-user`` writes::

    users:
      anna:
        password: scrypt$16384$8$1$<salt>$<hash>     # hashlib.scrypt, salted
        role: approver                                # approver (default) or viewer
      reporting-bot:
        token: sha256$<hex>                           # sha256 of a generated 32-byte token
        role: viewer

A browser signs in with a password and gets a session cookie, HMAC-signed with
``TESSERA_REVIEW_SECRET`` (or a random key per start of the app, which signs everyone out
when the app restarts). A script sends ``Authorization: Bearer <token>``. The file is read
again when it changes, so a removed user or a new password ends that user's sessions.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tessera.yaml12 import safe_load

ROLES = ("approver", "viewer")
USERS_VAR = "TESSERA_REVIEW_USERS"
SECRET_VAR = "TESSERA_REVIEW_SECRET"
USERS_FILE = "review-users.yml"
COOKIE = "tessera_review"
#: How long a session lasts before signing in again.
SESSION_SECONDS = 12 * 3600
#: scrypt's cost (n, r, p): about 50 ms and 16 MiB per check here.
SCRYPT = (2**14, 8, 1)
#: Failed sign-ins per user before the app refuses that user for LOCKOUT_SECONDS.
MAX_FAILURES = 5
LOCKOUT_SECONDS = 60.0


class UsersFileError(ValueError):
    """The users file is malformed: the message names the file, the user and the field."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, salt: bytes | None = None) -> str:
    """The stored form of ``password``: ``scrypt$n$r$p$salt$hash`` (base64url)."""
    if not password:
        raise ValueError("the password is empty")
    n, r, p = SCRYPT
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def _check_password(password: str, stored: str) -> bool:
    _, n, r, p, salt, digest = stored.split("$")
    got = hashlib.scrypt(
        password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=32
    )
    return hmac.compare_digest(got, _unb64(digest))


def new_token() -> tuple[str, str]:
    """A fresh API token and its stored form (``sha256$hex``)."""
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    return "sha256$" + hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class User:
    name: str
    role: str = "approver"
    password: str = ""  # scrypt$... or ""
    token: str = ""  # sha256$... or ""

    @property
    def can_decide(self) -> bool:
        """Whether the user may approve or hold a date."""
        return self.role == "approver"

    @property
    def stamp(self) -> str:
        """Changes when the user's credentials or role change: sessions carry it."""
        return hashlib.sha256(f"{self.role}|{self.password}|{self.token}".encode()).hexdigest()[:16]


def _parse_user(path: Path, name: object, entry: object) -> User:
    where = f"{path}: users.{name}"
    if not isinstance(name, str) or not name.strip() or "|" in name:
        raise UsersFileError(f"{where}: a user name must be non-empty text without '|'")
    if not isinstance(entry, Mapping):
        raise UsersFileError(f"{where}: expected a mapping with password/token and role")
    unknown = sorted(set(map(str, entry)) - {"password", "token", "role"})
    if unknown:
        raise UsersFileError(
            f"{where}: unknown field(s) {', '.join(unknown)} (allowed: password, token, role)"
        )
    role = entry.get("role", "approver")
    if role not in ROLES:
        raise UsersFileError(f"{where}.role: {role!r} is not one of {', '.join(ROLES)}")
    password = entry.get("password") or ""
    token = entry.get("token") or ""
    if not isinstance(password, str) or not isinstance(token, str):
        raise UsersFileError(f"{where}: password and token must be text")
    if password and not (password.startswith("scrypt$") and password.count("$") == 5):
        raise UsersFileError(
            f"{where}.password: not a password hash. The file keeps hashes only: run "
            f"`tessera review add-user {name}` to set a password"
        )
    if token and not (token.startswith("sha256$") and len(token) == 7 + 64):
        raise UsersFileError(
            f"{where}.token: not a token hash: run `tessera review add-user {name} --token`"
        )
    if not password and not token:
        raise UsersFileError(f"{where}: has neither a password nor a token")
    return User(name=name, role=role, password=password, token=token)


def load_users(path: Path) -> dict[str, User]:
    """The users of ``path`` (none when the file does not exist)."""
    if not path.exists():
        return {}
    try:
        data = safe_load(path.read_text(encoding="utf-8")) or {}
    except Exception as exc:  # a YAML error: name the file
        raise UsersFileError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, Mapping) or set(map(str, data)) - {"users"}:
        raise UsersFileError(f"{path}: expected a single top-level key 'users'")
    users = data.get("users") or {}
    if not isinstance(users, Mapping):
        raise UsersFileError(f"{path}: users must be a mapping of name to settings")
    return {str(n): _parse_user(path, n, e) for n, e in users.items()}


def save_user(path: Path, user: User) -> None:
    """Add or replace ``user`` in the users file (written whole, then renamed over it)."""
    users = load_users(path)
    users[user.name] = user
    lines = [
        "# Review app users (tessera review add-user). Hashes only, never a password.",
        "users:",
    ]
    for u in sorted(users.values(), key=lambda u: u.name):
        lines.append(f"  {_quote(u.name)}:")
        lines.append(f"    role: {u.role}")
        if u.password:
            lines.append(f"    password: '{u.password}'")
        if u.token:
            lines.append(f"    token: '{u.token}'")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.chmod(0o600)
    tmp.replace(path)


def _quote(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"


def session_secret(env: Mapping[str, str] | None = None) -> bytes:
    """The cookie-signing key: TESSERA_REVIEW_SECRET, else a random key for this process."""
    env = os.environ if env is None else env
    value = env.get(SECRET_VAR, "")
    if value:
        if len(value) < 32:
            raise UsersFileError(f"{SECRET_VAR} must be at least 32 characters long")
        return value.encode()
    return secrets.token_bytes(32)


@dataclass
class Authenticator:
    """Checks passwords, tokens and session cookies against the users file."""

    path: Path
    secret: bytes
    clock: object = time.time
    _users: dict[str, User] = field(default_factory=dict)
    _mtime: float | None = None
    _failures: dict[str, list[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def users(self) -> dict[str, User]:
        """The users, read again when the file changed (a bad edit raises UsersFileError)."""
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            mtime = None
        with self._lock:
            if mtime != self._mtime:
                self._users = load_users(self.path)
                self._mtime = mtime
            return self._users

    def now(self) -> float:
        return self.clock()  # type: ignore[operator]

    def locked_out(self, name: str) -> bool:
        recent = [t for t in self._failures.get(name, []) if self.now() - t < LOCKOUT_SECONDS]
        self._failures[name] = recent
        return len(recent) >= MAX_FAILURES

    def check_password(self, name: str, password: str) -> User | None:
        """The user when ``password`` is theirs; None otherwise (also while locked out). An
        unknown name costs the same scrypt as a known one, so timing does not tell them apart."""
        if self.locked_out(name):
            return None
        user = self.users().get(name)
        stored = user.password if user and user.password else _DUMMY
        ok = _check_password(password, stored) and user is not None and bool(user.password)
        if not ok:
            self._failures.setdefault(name, []).append(self.now())
            return None
        self._failures.pop(name, None)
        return user

    def check_token(self, token: str) -> User | None:
        digest = hash_token(token)
        found = None
        for user in self.users().values():
            if user.token and hmac.compare_digest(user.token, digest):
                found = user
        return found

    def session_cookie(self, user: User) -> str:
        expires = int(self.now() + SESSION_SECONDS)
        payload = f"{user.name}|{expires}|{user.stamp}"
        return f"{_b64(payload.encode())}.{self._sign(payload)}"

    def check_session(self, cookie: str) -> User | None:
        try:
            encoded, signature = cookie.split(".")
            payload = _unb64(encoded).decode()
            name, expires, stamp = payload.split("|")
        except (ValueError, UnicodeDecodeError):
            return None
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        if int(expires) < self.now():
            return None
        user = self.users().get(name)
        if user is None or user.stamp != stamp:
            return None  # removed, or a new password or role since the sign-in
        return user

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self.secret, payload.encode(), hashlib.sha256).digest())


#: Checked when the user is unknown, so a wrong name takes as long as a wrong password.
_DUMMY = hash_password("not a password", salt=b"\0" * 16)


def users_path(data_dir: Path, env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get(USERS_VAR) or data_dir / USERS_FILE).resolve()
