"""Excel export (openpyxl): the monthly CO2 sheet with a native stacked chart,
the findings, the savings plan and the provenance; opens in Excel and LibreOffice.
Cells hold values, never formulas (totals are computed here), so every reader
sees the numbers and no text can turn into a live formula (mieruka.xlsxcells)."""
from __future__ import annotations

import datetime as dt
import json

from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from ..calendar import fiscal_year
from ..xlsxcells import text_only, workbook_bytes
from ..service.analysis import plan_measures
from ..service.co2sheet import co2_sheet
from ..service.replay import provenance
from .demand_section import add_demand_sheet, demand_section
from .i18n import T

HEAD = Font(bold=True)
FILL = PatternFill("solid", fgColor="EEF1F5")


def _header(ws, row: int, values: list) -> None:
    for j, v in enumerate(values, start=1):
        c = ws.cell(row=row, column=j, value=v)
        c.font, c.fill = HEAD, FILL


def _widths(ws, widths: list[int]) -> None:
    for j, w in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(j)].width = w


def build_workbook(ctx, view, fy: int | None = None, prov: dict | None = None) -> bytes:
    t = T(ctx.cfg.site.language)
    if fy is None:
        fy = fiscal_year((view.end - dt.timedelta(seconds=1)).astimezone(ctx.tz))
    prov = prov or provenance(ctx.cfg, None)
    wb = Workbook()

    # -- monthly CO2 sheet
    ws = wb.active
    ws.title = t("co2_sheet_name")
    sheet = co2_sheet(ctx, fy)
    s = sheet["sheet"]
    ws.append([f"{ctx.cfg.site.name} FY{fy} {t('co2_sheet')} (t-CO2)"])
    ws["A1"].font = Font(bold=True, size=13)
    months = sheet["months"]
    _header(ws, 3, [t("energy")] + [t.month(m) for m in months] + [t("total"), t("share")])
    loc = s.get("location_t_co2") or {}
    present = s.get("present") or {e: [True] * 12 for e in loc}
    total = sum(sum(v) for v in loc.values()) or 0.0
    r = 4
    for energy, vals in loc.items():
        ws.cell(row=r, column=1, value=t.energy(energy))
        for j, v in enumerate(vals, start=2):    # a month without data stays empty, not 0
            ws.cell(row=r, column=j, value=round(v, 6) if present[energy][j - 2] else None).number_format = "0.000"
        ws.cell(row=r, column=14, value=round(sum(vals), 6)).number_format = "0.000"
        ws.cell(row=r, column=15, value=(sum(vals) / total) if total else 0).number_format = "0.0%"
        r += 1
    last = r - 1
    if loc:
        ws.cell(row=r, column=1, value=f"{t('total')} ({t('location_based')})").font = HEAD
        for j in range(12):
            has = any(present[e][j] for e in loc)
            ws.cell(row=r, column=j + 2,
                    value=round(sum(v[j] for v in loc.values()), 6) if has else None).number_format = "0.000"
        ws.cell(row=r, column=14, value=round(total, 6)).number_format = "0.000"
        mkt = s.get("market_t_co2") or {}
        if mkt:
            ws.cell(row=r + 1, column=1, value=f"{t('total')} ({t('market_based')})").font = HEAD
            for j in range(12):
                has = any(present[e][j] for e in mkt if e in present)
                ws.cell(row=r + 1, column=j + 2,
                        value=round(sum(v[j] for v in mkt.values()), 6) if has else None).number_format = "0.000"
            ws.cell(row=r + 1, column=14, value=round(sum(sum(v) for v in mkt.values()), 6)).number_format = "0.000"
        amounts = s.get("amount") or {}
        units = s.get("units") or {}
        ar = r + 3
        _header(ws, ar, [t("energy")] + [t.month(m) for m in months] + [t("total")])
        for k, (energy, vals) in enumerate(amounts.items(), start=1):
            ws.cell(row=ar + k, column=1, value=f"{t.energy(energy)} ({units.get(energy, '')})")
            for j, v in enumerate(vals, start=2):
                ws.cell(row=ar + k, column=j, value=round(v, 3)).number_format = "#,##0"
            ws.cell(row=ar + k, column=14, value=round(sum(vals), 3)).number_format = "#,##0"
        ch = BarChart()
        ch.type, ch.grouping, ch.overlap = "col", "stacked", 100
        ch.title, ch.y_axis.title = t("co2_monthly"), "t-CO2"
        ch.add_data(Reference(ws, min_col=1, max_col=13, min_row=4, max_row=last), from_rows=True, titles_from_data=True)
        ch.set_categories(Reference(ws, min_col=2, max_col=13, min_row=3))
        ch.width, ch.height = 22, 9
        ws.add_chart(ch, f"A{ar + len(amounts) + 3}")
        note_row = ar + len(amounts) + 23
        ws.cell(row=note_row, column=1, value=s.get("factor_note", ""))
        if s.get("unverified"):
            ws.cell(row=note_row + 1, column=1, value=t("unverified")).font = Font(bold=True, color="B35900")
    else:
        ws.cell(row=4, column=1, value=t("no_data"))
    _widths(ws, [22] + [10] * 12 + [12, 9])

    # -- findings
    wf = wb.create_sheet(t("findings_sheet"))
    _header(wf, 1, [t("kind"), t("channel"), t("start"), t("end"), t("energy_kwh"), t("cost_jpy"), t("co2_t"),
                    t("explanation"), t("metrics")])
    for i, f in enumerate(view.findings, start=2):
        wf.append([t.kind(f["kind"]), f["channel"], f["start"], f["end"], f.get("energy_kwh"), f.get("cost_jpy"),
                   f.get("co2_t"), f.get("explanation", ""),
                   json.dumps(f.get("metrics", {}), ensure_ascii=False, sort_keys=True)])
        wf.cell(row=i, column=5).number_format = "#,##0.0"
        wf.cell(row=i, column=6).number_format = "#,##0"
        wf.cell(row=i, column=7).number_format = "0.0000"
    _widths(wf, [18, 18, 26, 26, 12, 12, 10, 60, 60])
    wf.freeze_panes = "A2"

    # -- savings plan
    wp = wb.create_sheet(t("plan_sheet"))
    _header(wp, 1, [t("measure"), t("saving_kwh_year"), t("saving_jpy_year"), t("saving_co2_t_year"),
                    t("co2_share_pct"), t("investment_jpy"), t("payback_years")])
    for m in plan_measures(view.plan):
        wp.append([m.title, m.energy_kwh_per_year, m.cost_jpy_per_year, m.co2_t_per_year,
                   m.reduction_contribution_pct, m.investment_jpy, m.payback_years])
    _widths(wp, [50, 16, 16, 16, 14, 14, 12])

    # -- demand: monthly maxima, top peaks, bills
    demand = demand_section(ctx, view.start, view.end)
    if demand:
        add_demand_sheet(wb, demand, t, _header, _widths)

    # -- provenance
    wv = wb.create_sheet(t("provenance"))
    rows = [(t("site"), ctx.cfg.site.name),
            (t("period"), f"{view.start.astimezone(ctx.tz).isoformat()} – {view.end.astimezone(ctx.tz).isoformat()}"),
            (t("input_sha256"), (prov.get("input") or {}).get("sha256", "")),
            *_imported_rows(prov, t),
            (t("factor_set"), json.dumps(prov.get("factor_set"), ensure_ascii=False)),
            (t("software"), f"mieruka {prov['software']['version']}"),
            (t("calendar"), json.dumps(prov.get("calendar"), ensure_ascii=False, sort_keys=True))]
    for k, v in rows:
        wv.append([k, v])
        wv.cell(row=wv.max_row, column=1).font = HEAD
        wv.cell(row=wv.max_row, column=2).alignment = Alignment(wrap_text=True)
    _widths(wv, [24, 100])

    text_only(wb)      # data text (ids, names, explanations) never becomes a formula
    return workbook_bytes(wb, view.end)     # same content, same bytes (replay)


def _imported_rows(prov: dict, t) -> list[tuple[str, str]]:
    """The logger exports and mapping a recording was imported from, and the bills file (sha256 and name)."""
    src = (prov.get("input") or {}).get("imported_from")
    rows = []
    if src:
        rows = [(t("imported_from"), f"{f['sha256']} ({f['file']})") for f in src["files"]]
        rows.append((t("import_mapping"), f"{src['mapping']['sha256']} ({src['mapping']['file']})"))
    if prov.get("bills"):
        rows.append((t("bills_sha256"), f"{prov['bills']['sha256']} ({prov['bills']['file']})"))
    return rows
