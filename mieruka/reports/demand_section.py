"""The demand (デマンド) part of the report and of the Excel export: monthly maxima
with 契約電力, the top 10 peaks with what ran, a chart of each day's highest
demand against the contract and the target, and the monthly bill estimates."""
from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from ..service.demand import report_demand
from . import charts
from .i18n import T


def demand_section(ctx, start: dt.datetime, end: dt.datetime) -> dict[str, Any] | None:
    """Everything the template and the sheet need, or None without an incomer."""
    res = report_demand(ctx.cfg, ctx.store, ctx.infos(), start, end)
    if res is None or not res["periods"]:
        return None
    res = dict(res)
    res["peaks"] = res["peaks"][:10]
    ja = ctx.cfg.site.language == "ja"
    for p in res["peaks"]:
        p["ran"] = ", ".join(f"{k} {v:.0%}" for k, v in list(p["shares"].items())[:4])
        if not p["shares"]:         # a dash alone reads as missing data: say why there is no breakdown
            p["ran"] = "内訳なし（分岐回路の計測なし）" if ja else "no breakdown (no breaker metered)"
        rest = 1.0 - sum(p["shares"].values())
        if p["shares"] and rest >= 0.05:           # below the breakers: unmetered feeders, losses
            p["ran"] += f"; {'未計測' if ja else 'unmetered'} {rest:.0%}"
    return res


def daily_max_chart(res: dict[str, Any], t: T) -> str:
    """Bars of each local day's highest fully measured demand, contract and target lines."""
    days: dict[str, float] = {}
    for p in res["periods"]:
        if p["kw"] is None or p["coverage"] is None or p["coverage"] < 1.0:
            continue
        d = p["start"][:10]
        days[d] = max(days.get(d, 0.0), p["kw"])
    names = sorted(days)
    with charts._LOCK:
        plt = charts._mpl()
        fig, ax = plt.subplots(figsize=(7.5, 2.8))
        x = np.arange(len(names))
        ax.bar(x, [days[n] for n in names], color=charts.COLORS[0], width=0.8, label=t("demand_daily_max"))
        s = res["summary"]
        if s.get("contract_kw"):
            ax.axhline(s["contract_kw"], color="#d62728", ls="-", lw=1.2, label=t("contract_kw"))
        if s.get("target_kw"):
            ax.axhline(s["target_kw"], color="#ff7f0e", ls="--", lw=1.2, label=t("target_kw"))
        step = max(1, len(names) // 12)
        ax.set_xticks(x[::step], [n[5:] for n in names][::step], fontsize=8)
        ax.set_ylabel("kW")
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, fontsize=8, frameon=False)
        fig.subplots_adjust(bottom=0.28)
        return charts._svg(fig)


def add_demand_sheet(wb, res: dict[str, Any], t: T, header, widths) -> None:
    """A 'デマンド' sheet: monthly maxima with 契約電力, the top peaks with what ran, the
    bills, and every period (numbers as numbers, so Excel can chart and sum them)."""
    from openpyxl.chart import LineChart, Reference

    ws = wb.create_sheet(t("demand_monthly")[:31])
    s = res["summary"]
    ws.append([f"{t('demand')} — {res['channel']}, {res['period_min']} min, {res['timezone']}"])
    ws.append([t("contract_kw"), s.get("contract_kw"), t("target_kw"), s.get("target_kw"),
               t("periods_over_target"), s.get("periods_over_target")])
    if s.get("new_peak"):
        ws.append([s["new_peak"]["text_ja" if t.lang == "ja" else "text_en"]])
    r = ws.max_row + 2
    header(ws, r, [t("month"), t("max_kw"), t("at"), t("contract_kw_12m")])
    for m in res["monthly"]:
        ws.append([m["month"], m["max_kw"], m["at"], m["contract_kw_12m"]])
    r = ws.max_row + 2
    header(ws, r, ["#", t("start"), "kW", t("what_ran")])
    for i, p in enumerate(res["peaks"], 1):
        ws.append([i, p["start"], p["kw"], p.get("ran", "")])
    if res.get("bills"):
        r = ws.max_row + 2
        header(ws, r, [t("month"), t("contract_kw"), t("power_factor_pct"), t("energy_kwh"), t("basic_charge"),
                       t("energy_charge"), t("fuel_adjustment"), t("renewable_levy"), t("consumption_tax"),
                       t("bill_total")])
        for b in res["bills"]:
            ws.append([b["month"], b["contract_kw"], b["power_factor_pct"], round(b["energy_kwh"], 1), b["basic_jpy"],
                       b["energy_jpy"], b["fuel_adjustment_jpy"], b["renewable_levy_jpy"], b["tax_jpy"],
                       b["total_jpy"]])
            for col in range(5, 11):
                ws.cell(row=ws.max_row, column=col).number_format = "#,##0"
    widths(ws, [26, 14, 28, 40, 14, 14, 14, 14, 12, 14])

    wp = wb.create_sheet("demand_periods")
    header(wp, 1, [t("start"), "kW", "coverage"])
    for p in res["periods"]:
        wp.append([p["start"], p["kw"], p["coverage"]])
    if len(res["periods"]) > 1:
        ch = LineChart()
        ch.title, ch.y_axis.title, ch.height, ch.width = t("demand"), "kW", 7, 24
        ch.add_data(Reference(wp, min_col=2, min_row=1, max_row=wp.max_row), titles_from_data=True)
        wp.add_chart(ch, "E2")
    widths(wp, [28, 12, 10])
