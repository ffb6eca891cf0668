"""The fleet report: a league table of the sites and the company's CO2 sheet
across all its plants (Scope 1/2, location- and market-based) with the SBT and
Japan −46 % target paths.  Self-contained HTML like the site report (inline SVG
charts, no CDN) and deterministic: no clock time, so the same fleet gives the
same bytes."""
from __future__ import annotations

from typing import Any

from ..analytics.co2.targets import japan_target_t, sbt_target_t
from . import charts
from .i18n import T
from .report import _ENV, money, num, pct

LABELS = {
    "title": {"ja": "複数拠点 エネルギー・CO2 比較レポート", "en": "Fleet energy and CO2 report"},
    "company": {"ja": "会社", "en": "Company"},
    "league": {"ja": "拠点比較（ムダ率の高い順）", "en": "League of sites (by waste share)"},
    "site": {"ja": "拠点", "en": "Site"},
    "sites_ok": {"ja": "分析できた拠点", "en": "Sites analysed"},
    "intensity": {"ja": "原単位 (kWh/生産単位)", "en": "Intensity (kWh per unit)"},
    "waste_kwh": {"ja": "ムダ (kWh)", "en": "Waste (kWh)"},
    "waste_share": {"ja": "ムダ率", "en": "Waste share"},
    "waste_jpy": {"ja": "ムダ (円)", "en": "Waste (yen)"},
    "plan_jpy": {"ja": "対策効果 (円/年)", "en": "Plan (yen/year)"},
    "top_measure": {"ja": "最優先の対策", "en": "Top measure"},
    "error": {"ja": "エラー", "en": "Error"},
    "sheet": {"ja": "会社全体の CO2 排出量", "en": "Company CO2 across all plants"},
    "scope": {"ja": "区分", "en": "Scope"},
    "targets": {"ja": "削減目標との比較", "en": "Reduction targets"},
    "target": {"ja": "目標", "en": "Target"},
    "path_t": {"ja": "今年度の目標経路 (t)", "en": "Path this FY (t)"},
    "actual_t": {"ja": "実績 (t)", "en": "Actual (t)"},
    "gap_t": {"ja": "差 (t, 正=超過)", "en": "Gap (t, + = above)"},
    "fy2030_t": {"ja": "FY2030 目標 (t)", "en": "FY2030 target (t)"},
    "no_targets": {"ja": "目標の基準値がありません（fleet.toml の [company] base_fiscal_year / base_year_t_co2 / "
                         "fy2013_t_co2）。",
                   "en": "No target base given ([company] base_fiscal_year / base_year_t_co2 / fy2013_t_co2 in "
                         "fleet.toml)."},
    "by_site": {"ja": "拠点別 CO2 (t)", "en": "CO2 by site (t)"},
    "other_kwh": {"ja": "ムダ以外 (kWh)", "en": "Other use (kWh)"},
    "waste_chart": {"ja": "拠点別 電力量とムダ (kWh)", "en": "Energy and waste by site (kWh)"},
    "path_chart": {"ja": "目標経路 (t-CO2) と今年度の実績", "en": "Target path (t-CO2) and this year's actual"},
    "inputs": {"ja": "入力 SHA-256", "en": "Input SHA-256"},
    "version": {"ja": "ソフトウェア版", "en": "Software version"},
    "waste_note": {"ja": "ムダ = 待機電力・ベースライン超過・エア漏れ・コンプレッサ無負荷運転（期間中、主幹と分岐の二重計上なし）。"
                         "原単位は設定の bills_file の生産量（期間に按分）による。",
                   "en": "Waste = standby, baseline gaps, air leaks and compressor unload energy over the period "
                         "(an incomer and its breakers are not counted twice). Intensity uses the production rows "
                         "of the site's bills_file, pro rata for the period."},
    "scope2_loc": {"ja": "Scope 2 ロケーション基準", "en": "Scope 2 location-based"},
    "scope2_mkt": {"ja": "Scope 2 マーケット基準", "en": "Scope 2 market-based"},
    "total_loc": {"ja": "合計（ロケーション基準）", "en": "Total (location-based)"},
    "total_mkt": {"ja": "合計（マーケット基準）", "en": "Total (market-based)"},
    "unverified": {"ja": "※ 未検証の排出係数を使用（係数一覧で確認してください）",
                   "en": "Note: an unverified emission factor was used (check the factor list)"},
}


