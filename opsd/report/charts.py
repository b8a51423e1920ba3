"""Trend charts as SVG text, drawn with matplotlib (Agg, no display). Text stays text (svg.fonttype none), no
external references: the SVG embeds into a self-contained HTML file and prints well."""

from __future__ import annotations

import io
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from opsd.actions.report.rows import Series

SCALES = {"bytes": (1024**3, "GiB"), "s": (1, "s"), "clients": (1, "clients")}


def svg(series: Series, *, kind: str = "line") -> str | None:
    """None when the series has no points."""
    if not series.points:
        return None
    div, unit = SCALES.get(series.unit, (1, series.unit))
    labels = [p[0] for p in series.points]
    values = [p[1] / div for p in series.points]
    with plt.rc_context({"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False,
                         "axes.spines.right": False, "svg.hashsalt": "opsd"}):
        fig, ax = plt.subplots(figsize=(7.5, 2.6))
        x = range(len(values))
        if kind == "bar":
            ax.bar(x, values, color="#3b6ea5")
        else:
            ax.plot(x, values, color="#3b6ea5", linewidth=1.4, marker="o" if len(values) < 40 else None,
                    markersize=3)
        if series.target is not None:
            ax.axhline(series.target / div, color="#c62828", linewidth=1, linestyle="--", label="target")
            ax.legend(loc="lower right", frameon=False)
        step = max(1, len(labels) // 10)
        ax.set_xticks(list(x)[::step])
        ax.set_xticklabels([_short(lb) for lb in labels][::step], rotation=30, ha="right")
        ax.set_ylabel(unit)
        ax.set_title(series.name, loc="left", fontsize=10)
        ax.grid(axis="y", color="#dddddd", linewidth=0.6)
        fig.tight_layout()
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": "opsd"})
        plt.close(fig)
    return _inline(buf.getvalue())


def stacked(title: str, unit: str, labels: list[str], layers: list[tuple[str, list[float], str]],
            *, target: float | None = None, target_label: str = "target") -> str | None:
    """Stacked bars (``layers``: name, one value per label, colour) with a legend and an optional target line;
    None when every value is 0."""
    if not labels or not any(v for _n, vals, _c in layers for v in vals):
        return None
    with plt.rc_context({"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False,
                         "axes.spines.right": False, "svg.hashsalt": "opsd"}):
        fig, ax = plt.subplots(figsize=(7.5, 2.6))
        x = list(range(len(labels)))
        bottom = [0.0] * len(labels)
        for name, values, colour in layers:
            ax.bar(x, values, bottom=bottom, color=colour, label=name)
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        if target is not None:
            ax.axhline(target, color="#c62828", linewidth=1, linestyle="--", label=target_label)
        ax.legend(loc="upper right", frameon=False)
        step = max(1, len(labels) // 10)
        ax.set_xticks(x[::step])
        ax.set_xticklabels([_short(lb) for lb in labels][::step], rotation=30, ha="right")
        ax.set_ylabel(unit)
        ax.set_title(title, loc="left", fontsize=10)
        ax.grid(axis="y", color="#dddddd", linewidth=0.6)
        fig.tight_layout()
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": "opsd"})
        plt.close(fig)
    return _inline(buf.getvalue())


def _inline(text: str) -> str:
    """An SVG document as inline SVG: no XML prolog, DOCTYPE or metadata."""
    text = text[text.index("<svg"):]
    return re.sub(r"\s*<metadata>.*?</metadata>", "", text, flags=re.DOTALL)


def _short(label: str) -> str:
    """ISO times lose their year and seconds on the axis; other labels stay."""
    return label[5:16].replace("T", " ") if re.match(r"\d{4}-\d{2}-\d{2}", label) else label


KINDS = {"rto": "bar", "backup_duration": "bar", "backup_size": "bar", "archive_lag": "line", "pool_waiting": "line"}


def all_charts(trends: dict[str, Series]) -> dict[str, str]:
    out = {}
    for key, series in trends.items():
        drawn = svg(series, kind=KINDS.get(key, "line"))
        if drawn is not None:
            out[key] = drawn
    return out
