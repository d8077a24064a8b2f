"""Review material for marketing ops: the micro-segment x date grid, summaries and a chart."""

from __future__ import annotations

import pandas as pd

from tessera.campaigns.catalog import Catalog


def matrix_grid(
    matrix: pd.DataFrame,
    catalog: Catalog | None,
    top_segments: int = 10,
    campaigns_per_cell: int = 2,
) -> pd.DataFrame:
    """Rows = the largest micro-segments, columns = dates, cells = "Campaign name 123 (12 ctl)"."""
    if matrix.empty:
        return pd.DataFrame()
    names = {c.id: c.display_name for c in catalog.campaigns} if catalog else {}
    m = matrix.copy()
    m["as_of_date"] = pd.to_datetime(m["as_of_date"]).dt.strftime("%m-%d")
    sizes = m.groupby("micro_segment_id")["customer_count"].sum().nlargest(top_segments)
    m = m[m["micro_segment_id"].isin(sizes.index)]
    m = m.sort_values(["customer_count", "campaign_id"], ascending=[False, True])

    def cell(group: pd.DataFrame) -> str:
        parts = [
            f"{names.get(r.campaign_id, r.campaign_id)} {r.customer_count}"
            + (f" ({r.control_count} ctl)" if r.control_count else "")
            for r in group.head(campaigns_per_cell).itertuples()
        ]
        if len(group) > campaigns_per_cell:
            parts.append(f"+{len(group) - campaigns_per_cell} more")
        return "; ".join(parts)

    cells = m.groupby(["micro_segment_id", "as_of_date"]).apply(cell, include_groups=False)
    grid = cells.unstack("as_of_date").reindex(sizes.index).fillna("")
    grid.insert(0, "assigned", sizes.values)
    return grid.reset_index()


def assignments_by_campaign(assignments: pd.DataFrame, catalog: Catalog | None) -> pd.DataFrame:
    """Assigned, treated and control customers per campaign and channel."""
    if assignments.empty:
        return pd.DataFrame(columns=["campaign", "channel", "assigned", "control", "control_share"])
    names = {c.id: c.display_name for c in catalog.campaigns} if catalog else {}
    out = (
        assignments.assign(is_control=assignments["is_control"].astype(bool))
        .groupby(["campaign_id", "channel"])
        .agg(assigned=("customer_id", "size"), control=("is_control", "sum"))
        .reset_index()
        .sort_values(["assigned", "campaign_id"], ascending=[False, True])
    )
    out.insert(0, "campaign", out.pop("campaign_id").map(lambda c: names.get(c, c)))
    out["control_share"] = (out["control"] / out["assigned"]).round(3)
    return out


def exclusions_by_reason(exclusions: pd.DataFrame) -> pd.DataFrame:
    """Excluded (customer, campaign) pairs per reason, in attribution order."""
    from tessera.campaigns.engine import REASONS

    counts = exclusions.groupby("reason").size() if not exclusions.empty else pd.Series()
    return pd.DataFrame(
        {"reason": list(REASONS), "pairs": [int(counts.get(r, 0)) for r in REASONS]}
    )


def assignments_chart(history: pd.DataFrame, catalog: Catalog | None, title: str):
    """Stacked bars: assigned customers per date and campaign (the matrix over time)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = {c.id: c.display_name for c in catalog.campaigns} if catalog else {}
    fig, ax = plt.subplots(figsize=(9, 4))
    if not history.empty:
        pivot = (
            history.assign(day=pd.to_datetime(history["as_of_date"]).dt.strftime("%m-%d"))
            .pivot_table(index="day", columns="campaign_id", values="n", aggfunc="sum")
            .fillna(0)
        )
        pivot.columns = [names.get(c, c) for c in pivot.columns]
        pivot.plot(kind="bar", stacked=True, ax=ax, width=0.8, colormap="tab20")
        ax.legend(fontsize=7, ncol=2, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title(title)
    ax.set_xlabel("campaign date")
    ax.set_ylabel("customers assigned")
    fig.tight_layout()
    return fig
