"""Approving or holding a date from the review app.

By default a decision is a Dagster run: the app launches the `approve_and_send` job through
Dagster's GraphQL API (the `launchRun` mutation, over HTTP), so `send_approval` is
materialized in Dagster with who decided, and `deliveries` follows in the same run after an
approval. Without a Dagster webserver (``tessera review --approve-directly``) the app records the
decision itself through the same approval core, when no run holds the warehouse.
Either way every decision lands in ``audit.approvals``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
import requests

from tessera.activations.approval import ACTIONS, record_approval, record_hold
from tessera.activations.errors import ActivationError
from tessera.review.snapshot import WarehouseBusyError

#: The Dagster job a decision runs, and the op of `send_approval` in it (run config key).
JOB = "approve_and_send"
APPROVAL_OP = "activations__send_approvals"
APPROVAL_KEY = ["activations", "send_approvals"]
DELIVERIES_KEY = ["activations", "deliveries"]
VIA = "review-app"


class ApprovalRefused(ValueError):
    """A decision the app will not make (bad date or action, Dagster unreachable, changed
    messages): the message says why, and nothing was recorded."""


def same_origin(headers: Mapping[str, str]) -> bool:
    """Whether a form post comes from the app's own pages. Browsers name the page that posts
    in Origin (or Referer); another site's page posting to 127.0.0.1 must not approve sends."""
    host = headers.get("host", "")
    source = headers.get("origin") or headers.get("referer")
    if not source:
        return True  # not a browser's cross-site post (curl, tests): nothing to forge
    return urlsplit(source).netloc == host


@dataclass(frozen=True)
class Decision:
    """Approve or hold ``day`` as ``actor``; ``fingerprint`` is what the reviewer saw."""

    day: dt.date
    action: str
    actor: str
    note: str = ""
    fingerprint: str = ""

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ApprovalRefused(f"unknown action {self.action!r} (use one of {ACTIONS})")


@dataclass(frozen=True)
class Outcome:
    """What a decision did: a Dagster run (``run_id``, ``run_url``) or a direct record."""

    summary: str
    run_id: str = ""
    run_url: str = ""


_FIND_JOB = """
query { repositoriesOrError { __typename
  ... on RepositoryConnection { nodes { name location { name } jobs { name } } }
  ... on Error { message } } }"""
_LAUNCH = """
mutation Launch($params: ExecutionParams!) { launchRun(executionParams: $params) { __typename
  ... on LaunchRunSuccess { run { runId } }
  ... on RunConfigValidationInvalid { errors { message } }
  ... on Error { message } } }"""
_STATUS = """
query Status($id: ID!) { runOrError(runId: $id) { __typename
  ... on Run { status } ... on Error { message } } }"""


class DagsterUnreachable(ApprovalRefused):
    """Dagster did not answer or refused the run."""