class FleetT(T):
    def __call__(self, key: str) -> str:
        if key in LABELS:
            return LABELS[key][self.lang]          # T already narrowed lang to ja/en
        return super().__call__(key)


def league(sites: list[dict]) -> list[dict]:
    """Sites by waste share (highest first); failed sites last."""
    return sorted(sites, key=lambda s: (s["error"] is not None, -(s.get("waste_share") or 0.0), s["id"]))


def target_path(targets: list[dict], fy: int) -> tuple[list[str], dict[str, list[float]]]:
    """Fiscal years and each target's path value per year (from the targets code)."""
    if not targets:
        return [], {}
    first = min(t["base_fiscal_year"] for t in targets)
    years = list(range(max(first, fy - 12), 2031))
    out: dict[str, list[float]] = {}
    for t in targets:
        if t["name"] == "sbt":
            f = lambda y, t=t: sbt_target_t(t["base_t_co2"], t["base_fiscal_year"], y)
        else:
            f = lambda y, t=t: japan_target_t(t["base_t_co2"], y)
        out[t["label"]] = [f(y) if y >= t["base_fiscal_year"] else float("nan") for y in years]
    return [f"FY{y}" for y in years], out


def build_fleet_report(data: dict[str, Any], sheet, lang: str = "ja") -> str:
    t = FleetT(lang)
    sites = league(data["sites"])
    ok = [s for s in sites if not s["error"]]
    out_charts: dict[str, str] = {}
    if ok:
        out_charts["waste"] = charts.stacked_bars(
            [s["id"] for s in ok],
            {t("waste_kwh"): [s["waste_kwh"] or 0.0 for s in ok],
             t("other_kwh"): [max(0.0, (s["energy_kwh"] or 0.0) - (s["waste_kwh"] or 0.0)) for s in ok]}, "kWh")
    co2 = data.get("co2_sheet")
    if co2:
        out_charts["co2_monthly"] = charts.stacked_bars(
            [t.month(m) for m in co2["months"]],
            {t.energy(r["energy"]): list(r["t_co2_by_month"].values()) for r in co2["rows"]}, "t-CO2")
        by_site = co2.get("by_site") or {}
        out_charts["by_site"] = charts.composition(list(by_site), list(by_site.values()))
        years, paths = target_path(co2.get("targets") or [], co2["fiscal_year"])
        if paths:
            series = dict(paths)
            series[t("actual_t")] = [co2["total_t_co2"] if y == f"FY{co2['fiscal_year']}" else 0.0 for y in years]
            out_charts["path"] = _path_chart(years, series)
    return _ENV.get_template("fleet.html.j2").render(
        t=t, data=data, sites=sites, co2=co2, charts=out_charts, num=num, money=money, pct=pct)


def _path_chart(years: list[str], series: dict[str, list[float]]) -> str:
    """Target paths as lines and this year's actual as a bar (matplotlib, inline SVG)."""
    import numpy as np
    with charts._LOCK:
        plt = charts._mpl()
        fig, ax = plt.subplots(figsize=(7.5, 3.0))
        x = np.arange(len(years))
        names = list(series)
        for i, name in enumerate(names[:-1]):
            ax.plot(x, series[name], marker="o", ms=3, label=name, color=charts.COLORS[i % len(charts.COLORS)])
        ax.bar(x, series[names[-1]], width=0.6, label=names[-1], color="#888888")
        ax.set_xticks(x, years, rotation=45, fontsize=7)
        ax.set_ylabel("t-CO2")
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper right", fontsize=8, frameon=False)
        return charts._svg(fig)
