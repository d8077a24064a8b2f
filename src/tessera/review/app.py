"""The review web app (Starlette, server-rendered Jinja2 pages and SVG charts)."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from urllib.parse import parse_qs, quote

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from tessera.campaigns.catalog import Catalog, load_catalog
from tessera.review import queries, svg
from tessera.review.approvals import (
    ApprovalRefused,
    DagsterDecisions,
    Decision,
    DirectDecisions,
    Outcome,
    same_origin,
)
from tessera.review.auth import COOKIE, SESSION_SECONDS, Authenticator, User, UsersFileError
from tessera.review.snapshot import Snapshot, WarehouseBusyError

log = logging.getLogger(__name__)


def _table(frame: pd.DataFrame | None, empty: str = "nothing yet") -> Markup:
    if frame is None or frame.empty:
        return Markup('<p class="muted">{}</p>').format(empty)
    return Markup(frame.to_html(index=False, escape=True, border=0, classes="grid", na_rep=""))


def _parse_day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ApprovalRefused(f"not a date: {text!r} (use YYYY-MM-DD)") from None


def _form(body: bytes) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}


def _local_path(target: str) -> str:
    """``target`` when it is a path of this app, else /calendar (no open redirect)."""
    ok = target.startswith("/") and not target.startswith("//") and "\\" not in target
    return target if ok else "/calendar"


class ReviewApp:
    """The pages over one snapshot and one catalog, for signed-in users."""

    def __init__(
        self,
        warehouse: Path,
        snapshot: Snapshot,
        catalog: Catalog,
        auth: Authenticator,
        decisions: DagsterDecisions | DirectDecisions,
    ) -> None:
        self.warehouse = warehouse
        self.snapshot = snapshot
        self.catalog = catalog
        self.auth = auth
        self.decisions = decisions
        #: The last decision launched from this app per date (shown with its run's status).
        self.launched: dict[dt.date, tuple[Decision, Outcome]] = {}
        self.env = Environment(
            loader=PackageLoader("tessera.review", "templates"),
            autoescape=select_autoescape(["html"]),
        )
        self.env.globals["table"] = _table
        self.env.globals["quote"] = lambda s: quote(str(s), safe="")
        self.names = {c.id: c.display_name for c in catalog.campaigns}
        self.owners = {c.id: c.owner for c in catalog.campaigns}

    def render(
        self, name: str, status_code: int = 200, user: User | None = None, **context: object
    ) -> HTMLResponse:
        state = self.snapshot.state() if user else None
        html = self.env.get_template(name).render(
            snapshot=state, names=self.names, owners=self.owners, user=user, **context
        )
        return HTMLResponse(html, status_code=status_code)

    # -- sign-in ----------------------------------------------------------------------------

    def signed_in(self, request: Request) -> User | None:
        """The user of a valid session cookie or bearer token, else None."""
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            return self.auth.check_token(header[7:].strip())
        cookie = request.cookies.get(COOKIE)
        return self.auth.check_session(cookie) if cookie else None

    async def login_page(self, request: Request) -> Response:
        target = _local_path(request.query_params.get("next", "/calendar"))
        return self.render("login.html", next=target, error="", setup=not self.auth.users())

    async def login(self, request: Request) -> Response:
        if not same_origin(request.headers):
            return PlainTextResponse("refused: the sign-in was not posted from this app", 403)
        form = _form(await request.body())
        name = form.get("user", "").strip()
        target = _local_path(form.get("next", "/calendar"))
        user = self.auth.check_password(name, form.get("password", ""))
        if user is None:
            log.warning("failed sign-in to the review app as %r", name[:64])
            error = (
                "too many failed sign-ins: wait a minute"
                if self.auth.locked_out(name)
                else "wrong user name or password"
            )
            return self.render("login.html", 401, next=target, error=error, setup=False)
        log.info("%s signed in to the review app", user.name)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE,
            self.auth.session_cookie(user),
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="strict",
        )
        return response

    async def logout(self, request: Request) -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    def label(self, segment_id: str) -> queries.SegmentLabel:
        return queries.segment_label(self.catalog, segment_id)

    # -- pages ------------------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        return RedirectResponse("/calendar", status_code=303)

    async def calendar_page(self, request: Request) -> Response:
        with self.snapshot.connect() as con:
            cal = queries.calendar(con, self.catalog)
        return self.render("calendar.html", user=request.state.user, cal=cal, today=cal.latest)

    async def date_page(self, request: Request) -> Response:
        try:
            day = _parse_day(request.path_params["day"])
        except ApprovalRefused as exc:
            return PlainTextResponse(str(exc), status_code=400)
        with self.snapshot.connect() as con:
            grid = queries.matrix(con, day)
            counts, samples = queries.dry_run(con, day)
            reasons = queries.exclusions_by_reason(con, day)
            suites, quarantine = queries.quality_status(con, day)
            approval = queries.approval_state(con, day)
            history = queries.approval_log(con, day)
            collisions = queries.date_collisions(con, day)
        rows = []
        if not grid.empty:
            campaigns = [c for c in grid.columns if c != "total"]
            for seg, r in grid.iterrows():
                rows.append((self.label(str(seg)), [int(r[c]) for c in campaigns], int(r["total"])))
        else:
            campaigns = []
        chart = svg.bars(
            [
                f"{self.names.get(c, c)} · {ch}"
                for c, ch in zip(
                    counts.get("campaign_id", []), counts.get("channel", []), strict=True
                )
            ],
            [float(v) for v in counts.get("messages", [])],
            "messages per campaign and channel",
        )
        return self.render(
            "date.html",
            user=request.state.user,
            day=day,
            campaigns=campaigns,
            rows=rows,
            counts=counts,
            samples=samples,
            reasons=reasons,
            suites=suites,
            quarantine=quarantine,
            approval=approval,
            history=history,
            collisions=collisions,
            chart=Markup(chart),
            message=request.query_params.get("message", ""),
            launched=self._launched(day),
        )

    def _launched(self, day: dt.date) -> dict | None:
        """The last decision this app launched for ``day``, with its Dagster run's status."""
        if day not in self.launched:
            return None
        decision, outcome = self.launched[day]
        status = self.decisions.run_status(outcome.run_id) if outcome.run_id else "recorded"
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            self.snapshot.refresh()  # the run is over: show what it recorded
        return {"decision": decision, "outcome": outcome, "status": status}

    async def decide(self, request: Request) -> Response:
        """Approve or hold a date (form fields: action, note, fingerprint)."""
        if not same_origin(request.headers):
            return PlainTextResponse("refused: the decision was not posted from this app", 403)
        user: User = request.state.user
        if not user.can_decide:
            return PlainTextResponse(
                f"refused: {user.name} is a viewer; only approvers approve or hold dates", 403
            )
        form = _form(await request.body())
        try:
            day = _parse_day(request.path_params["day"])
            decision = Decision(
                day=day,
                action=form.get("action", "approve"),
                actor=user.name,
                note=form.get("note", "")[:500],
                fingerprint=form.get("fingerprint", ""),
            )
            outcome = self.decisions.decide(decision)
        except (ApprovalRefused, WarehouseBusyError) as exc:
            return PlainTextResponse(str(exc), status_code=409)
        log.info("%s: %s %s (%s)", user.name, decision.action, day, outcome.summary)
        self.launched[day] = (decision, outcome)
        if not outcome.run_id:
            # recorded by the app, which just released the lock: copy now, so the page shows it
            self.snapshot.refresh(force=True)
        return RedirectResponse(f"/date/{day}?message={quote(outcome.summary)}", status_code=303)

    async def campaign_page(self, request: Request) -> Response:
        campaign_id = request.path_params["campaign_id"]
        with self.snapshot.connect() as con:
            results = queries.campaign_results(con, campaign_id)
            latest = queries.latest_date(con)
            drivers = (
                queries.campaign_drivers(con, campaign_id, latest) if latest else pd.DataFrame()
            )
        if not results.empty:
            results["as_of_date"] = results["as_of_date"].astype(str)
            lift = Markup(
                svg.interval_plot(
                    results,
                    "as_of_date",
                    "abs_lift",
                    "abs_lift_ci_low",
                    "abs_lift_ci_high",
                    "conversion rate, treatment minus control (95% interval)",
                )
            )
            revenue = Markup(
                svg.interval_plot(
                    results,
                    "as_of_date",
                    "revenue_lift_per_customer",
                    "revenue_lift_ci_low",
                    "revenue_lift_ci_high",
                    "revenue lift per customer (95% interval)",
                    percent=False,
                )
            )
            shown = results[
                [
                    "as_of_date",
                    "treatment_n",
                    "control_n",
                    "treatment_rate",
                    "control_rate",
                    "abs_lift",
                    "abs_lift_ci_low",
                    "abs_lift_ci_high",
                    "rel_lift",
                    "rel_lift_ci_low",
                    "rel_lift_ci_high",
                    "p_value",
                    "incremental_revenue",
                ]
            ].round(4)
        else:
            lift = revenue = Markup("")
            shown = results
        chart = svg.bars(
            list(drivers.get("feature", [])),
            [float(v) for v in drivers.get("customers", [])],
            "top churn drivers of the targeted customers (customers)",
        )
        campaign = next((c for c in self.catalog.campaigns if c.id == campaign_id), None)
        return self.render(
            "campaign.html",
            user=request.state.user,
            campaign_id=campaign_id,
            campaign=campaign,
            results=shown,
            lift=lift,
            revenue=revenue,
            drivers=drivers.round(4) if not drivers.empty else drivers,
            drivers_chart=Markup(chart),
            latest=latest,
        )

    async def customer_page(self, request: Request) -> Response:
        customer_id = request.query_params.get("customer_id", "").strip()
        view = None
        if customer_id:
            with self.snapshot.connect() as con:
                view = queries.customer(con, customer_id)
        return self.render(
            "customer.html", user=request.state.user, customer_id=customer_id, view=view
        )

    async def programme_page(self, request: Request) -> Response:
        with self.snapshot.connect() as con:
            results = queries.programme(con)
        context: dict = {"results": results, "programme_table": queries.PROGRAMME_TABLE}
        if results is not None and not results.empty:
            for column in ("as_of_date", "window_start"):
                results[column] = results[column].astype(str).str[:10]
            whole = results[results["scope"] == "programme"]
            latest = results["as_of_date"].max()
            context.update(
                latest=latest,
                headline=whole[whole["as_of_date"] == latest].head(1).to_dict("records"),
                lift=Markup(
                    svg.interval_plot(
                        whole,
                        "as_of_date",
                        "abs_lift",
                        "abs_lift_ci_low",
                        "abs_lift_ci_high",
                        "programme conversion rate minus the global control's (95% interval)",
                    )
                ),  # fmt: skip
                campaigns=results[
                    (results["scope"] == "campaign") & (results["as_of_date"] == latest)
                ].drop(columns=["scope"]),
            )
        return self.render("programme.html", user=request.state.user, **context)

    async def refresh(self, request: Request) -> Response:
        self.snapshot.refresh()
        return RedirectResponse(request.headers.get("referer") or "/calendar", status_code=303)

    async def health(self, request: Request) -> Response:
        return PlainTextResponse("ok")