class DagsterDecisions:
    """Decisions as runs of `approve_and_send`, launched through a Dagster webserver's GraphQL
    API (the `launchRun` mutation). The app talks to Dagster over HTTP only: it imports no
    Dagster, so it can run where Dagster's code location does not."""

    def __init__(self, url: str, timeout: float = 20.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"--dagster-url {url!r} is not an http(s) URL")
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _query(self, query: str, variables: dict | None = None) -> dict:
        try:
            response = requests.post(
                f"{self.url}/graphql",
                json={"query": query, "variables": variables or {}},
                timeout=self.timeout,
            )
            response.raise_for_status()
            body = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise DagsterUnreachable(f"{type(exc).__name__}: {str(exc)[:200]}") from None
        if body.get("errors"):
            raise DagsterUnreachable("; ".join(e.get("message", "") for e in body["errors"]))
        return body["data"]

    def _job(self) -> tuple[str, str]:
        """(location, repository) of the job `approve_and_send`."""
        found = self._query(_FIND_JOB)["repositoriesOrError"]
        if found["__typename"] != "RepositoryConnection":
            raise DagsterUnreachable(found.get("message", found["__typename"]))
        homes = [
            (repo["location"]["name"], repo["name"])
            for repo in found["nodes"]
            if any(job["name"] == JOB for job in repo["jobs"])
        ]
        if len(homes) != 1:
            raise DagsterUnreachable(
                f"{len(homes)} code locations have a job {JOB!r} (expected exactly one)"
            )
        return homes[0]

    def decide(self, decision: Decision) -> Outcome:
        config = {
            "approved_by": decision.actor,
            "note": decision.note,
            "action": decision.action,
            "expected_fingerprint": decision.fingerprint,
            "via": VIA,
        }
        selection = [APPROVAL_KEY] + ([DELIVERIES_KEY] if decision.action == "approve" else [])
        tags = {
            "dagster/partition": decision.day.isoformat(),
            "tessera/decision": decision.action,
            "tessera/decided_by": decision.actor,
            "tessera/via": VIA,
        }
        try:
            location, repository = self._job()
            launched = self._query(
                _LAUNCH,
                {
                    "params": {
                        "selector": {
                            "repositoryLocationName": location,
                            "repositoryName": repository,
                            "jobName": JOB,
                            "assetSelection": [{"path": key} for key in selection],
                        },
                        "runConfigData": {"ops": {APPROVAL_OP: {"config": config}}},
                        "executionMetadata": {
                            "tags": [{"key": k, "value": v} for k, v in tags.items()]
                        },
                    }
                },
            )["launchRun"]
            if launched["__typename"] != "LaunchRunSuccess":
                detail = launched.get("message") or "; ".join(
                    e["message"] for e in launched.get("errors", [])
                )
                raise DagsterUnreachable(f"{launched['__typename']}: {detail}"[:300])
        except DagsterUnreachable as exc:
            raise ApprovalRefused(
                f"Dagster at {self.url} did not take the {decision.action} of {decision.day} "
                f"({exc}): nothing was recorded. Is the Dagster webserver running (make dev)? "
                "Without one, start the app with --approve-directly."
            ) from None
        run_id = launched["run"]["runId"]
        what = "approval, then deliveries, run" if decision.action == "approve" else "hold runs"
        return Outcome(
            summary=f"{decision.day}: the {what} in Dagster as run {run_id[:8]}",
            run_id=run_id,
            run_url=f"{self.url}/runs/{run_id}",
        )

    def run_status(self, run_id: str) -> str:
        """The run's status (QUEUED, STARTED, SUCCESS, FAILURE, ...), or why it is unknown."""
        try:
            found = self._query(_STATUS, {"id": run_id})["runOrError"]
        except DagsterUnreachable:
            return "unknown (Dagster did not answer)"
        return found.get("status") or f"unknown ({found.get('message', found['__typename'])})"


class DirectDecisions:
    """Decisions recorded by the app itself (no Dagster webserver): the same approval core,
    only while no run holds the warehouse. Dagster then shows no `send_approval`
    materialization for them; `audit.approvals` does."""

    def __init__(self, warehouse: Path) -> None:
        self.warehouse = warehouse

    def decide(self, decision: Decision, now: dt.datetime | None = None) -> Outcome:
        try:
            con = duckdb.connect(str(self.warehouse))
        except duckdb.IOException:
            raise WarehouseBusyError(
                f"a run is writing {self.warehouse}: nothing was approved or held; try "
                f"{decision.day} again when the run has finished"
            ) from None
        try:
            if decision.action == "hold":
                done = record_hold(
                    con, decision.day, decision.actor, decision.note, now=now, via=VIA
                )
                return Outcome(
                    f"held {decision.day} ({done.messages} messages) as {decision.actor}"
                )
            done = record_approval(
                con,
                decision.day,
                decision.actor,
                decision.note,
                now=now,
                expected_fingerprint=decision.fingerprint,
                via=VIA,
            )
        except ActivationError as exc:
            raise ApprovalRefused(str(exc)) from None
        finally:
            con.close()
        return Outcome(f"approved {done.messages} messages as {decision.actor}")

    def run_status(self, run_id: str) -> str:
        return ""
