"""The sheet as an Excel workbook (openpyxl): months 4月..3月 × energy with
totals, shares and a native stacked bar chart; amounts, cost, Scope 1/2,
targets and the factors used on their own sheets.  Cells hold values (not
formulas) so that every reader sees the numbers without recalculating; a figure
from an unverified factor is filled yellow and its factor row says UNVERIFIED.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Font, PatternFill

from ...energy import KINDS
from ...xlsxcells import text_only, workbook_bytes
from .report import SCOPE2_LABELS, to_json
from .sheet import MONTH_LABELS, Sheet

BOLD = Font(bold=True)
WARN = PatternFill("solid", fgColor="FFF2CC")


def _grid(ws, s: Sheet, first_row: int, arr: np.ndarray, unit_label: str, shares: bool, uv: set[str],
          units: list[str] | None = None) -> int:
    """Write one energy × month block; returns the row after it."""
    ws.cell(first_row, 1, "エネルギー").font = BOLD
    for j, m in enumerate(MONTH_LABELS):
        ws.cell(first_row, 2 + j, m).font = BOLD
    ws.cell(first_row, 14, "合計").font = BOLD
    ws.cell(first_row, 15, "単位").font = BOLD
    if shares:
        ws.cell(first_row, 16, "構成比").font = BOLD
    r = first_row
    for i, e in enumerate(s.energies):
        r += 1
        ws.cell(r, 1, KINDS[e].label_ja + (" ※未検証係数" if e in uv else ""))
        ws.cell(r, 15, units[i] if units else unit_label)
        for j in range(12):
            v = arr[i, j]
            c = ws.cell(r, 2 + j, None if np.isnan(v) else float(v))
            c.number_format = "#,##0.00"
            if e in uv:
                c.fill = WARN
        ws.cell(r, 14, float(np.nansum(arr[i]))).number_format = "#,##0.00"
        if shares:
            ws.cell(r, 16, s.shares[e]).number_format = "0.0%"
    for col in "BCDEFGHIJKLMN":
        ws.column_dimensions[col].width = 10
    if units is None:
        r += 1
        ws.cell(r, 1, "合計").font = BOLD
        ws.cell(r, 15, unit_label)
        for j in range(12):
            ws.cell(r, 2 + j, float(np.nansum(arr[:, j]))).number_format = "#,##0.00"
        ws.cell(r, 14, float(np.nansum(arr))).number_format = "#,##0.00"
        if shares:
            ws.cell(r, 16, 1.0).number_format = "0.0%"
    return r + 1


def write_xlsx(s: Sheet, path: Path) -> None:
    d = to_json(s)
    uv = {f["energy"] for f in s.unverified}
    wb = Workbook()
    ws = wb.active
    ws.title = f"CO2 FY{s.fiscal_year}"
    ws["A1"] = f"CO2排出量 FY{s.fiscal_year} ({s.months[0]}〜{s.months[-1]}) [t-CO2]"
    ws["A1"].font = Font(bold=True, size=14)
    ws["A2"] = f"係数セット factor set: {s.factor_set['id']} — {s.factor_set['title']}"
    ws["A3"] = f"Scope 2 in totals: {d['scope2_method']}-based" + \
        ("   ※ 未検証 (UNVERIFIED) factors used: see 係数" if uv else "")
    end = _grid(ws, s, 5, s.t_co2, "t-CO2", True, uv)
    ws.column_dimensions["A"].width = 22
    n = len(s.energies)
    chart = BarChart()
    chart.type, chart.grouping, chart.overlap = "col", "stacked", 100
    chart.title = f"CO2排出量 FY{s.fiscal_year} (t-CO2)"
    chart.y_axis.title = "t-CO2"
    # one series per energy row (name in A, months in B..M), months as categories
    chart.add_data(Reference(ws, min_col=1, max_col=13, min_row=6, max_row=5 + n), from_rows=True,
                   titles_from_data=True)
    chart.set_categories(Reference(ws, min_col=2, max_col=13, min_row=5))
    chart.width, chart.height = 24, 10
    ws.add_chart(chart, f"A{end + 2}")

    am = wb.create_sheet("使用量 amounts")
    am["A1"] = f"使用量 FY{s.fiscal_year}"
    _grid(am, s, 3, s.amount, "", False, uv, units=s.units)
    am.column_dimensions["A"].width = 22
    co = wb.create_sheet("費用 cost")
    co["A1"] = f"費用 (円) FY{s.fiscal_year}; empty: no price known for that month"
    cost = np.where(s.cost_known & s.present, s.cost_jpy, np.nan)
    _grid(co, s, 3, cost, "円", False, uv)
    co.column_dimensions["A"].width = 22

    sc = wb.create_sheet("Scope・目標")
    rows = [("Scope 1", d["scope1_t_co2"]), (SCOPE2_LABELS["location"], d["scope2_location_based_t_co2"]),
            (SCOPE2_LABELS["market"], d["scope2_market_based_t_co2"]),
            (f"合計 total (Scope 2 {d['scope2_method']}-based)", d["total_t_co2"]),
            ("合計 location-based", d["total_location_based_t_co2"]),
            ("合計 market-based", d["total_market_based_t_co2"]), ("費用 cost (円, known part)", d["cost_jpy_known_part"])]
    if d["intensity"]:
        rows.append((f"原単位 t-CO2 per {d['intensity']['production_unit']}", d["intensity"]["t_co2_per_unit"]))
    sc.append(["項目", "t-CO2"])
    for r in rows:
        sc.append(list(r))
    sc.append([])
    sc.append(["目標 target", "base FY", "base t", "path t (this FY)", "actual t", "gap t", "FY2030 t"])
    for t in s.targets:
        sc.append([t["label"], t["base_fiscal_year"], t["base_t_co2"], t["target_t_co2"], t["actual_t_co2"],
                   t["gap_t_co2"], t["target_fy2030_t_co2"]])
    sc.column_dimensions["A"].width = 44

    fa = wb.create_sheet("係数 factors")
    fa.append(["energy", "basis", "supplier", "menu", "results FY", "value", "unit", "set", "verified", "source"])
    for f in s.factors:
        fa.append([f["energy"], f["basis"], f.get("supplier"), f.get("menu"), f.get("results_fiscal_year"),
                   f["value"], f["unit"], f["set"], "yes" if f["verified"] else "UNVERIFIED 未検証", f["source"]])
        if not f["verified"]:
            for c in fa[fa.max_row]:
                c.fill = WARN
    for row in (sc[1], sc[9] if s.targets else (), fa[1]):
        for c in row:
            c.font = BOLD
    text_only(wb)      # names and sources from input files never become formulas
    Path(path).write_bytes(workbook_bytes(wb))      # same sheet, same bytes