def _guarded(review: ReviewApp, handler):
    """``handler`` for signed-in users only: others are sent to the sign-in page (GET) or
    refused with 401 (anything else)."""

    async def guarded(request: Request) -> Response:
        try:
            user = review.signed_in(request)
        except UsersFileError as exc:
            log.error("%s", exc)
            return PlainTextResponse(f"the review app's users file is broken: {exc}", 500)
        if user is None:
            if request.method == "GET":
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
            return PlainTextResponse("sign in first (or send Authorization: Bearer <token>)", 401)
        request.state.user = user
        return await handler(request)

    return guarded


def create_app(
    warehouse: Path,
    snapshot_dir: Path,
    catalog_path: Path,
    auth: Authenticator,
    decisions: DagsterDecisions | DirectDecisions,
    max_age: float = 60.0,
) -> Starlette:
    """The app for one warehouse: pages read ``snapshot_dir``'s copy; decisions go to Dagster
    (or, with DirectDecisions, to the approval core); every page but /login and /healthz needs a
    signed-in user of ``auth``."""
    review = ReviewApp(
        warehouse,
        Snapshot(warehouse, snapshot_dir, max_age=max_age),
        load_catalog(catalog_path),
        auth,
        decisions,
    )

    def page(path: str, handler, methods: list[str] | None = None) -> Route:
        return Route(path, _guarded(review, handler), methods=methods)

    app = Starlette(
        routes=[
            Route("/login", review.login_page),
            Route("/login", review.login, methods=["POST"]),
            Route("/healthz", review.health),
            Route("/logout", review.logout, methods=["POST"]),
            page("/", review.index),
            page("/calendar", review.calendar_page),
            page("/date/{day}", review.date_page),
            page("/date/{day}/decide", review.decide, methods=["POST"]),
            page("/campaign/{campaign_id}", review.campaign_page),
            page("/customer", review.customer_page),
            page("/programme", review.programme_page),
            page("/refresh", review.refresh, methods=["POST"]),
        ]
    )
    app.state.review = review
    return app
