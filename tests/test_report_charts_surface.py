"""Report charts as a reader sees them: the stacked bars' legend (waste / the rest,
energy types) stands above the plot, not on the bars, where a tall bar of the same
colour as a legend patch hid that patch (fleet report: 'ムダ以外' lost its orange)."""
from __future__ import annotations

import re

from mieruka.reports.charts import stacked_bars


def _ys(svg_group: str) -> list[float]:
    return [float(y) for y in re.findall(r"[ML] [\d.]+ ([\d.]+)", svg_group)]


def test_stacked_bars_legend_is_above_the_plot():
    svg = stacked_bars(["osaka", "kobe"], {"ムダ (kWh)": [60.0, 10.0], "ムダ以外 (kWh)": [540.0, 100.0]}, "kWh")
    legend = svg[svg.index('id="legend_1"'):]        # the legend is drawn last: its colour patches follow
    patches = [y for d in re.findall(r'<g id="patch_\d+">\s*<path d="([^"]+)"', legend) for y in _ys(d)]
    axes_bg = svg[svg.index('id="patch_2"'):][:300]
    plot_top = min(_ys(axes_bg))                 # SVG y grows downwards
    assert patches and max(patches) <= plot_top, (patches, plot_top)
