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
from tessera.review.approvals import ApprovalRefused, approve_date, reviewer, same_origin
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


class ReviewApp:
    """The pages over one snapshot and one catalog."""

    def __init__(self, warehouse: Path, snapshot: Snapshot, catalog: Catalog) -> None:
        self.warehouse = warehouse
        self.snapshot = snapshot
        self.catalog = catalog
        self.env = Environment(
            loader=PackageLoader("tessera.review", "templates"),
            autoescape=select_autoescape(["html"]),
        )
        self.env.globals["table"] = _table
        self.env.globals["quote"] = lambda s: quote(str(s), safe="")
        self.names = {c.id: c.display_name for c in catalog.campaigns}
        self.owners = {c.id: c.owner for c in catalog.campaigns}

    def render(self, name: str, status_code: int = 200, **context: object) -> HTMLResponse:
        state = self.snapshot.state()
        html = self.env.get_template(name).render(
            snapshot=state, names=self.names, owners=self.owners, **context
        )
        return HTMLResponse(html, status_code=status_code)

    def label(self, segment_id: str) -> queries.SegmentLabel:
        return queries.segment_label(self.catalog, segment_id)

    # -- pages ------------------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        return RedirectResponse("/calendar", status_code=303)

    async def calendar_page(self, request: Request) -> Response:
        with self.snapshot.connect() as con:
            cal = queries.calendar(con, self.catalog)
        return self.render("calendar.html", cal=cal, today=cal.latest)

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
        )

    async def approve(self, request: Request) -> Response:
        if not same_origin(request.headers):
            return PlainTextResponse("refused: the approval was not posted from this app", 403)
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        note = (form.get("note") or [""])[0][:500]
        try:
            day = _parse_day(request.path_params["day"])
            who = reviewer(request.headers)
            recorded = approve_date(self.warehouse, day, who, note)
        except (ApprovalRefused, WarehouseBusyError) as exc:
            return PlainTextResponse(str(exc), status_code=409)
        log.info("%s approved %s (%d messages)", who, day, recorded.approval.messages)
        # the app just released the lock: copy now, so the page shows the approval
        self.snapshot.refresh(force=True)
        message = quote(f"approved {recorded.approval.messages} messages as {who}")
        return RedirectResponse(f"/date/{day}?message={message}", status_code=303)

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
        return self.render("customer.html", customer_id=customer_id, view=view)

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
        return self.render("programme.html", **context)

    async def refresh(self, request: Request) -> Response:
        self.snapshot.refresh()
        return RedirectResponse(request.headers.get("referer") or "/calendar", status_code=303)

    async def health(self, request: Request) -> Response:
        return PlainTextResponse("ok")


def create_app(
    warehouse: Path, snapshot_dir: Path, catalog_path: Path, max_age: float = 60.0
) -> Starlette:
    """The app for one warehouse: pages read ``snapshot_dir``'s copy, approvals write the
    warehouse through the approval core."""
    review = ReviewApp(
        warehouse, Snapshot(warehouse, snapshot_dir, max_age=max_age), load_catalog(catalog_path)
    )
    app = Starlette(
        routes=[
            Route("/", review.index),
            Route("/calendar", review.calendar_page),
            Route("/date/{day}", review.date_page),
            Route("/date/{day}/approve", review.approve, methods=["POST"]),
            Route("/campaign/{campaign_id}", review.campaign_page),
            Route("/customer", review.customer_page),
            Route("/programme", review.programme_page),
            Route("/refresh", review.refresh, methods=["POST"]),
            Route("/healthz", review.health),
        ]
    )
    app.state.review = review
    return app
