"""The HTML report an energy manager reads (and its PDF through headless Chromium).

Self-contained: charts are inline SVG (see `charts.py`), styles inline, no
CDN.  Deterministic for the same data: no clock time in it, so a replayed
report is byte-identical like its JSON.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment, FileSystemLoader, select_autoescape

from ..calendar import fiscal_year
from ..errors import MierukaError
from ..service.analysis import plan_measures
from ..service.co2sheet import co2_sheet
from ..service.replay import provenance
from . import charts
from .demand_section import daily_max_chart, demand_section
from .i18n import T
from .loadprofile import day_type_profiles, production_slots, site_power_channels

TEMPLATES = Path(__file__).parent / "templates"
_ENV = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))


def num(v: Any, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{v:,.{digits}f}"


def nodata(v: Any, digits: int = 1) -> str:
    """A month's figure, or "—" for a month without data (never 0.000)."""
    return "—" if v is None else num(v, digits)


def money(v: Any) -> str:
    return num(v, 0)


def pct(v: Any) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def build_report(ctx, view, fy: int | None = None, prov: dict | None = None, input_name: str | None = None) -> str:
    """The report over an analysis view; the CO2 sheet of fiscal year `fy`
    (default: the fiscal year of the view's last day)."""
    t = T(ctx.cfg.site.language)
    if fy is None:
        fy = fiscal_year((view.end - dt.timedelta(seconds=1)).astimezone(ctx.tz))
    prov = prov or provenance(ctx.cfg, None)
    co2 = _co2_block(ctx, co2_sheet(ctx, fy), t)
    plan = plan_measures(view.plan)
    out_charts: dict[str, str] = {}
    if co2:
        out_charts["co2_monthly"] = charts.stacked_bars([t.month(m).split(" ")[0] for m in co2["months"]],   # the FY is in the title
                                                        {r["label"]: [v or 0.0 for v in r["values"]] for r in co2["rows"]},
                                                        "t-CO2")
        out_charts["co2_share"] = charts.composition([r["label"] for r in co2["rows"]], [r["total"] for r in co2["rows"]])
    infos = ctx.infos()
    site_chans = site_power_channels({k: v for k, v in infos.items()
                                      if not view_channels(view) or k in view_channels(view)})
    chan = site_chans[0] if len(site_chans) == 1 else _sum_caption(t, site_chans)
    hours = np.arange(96) / 4.0
    nonprod = ~production_slots(ctx)
    if site_chans:
        prof = day_type_profiles(ctx, site_chans, view.start, view.end)
        if prof:
            out_charts["profile"] = charts.profiles(hours, {t(k): v for k, v in prof.items()}, t("power_kw"), t("hour"),
                                                    shade=nonprod, shade_label=t("non_production"))
    finding_charts = []
    for f in view.findings:
        if f["kind"] not in ("standby", "air_leak") or f["channel"] not in infos:
            continue
        prof = day_type_profiles(ctx, f["channel"], view.start, view.end)
        if not prof:
            continue
        m = f.get("metrics", {})
        if f["kind"] == "standby":
            level, ylabel, level_label = m.get("mean_kw"), t("power_kw"), t("standby_level")
        else:
            level = m.get("leak_flow_m3min")
            quantity = infos[f["channel"]].quantity
            ylabel = t("flow_m3min") if quantity.startswith("air_flow") else t("power_kw")
            level_label = t.kind("air_leak")
            if not quantity.startswith("air_flow"):
                level = m.get("leak_power_kw", None)
        svg = charts.profiles(hours, {t(k): v for k, v in prof.items()}, ylabel, t("hour"),
                              level=level, level_label=level_label, shade=nonprod, shade_label=t("non_production"))
        finding_charts.append({"kind": f["kind"], "title": f"{t.kind(f['kind'])}: {f['channel']}", "svg": svg,
                               "explanation": f.get("explanation", "")})
        if len(finding_charts) >= 12:
            break
    demand = demand_section(ctx, view.start, view.end)
    if demand:
        out_charts["demand"] = daily_max_chart(demand, t)
    summary = {"saving_jpy_year": _sum(m.cost_jpy_per_year for m in plan),
               "saving_kwh_year": _sum(m.energy_kwh_per_year for m in plan),
               "saving_co2_t_year": _sum(m.co2_t_per_year for m in plan)}
    tz = ctx.tz
    period_text = f"{view.start.astimezone(tz).isoformat()} – {view.end.astimezone(tz).isoformat()}"
    cal = prov.get("calendar", {})
    calendar_text = json.dumps(cal, ensure_ascii=False, sort_keys=True)
    html = _ENV.get_template("report.html.j2").render(
        t=t, site=ctx.cfg.site, period_text=period_text, summary=summary, co2=co2, charts=out_charts,
        profile_channel=chan, findings=view.findings, finding_charts=finding_charts, plan=plan, prov=prov,
        input_name=input_name, calendar_text=calendar_text, num=num, money=money, pct=pct, nodata=nodata,
        folded=view.summary.get("folded"), plan_total=view.summary.get("plan_total"),
        days_analysed=view.summary.get("days_analysed"), demand=demand)
    return html


