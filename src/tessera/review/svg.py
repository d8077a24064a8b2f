"""Server-rendered SVG charts: no JavaScript and nothing fetched by the browser."""

from __future__ import annotations

import math
from html import escape

import pandas as pd


def interval_plot(
    frame: pd.DataFrame,
    x: str,
    y: str,
    low: str,
    high: str,
    title: str,
    width: int = 640,
    height: int = 220,
    percent: bool = True,
) -> str:
    """Points with interval bars over ``x`` and a zero line; rows with a missing ``y`` are left
    out (and said so), so an empty window never draws as zero."""
    rows = frame[[x, y, low, high]].copy()
    rows = rows[rows[y].notna()]
    if rows.empty:
        return f'<p class="muted">{escape(title)}: no measured window yet.</p>'
    values = pd.concat([rows[y], rows[low].dropna(), rows[high].dropna(), pd.Series([0.0])])
    vmin, vmax = float(values.min()), float(values.max())
    if math.isclose(vmin, vmax):
        vmin, vmax = vmin - 1, vmax + 1
    pad_l, pad_r, pad_t, pad_b = 60, 20, 28, 40
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b

    def sy(v: float) -> float:
        return pad_t + plot_h * (vmax - v) / (vmax - vmin)

    n = len(rows)
    step = plot_w / max(n, 1)
    fmt = (lambda v: f"{v:+.1%}") if percent else (lambda v: f"{v:+.3g}")
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(title)}">',
        f'<text x="{pad_l}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{pad_l}" x2="{width - pad_r}" y1="{sy(0):.1f}" y2="{sy(0):.1f}" '
        'stroke="#999" stroke-dasharray="4 3"/>',
        f'<text x="{pad_l - 6}" y="{sy(vmax) + 4:.1f}" font-size="11" text-anchor="end">'
        f"{fmt(vmax)}</text>",
        f'<text x="{pad_l - 6}" y="{sy(vmin) + 4:.1f}" font-size="11" text-anchor="end">'
        f"{fmt(vmin)}</text>",
        f'<text x="{pad_l - 6}" y="{sy(0) + 4:.1f}" font-size="11" text-anchor="end">0</text>',
    ]
    for i, r in enumerate(rows.itertuples(index=False)):
        cx = pad_l + step * (i + 0.5)
        lo, hi, val = getattr(r, low), getattr(r, high), getattr(r, y)
        if pd.notna(lo) and pd.notna(hi):
            parts.append(
                f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{sy(float(hi)):.1f}" '
                f'y2="{sy(float(lo)):.1f}" stroke="#3a6ea5" stroke-width="2"/>'
            )
        colour = "#2a8a3a" if pd.notna(lo) and float(lo) > 0 else "#3a6ea5"
        parts.append(
            f'<circle cx="{cx:.1f}" cy="{sy(float(val)):.1f}" r="4" fill="{colour}">'
            f"<title>{escape(str(getattr(r, x)))}: {fmt(float(val))}</title></circle>"
        )
        if n <= 16:
            parts.append(
                f'<text x="{cx:.1f}" y="{height - 22}" font-size="10" text-anchor="middle">'
                f"{escape(str(getattr(r, x))[5:10])}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def bars(labels: list[str], values: list[float], title: str, width: int = 520) -> str:
    """Horizontal bars, one per label."""
    if not labels:
        return f'<p class="muted">{escape(title)}: nothing to show.</p>'
    row_h, label_w = 20, 200
    height = 28 + row_h * len(labels)
    vmax = max(max(values), 1e-9)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(title)}">',
        f'<text x="0" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
    ]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = 24 + i * row_h
        w = (width - label_w - 60) * value / vmax
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 13}" font-size="11" text-anchor="end">'
            f"{escape(label)}</text>"
            f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{row_h - 6}" fill="#3a6ea5"/>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + 13}" font-size="11">{value:g}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
