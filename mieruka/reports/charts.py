"""Charts of the report as inline SVG (matplotlib, no CDN, no files).

Text is drawn as glyph paths with "Noto Sans CJK JP" (Debian's fonts-noto-cjk),
so Japanese labels render the same in any browser and in the PDF, whatever
fonts the reader has.  Output is deterministic (fixed hash salt, no date) so a
replayed report is byte-identical.
"""
from __future__ import annotations

import io
import re
import threading

import numpy as np

_LOCK = threading.Lock()      # pyplot's state is global: one chart at a time
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def _mpl():
    # lazy: matplotlib takes ~0.5 s to import, and `mieruka` commands and the API
    # import this module without always drawing a chart
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    matplotlib.rcParams.update({
        "font.family": ["Noto Sans CJK JP", "DejaVu Sans"],
        "svg.fonttype": "path", "svg.hashsalt": "mieruka",
        "axes.spines.top": False, "axes.spines.right": False,
        "axes.grid": True, "grid.alpha": 0.3, "font.size": 9,
    })
    return plt


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    _mpl().close(fig)
    text = buf.getvalue()
    text = text[text.index("<svg"):]          # drop the XML prolog and DOCTYPE: it is inlined in HTML
    return re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)


def stacked_bars(labels: list[str], series: dict[str, list[float]], ylabel: str, title: str = "") -> str:
    """Monthly bars stacked by series (energy types)."""
    with _LOCK:
        plt = _mpl()
        fig, ax = plt.subplots(figsize=(7.5, 3.2))
        bottom = np.zeros(len(labels))
        x = np.arange(len(labels))
        for i, (name, vals) in enumerate(series.items()):
            v = np.nan_to_num(np.asarray(vals, float))
            ax.bar(x, v, bottom=bottom, label=name, color=COLORS[i % len(COLORS)], width=0.7)
            bottom += v
        ax.set_xticks(x, labels)
        ax.set_ylabel(ylabel)
        if title:
            ax.set_title(title)
        if series:
            # above the plot, not on it: inside, a tall bar hid the legend's own colour patches
            ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=min(len(series), 4), fontsize=8,
                      frameon=False)
        return _svg(fig)


def composition(labels: list[str], values: list[float], title: str = "") -> str:
    """Shares as a donut with percentages."""
    with _LOCK:
        plt = _mpl()
        fig, ax = plt.subplots(figsize=(3.6, 3.2))
        v = np.clip(np.nan_to_num(np.asarray(values, float)), 0, None)
        if v.sum() <= 0:
            ax.text(0.5, 0.5, "-", ha="center", va="center")
            ax.axis("off")
        else:
            ax.pie(v, labels=labels, autopct="%1.1f%%", startangle=90, counterclock=False,
                   colors=COLORS[:len(v)], wedgeprops={"width": 0.45}, textprops={"fontsize": 8})
            ax.axis("equal")
        if title:
            ax.set_title(title)
        return _svg(fig)


def profiles(hours: np.ndarray, curves: dict[str, np.ndarray], ylabel: str, xlabel: str,
             level: float | None = None, level_label: str = "", shade: np.ndarray | None = None,
             shade_label: str = "", title: str = "") -> str:
    """Curves over the hours of a day (or any x), with an optional horizontal
    level (a standby or leak level) and shaded x ranges (outside production)."""
    with _LOCK:
        plt = _mpl()
        fig, ax = plt.subplots(figsize=(7.5, 2.8))
        for i, (name, y) in enumerate(curves.items()):
            ax.plot(hours, y, label=name, color=COLORS[i % len(COLORS)], lw=1.4)
        if shade is not None and shade.any():
            ymax = max([np.nanmax(y) for y in curves.values() if np.isfinite(y).any()] + [1.0])
            ax.fill_between(hours, 0, ymax * 1.05, where=shade, color="#999999", alpha=0.15, step="mid",
                            label=shade_label, lw=0)
        if level is not None and np.isfinite(level):
            ax.axhline(level, color="#d62728", ls="--", lw=1, label=level_label)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if len(hours) and hours.max() <= 24:
            ax.set_xlim(0, 24)
            ax.set_xticks(range(0, 25, 3))
        ax.set_ylim(bottom=0)
        if title:
            ax.set_title(title)
        ax.legend(loc="upper left", fontsize=8, frameon=False)
        return _svg(fig)


def series(times_days: np.ndarray, values: np.ndarray, ylabel: str, xlabels: tuple[list[float], list[str]],
           level: float | None = None, level_label: str = "", title: str = "") -> str:
    """A value over days (e.g. weekly leak flow), x given as day numbers with tick labels."""
    with _LOCK:
        plt = _mpl()
        fig, ax = plt.subplots(figsize=(7.5, 2.6))
        ax.plot(times_days, values, color=COLORS[0], lw=1.2, marker="o", ms=3)
        if level is not None and np.isfinite(level):
            ax.axhline(level, color="#d62728", ls="--", lw=1, label=level_label)
            ax.legend(loc="upper left", fontsize=8, frameon=False)
        ax.set_xticks(*xlabels)
        ax.set_ylabel(ylabel)
        ax.set_ylim(bottom=0)
        if title:
            ax.set_title(title)
        return _svg(fig)