def view_channels(view) -> set[str]:
    return set(getattr(view, "channels", None) or [])


def _sum_caption(t: T, channels: list[str], shown: int = 6) -> str:
    """Under the site profile when no incomer is metered: the breakers it sums."""
    names = ", ".join(channels[:shown]) + (f" … (+{len(channels) - shown})" if len(channels) > shown else "")
    return f"{t('sum_of_breakers')}: {names}"


def _sum(values) -> float | None:
    vals = [v for v in values if v is not None]
    return float(sum(vals)) if vals else None


def _co2_block(ctx, sheet: dict, t: T) -> dict | None:
    """The CO2 sheet reshaped for the template: one row per energy; a month
    without data is None (shown as "—", never as 0.000); the coverage (days and
    months with data) for the headline, which covers those days only."""
    s = sheet.get("sheet") or {}
    loc = s.get("location_t_co2") or {}
    if not loc:
        return None
    months = sheet["months"]
    present = s.get("present") or {e: [True] * len(months) for e in loc}

    def masked(vals, energy):
        return [v if present[energy][i] else None for i, v in enumerate(vals)]

    def month_totals(per: dict) -> list[float | None]:
        return [sum(per[e][i] for e in per if present[e][i]) if any(present[e][i] for e in per) else None
                for i in range(len(months))]

    total = float(sum(sum(masked(vals, e)[i] or 0 for i in range(len(months))) for e, vals in loc.items()))
    rows = []
    for energy, vals in loc.items():
        tot = float(sum(v for v in masked(vals, energy) if v))
        rows.append({"label": t.energy(energy), "values": masked(vals, energy), "total": tot,
                     "share": tot / total if total else None})
    total_loc = month_totals(loc)
    mkt = s.get("market_t_co2") or {}
    total_mkt = month_totals(mkt) if mkt else None
    cov = s.get("coverage") or {}
    return {"fiscal_year": sheet["fiscal_year"], "months": months, "rows": rows, "total_location": total_loc,
            "total_location_t_co2": total, "total_market": total_mkt,
            "total_market_t_co2": float(sum(v for v in total_mkt if v)) if total_mkt else None,
            "coverage": cov, "coverage_text": _coverage_text(cov, t),
            "factor_note": s.get("factor_note", ""), "unverified": bool(s.get("unverified"))}


def _coverage_text(cov: dict, t: T) -> str:
    """"covers 2026-04-06 – 2026-04-19 only (14 days; 1 of 12 months with data)", in the report's language."""
    if not cov or not cov.get("first_day"):
        return ""
    if cov.get("whole_year"):
        return t("covers_whole_year")
    return t("covers_only").format(first=cov["first_day"], last=cov["last_day"], days=cov["days"],
                                   n=cov["months_with_data"], months=cov["months"])


# ---------------------------------------------------------------------- PDF
def html_to_pdf(html_path: Path, pdf_path: Path, timeout_s: float = 120) -> None:
    """Print a report to PDF with headless Chromium (Debian's `chromium`)."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if exe is None:
        raise MierukaError("PDF needs Chromium (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="mieruka-chromium-") as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", "--no-pdf-header-footer", f"--print-to-pdf={pdf_path}",
               Path(html_path).resolve().as_uri()]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    if r.returncode != 0 or not Path(pdf_path).is_file() or Path(pdf_path).stat().st_size == 0:
        raise MierukaError(f"{pdf_path}: Chromium could not print the report (exit {r.returncode})")
