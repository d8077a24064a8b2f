"""Small helpers that turn frames and figures into Dagster metadata readable in the UI."""

from __future__ import annotations

import base64
import io
from typing import Any

import pandas as pd


def markdown_table(df: pd.DataFrame, max_rows: int = 10, float_digits: int = 3) -> str:
    """A GitHub-flavoured Markdown table of the first rows (no tabulate dependency)."""
    if df.empty:
        return "_(no rows)_"
    head = df.head(max_rows)

    def fmt(value: Any) -> str:
        if value is None or (isinstance(value, float) and pd.isna(value)):
            return ""
        if isinstance(value, float):
            return f"{value:.{float_digits}f}".rstrip("0").rstrip(".")
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(str(c) for c in head.columns) + " |",
        "|" + "---|" * len(head.columns),
    ]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in head.itertuples(index=False)]
    if len(df) > max_rows:
        lines.append(f"\n_{len(df) - max_rows:,} more rows_")
    return "\n".join(lines)


def png_markdown(fig: Any, alt: str = "chart") -> str:
    """Embed a matplotlib figure as a base64 PNG inside Markdown (rendered by the Dagster UI)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    encoded = base64.b64encode(buf.getvalue()).decode("ascii")
    return f"![{alt}](data:image/png;base64,{encoded})"
