"""The fleet workbook: the league of sites first, then the company's CO2 sheet
across all plants exactly as `mieruka co2 --format xlsx` writes a sheet
(analytics.co2.xlsx: months × energy, Scope 1/2 location- and market-based,
targets, factors), and the CO2 per site."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Font, PatternFill

from ..analytics.co2.xlsx import write_xlsx
from ..xlsxcells import text_only, workbook_bytes
from .fleet_report import league

BOLD = Font(bold=True)
FAILED = PatternFill("solid", fgColor="FDECEA")
LEAGUE = "拠点比較 league"

COLUMNS = [  # header, key or function, number format
    ("拠点 site", lambda s: s["id"], None),
    ("名称 name", lambda s: s.get("name"), None),
    ("開始 start", lambda s: (s.get("period") or {}).get("start"), None),
    ("終了 end", lambda s: (s.get("period") or {}).get("end"), None),
    ("電力量 kWh", lambda s: s["energy_kwh"], "#,##0"),
    ("生産量 production", lambda s: (s.get("production") or {}).get("amount"), "#,##0.0"),
    ("単位 unit", lambda s: (s.get("production") or {}).get("unit"), None),
    ("原単位 kWh/unit", lambda s: s.get("energy_kwh_per_unit"), "#,##0.000"),
    ("CO2 t", lambda s: s["co2_t"], "#,##0.000"),
    ("Scope 1 t", lambda s: s["scope1_t"], "#,##0.000"),
    ("Scope 2 t", lambda s: s["scope2_t"], "#,##0.000"),
    ("Scope 2 location t", lambda s: s.get("scope2_location_t"), "#,##0.000"),
    ("Scope 2 market t", lambda s: s.get("scope2_market_t"), "#,##0.000"),
    ("原単位 t-CO2/unit", lambda s: s.get("co2_t_per_unit"), "0.000000"),
    ("ムダ waste kWh", lambda s: s["waste_kwh"], "#,##0"),
    ("ムダ率 waste share", lambda s: s.get("waste_share"), "0.0%"),
    ("ムダ waste 円", lambda s: s["waste_jpy"], "#,##0"),
    ("ムダ waste t-CO2", lambda s: s["waste_co2_t"], "#,##0.000"),
    ("対策効果 plan 円/年", lambda s: s["plan_jpy_per_year"], "#,##0"),
    ("最優先の対策 top measure", lambda s: (s.get("top_measure") or {}).get("title_ja"), None),
    ("top measure", lambda s: (s.get("top_measure") or {}).get("title_en"), None),
    ("対策 円/年", lambda s: (s.get("top_measure") or {}).get("cost_jpy_per_year"), "#,##0"),
    ("エラー error", lambda s: s.get("error"), None),
]


def write_fleet_xlsx(data: dict[str, Any], sheet, path: Path) -> None:
    """League first; the company CO2 sheet (when any site gave energy) after it."""
    if sheet is not None:
        write_xlsx(sheet, path)
        wb = load_workbook(path)
        ws = wb.create_sheet(LEAGUE, 0)
    else:
        wb = Workbook()
        ws = wb.active
        ws.title = LEAGUE
    ws["A1"] = f"拠点比較 (ムダ率の高い順) league of sites by waste share — {data['company']['name']}"
    ws["A1"].font = Font(bold=True, size=14)
    head = 3
    for j, (h, _, _) in enumerate(COLUMNS, 1):
        ws.cell(head, j, h).font = BOLD
    sites = league(data["sites"])
    for i, s in enumerate(sites, head + 1):
        for j, (_, get, fmt) in enumerate(COLUMNS, 1):
            c = ws.cell(i, j, None if s["error"] and j not in (1, len(COLUMNS)) else get(s))
            if fmt:
                c.number_format = fmt
            if s["error"]:
                c.fill = FAILED
    r = head + len(sites) + 1
    tot = data["totals"]
    ws.cell(r, 1, "合計 total").font = BOLD
    for key, col in (("energy_kwh", 5), ("co2_t", 9), ("scope1_t", 10), ("scope2_t", 11), ("waste_kwh", 15),
                     ("waste_share", 16), ("waste_jpy", 17), ("waste_co2_t", 18), ("plan_jpy_per_year", 19)):
        c = ws.cell(r, col, tot[key])
        c.number_format = COLUMNS[col - 1][2]
        c.font = BOLD
    ws.freeze_panes = ws.cell(head + 1, 2)
    widths = {"名称 name": 22, "開始 start": 26, "終了 end": 26, "最優先の対策 top measure": 30, "top measure": 40,
              "エラー error": 60}
    for j, (h, _, _) in enumerate(COLUMNS, 1):
        w = widths.get(h, 14)
        ws.column_dimensions[ws.cell(head, j).column_letter].width = w
    ok = [s for s in sites if not s["error"]]
    if ok:
        chart = BarChart()
        chart.type, chart.title = "bar", "ムダ率 waste share"
        chart.add_data(Reference(ws, min_col=16, min_row=head, max_row=head + len(ok)), titles_from_data=True)
        chart.set_categories(Reference(ws, min_col=1, min_row=head + 1, max_row=head + len(ok)))
        chart.y_axis.numFmt = "0%"
        chart.width, chart.height = 18, max(6, 0.6 * len(ok) + 3)
        ws.add_chart(chart, f"A{r + 3}")
    text_only(wb)      # site names and findings from manifests never become formulas
    Path(path).write_bytes(workbook_bytes(wb))      # same league, same bytes
