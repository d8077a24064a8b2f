"""SendGrid's documented limits and rules, applied alike by the client and the local sink."""

from __future__ import annotations

import re

#: SendGrid's documented limits of v3 mail/send (docs: "Mail Send" reference, "Limitations",
#: "Errors"): per request at most 1,000 personalizations and 1,000 recipients (to + cc + bcc).
MAX_PERSONALIZATIONS = 1000
MAX_RECIPIENTS = 1000
MAX_CATEGORIES = 10
MAX_CATEGORY_CHARS = 255
MAX_CUSTOM_ARGS_BYTES = 10_000
MAX_BODY_BYTES = 30 * 1024 * 1024
#: ``send_at`` at most 72 hours ahead.
MAX_SEND_AHEAD_S = 72 * 3600
#: Cancel Scheduled Sends: no pause or cancel later than 10 minutes before send_at, and at
#: most 10 batches paused or cancelled at one time.
CANCEL_BEFORE_S = 600
MAX_HELD_BATCHES = 10
#: Headers SendGrid sets itself and refuses in ``headers`` (case-insensitive).
RESERVED_HEADERS = frozenset(
    {
        "x-sg-id",
        "x-sg-eid",
        "received",
        "dkim-signature",
        "content-type",
        "content-transfer-encoding",
        "to",
        "from",
        "subject",
        "reply-to",
        "cc",
        "bcc",
    }
)
#: RFC 5321 limits SendGrid applies: local part <= 64, whole address <= 254 characters.
MAX_LOCAL_PART = 64
MAX_ADDRESS = 254
DYNAMIC_TEMPLATE_RE = re.compile(r"^d-[0-9a-f]{32}$")
LEGACY_TEMPLATE_RE = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE
)
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_LOCAL_RE = re.compile(rf"^{_ATOM}(\.{_ATOM})*$")
_LABEL_RE = re.compile(rf"^{_LABEL}$")


def address_ok_sql(col: str) -> str:
    """A DuckDB boolean equal to ``address_problem(col) is None`` (the plan excludes what the
    provider would refuse, e.g. ``<a@x.com>``, which SendGrid's client rewrites to ``a@x.com``)."""
    pattern = rf"{_ATOM}(\.{_ATOM})*@({_LABEL}\.)+{_LABEL}".replace("'", "''")
    return (
        f"(coalesce(length({col}) <= {MAX_ADDRESS}"
        f" and length(split_part({col}, '@', 1)) <= {MAX_LOCAL_PART}"
        f" and regexp_full_match({col}, '{pattern}')"
        f" and not regexp_full_match(reverse(split_part(reverse({col}), '.', 1)), '[0-9]+'),"
        " false))"
    )


def address_problem(address: object) -> str | None:
    """Why an e-mail address would be refused (syntax and RFC 5321 lengths), or None."""
    if not isinstance(address, str) or not address:
        return "Does not contain a valid address."
    if len(address) > MAX_ADDRESS:
        return f"Does not contain a valid address: longer than {MAX_ADDRESS} characters."
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        return "Does not contain a valid address."
    if len(local) > MAX_LOCAL_PART:
        return (
            f"Does not contain a valid address: the local part exceeds {MAX_LOCAL_PART} characters."
        )
    labels = domain.split(".")
    if (
        not _LOCAL_RE.fullmatch(local)
        or len(labels) < 2
        or not all(_LABEL_RE.fullmatch(label) for label in labels)
        or labels[-1].isdigit()
    ):
        return "Does not contain a valid address."
    return None
