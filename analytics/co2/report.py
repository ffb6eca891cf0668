"""The sheet as JSON, CSV (UTF-8 with BOM, opens in Excel) and a terminal table.

Every output names the factor set and lists each factor used; a factor marked
unverified is flagged wherever a figure uses it (`verified: false` in JSON and
CSV, "UNVERIFIED" and a ※ mark in the table).
"""
from __future__ import annotations

import csv
import io

import numpy as np

from ...energy import KINDS
from ...ids import neutral_text
from .sheet import MONTH_LABELS, Sheet

SCOPE2_LABELS = {"location": "Scope 2 location-based (基礎排出係数)",
                 "market": "Scope 2 market-based (調整後排出係数)"}


def _unverified_energies(s: Sheet) -> set[str]:
    return {f["energy"] for f in s.unverified}


def _scope_month(s: Sheet, arr: np.ndarray, scope: int) -> np.ndarray:
    mask = np.array([s.scope(e) == scope for e in s.energies], bool)
    return arr[mask].sum(axis=0) if mask.any() else np.zeros(12)


def to_json(s: Sheet) -> dict:
    uv = _unverified_energies(s)
    s2_loc, s2_mkt = float(_scope_month(s, s.t_co2_location, 2).sum()), float(_scope_month(s, s.t_co2_market, 2).sum())
    rows = []
    for i, e in enumerate(s.energies):
        known = s.cost_known[i][s.present[i]].all()
        rows.append({
            "energy": e, "label_ja": KINDS[e].label_ja, "scope": s.scope(e), "unit": s.units[i],
            "amount_by_month": dict(zip(s.months, map(_num, s.amount[i]))),
            "t_co2_by_month": dict(zip(s.months, map(float, s.t_co2[i]))),
            "t_co2": float(s.t_co2[i].sum()), "share": s.shares[e],
            "t_co2_location": float(s.t_co2_location[i].sum()), "t_co2_market": float(s.t_co2_market[i].sum()),
            "heat_route_t_co2": s.heat_route_t.get(e),
            "cost_jpy": float(s.cost_jpy[i].sum()) if known else None,
            "verified": e not in uv,
        })
    return {
        "fiscal_year": s.fiscal_year,
        "months": s.months, "month_labels": MONTH_LABELS,
        "factor_set": s.factor_set,
        "total_t_co2": s.total_t, "scope1_t_co2": s.scope1_t, "scope2_t_co2": s.scope2_t,
        "scope2_method": s.factor_set.get("scope2_method", "market"),
        "scope2_location_based_t_co2": s2_loc, "scope2_market_based_t_co2": s2_mkt,
        "total_location_based_t_co2": s.scope1_t + s2_loc, "total_market_based_t_co2": s.scope1_t + s2_mkt,
        "by_energy": s.by_energy, "by_month": s.by_month, "shares": s.shares,
        "rows": rows,
        "cost_jpy": float(s.cost_jpy.sum()) if all(r["cost_jpy"] is not None for r in rows) else None,
        "cost_jpy_known_part": float(s.cost_jpy.sum()),
        "intensity": s.intensity(),
        "factors": s.factors, "unverified_factors": s.unverified, "all_factors_verified": not s.unverified,
        "by_fiscal_year": {str(k): v for k, v in s.by_fiscal_year.items()},
        "by_site": s.by_site,
        "targets": s.targets,
    }


def _num(v: float) -> float | None:
    return None if np.isnan(v) else float(v)


def to_csv_text(s: Sheet) -> str:
    """A months × energy table per kind (t_co2, amount, cost_jpy), then scope and factor rows."""
    uv = _unverified_energies(s)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow([f"# CO2 sheet FY{s.fiscal_year}", f"factor set: {s.factor_set['id']}", _text(s.factor_set["title"]),
                f"Scope 2 in total: {s.factor_set.get('scope2_method', 'market')}-based"])
    w.writerow(["kind", "energy", "名称", "scope", "unit", *s.months, "total", "share", "verified"])
    for i, e in enumerate(s.energies):
        w.writerow(["t_co2", e, KINDS[e].label_ja, s.scope(e), "t-CO2", *_r(s.t_co2[i]), _f(s.t_co2[i].sum()),
                    _f(s.shares[e]), str(e not in uv).lower()])
    w.writerow(["t_co2", "total", "合計", "", "t-CO2", *_r(s.t_co2.sum(axis=0)), _f(s.total_t), "1", ""])
    w.writerow(["t_co2", "scope1", "Scope 1", 1, "t-CO2", *_r(_scope_month(s, s.t_co2, 1)), _f(s.scope1_t), "", ""])
    for method, arr in (("location", s.t_co2_location), ("market", s.t_co2_market)):
        m = _scope_month(s, arr, 2)
        w.writerow(["t_co2", f"scope2_{method}", SCOPE2_LABELS[method], 2, "t-CO2", *_r(m), _f(m.sum()), "", ""])
    for i, e in enumerate(s.energies):
        w.writerow(["amount", e, KINDS[e].label_ja, s.scope(e), s.units[i], *_r(s.amount[i]), _f(np.nansum(s.amount[i])),
                    "", ""])
    for i, e in enumerate(s.energies):
        cost = [(_f(c) if k and p else "") for c, k, p in zip(s.cost_jpy[i], s.cost_known[i], s.present[i])]
        w.writerow(["cost_jpy", e, KINDS[e].label_ja, s.scope(e), "JPY", *cost, _f(s.cost_jpy[i].sum()), "", ""])
    w.writerow([])
    w.writerow(["factor", "energy", "basis", "supplier", "menu", "results_fiscal_year", "value", "unit", "set",
                "verified", "source"])
    for f in s.factors:
        # supplier, menu, source come from input files: text cells, neutralised (OWASP CSV injection)
        w.writerow(["factor", f["energy"], f["basis"], _text(f.get("supplier")), _text(f.get("menu")),
                    f.get("results_fiscal_year", ""), f["value"], f["unit"], _text(f["set"]), str(f["verified"]).lower(),
                    _text(f["source"])])
    for t in s.targets:
        w.writerow(["target", _text(t["name"]), _text(t["label"]), t["base_fiscal_year"], t["base_t_co2"], t["target_t_co2"],
                    t["actual_t_co2"], t["gap_t_co2"]])
    return "\ufeff" + out.getvalue()       # BOM: Excel then reads UTF-8 (Japanese) correctly


def _text(v) -> str:
    return "" if v is None else neutral_text(str(v))


def _f(v) -> str:
    v = float(v)
    return "" if np.isnan(v) else f"{v:.6g}" if abs(v) < 1e6 else f"{v:.0f}"


def _r(arr) -> list[str]:
    return [_f(v) for v in arr]


# ------------------------------------------------------------------ table
def render_table(s: Sheet, console) -> None:
    from rich.table import Table
    from rich.text import Text

    d = to_json(s)
    uv = _unverified_energies(s)
    fs = s.factor_set
    # Text, not markup: a factor file's id or title may hold square brackets
    console.print(Text.assemble((f"CO2 sheet FY{s.fiscal_year}", "bold"), f" ({s.months[0]} .. {s.months[-1]}), factor set ",
                                (str(fs["id"]), "bold")))
    console.print(fs["title"], markup=False, highlight=False)
    mark = lambda e: f"{KINDS[e].label_ja}{' ※' if e in uv else ''}"   # noqa: E731
    method = d["scope2_method"]
    t = Table(title=f"t-CO2 by month (electricity: Scope 2 {method}-based)", title_justify="left", pad_edge=False)
    t.add_column("月", no_wrap=True)
    for e in s.energies:
        t.add_column(mark(e), justify="right")
    t.add_column(f"合計 total ({method}-based)", justify="right", style="bold")
    for j, label in enumerate(MONTH_LABELS):
        t.add_row(label, *(f"{s.t_co2[i, j]:.2f}" if s.present[i, j] else "-" for i in range(len(s.energies))),
                  f"{s.t_co2[:, j].sum():.2f}" if s.present[:, j].any() else "-")
    t.add_section()
    t.add_row("合計", *(f"{s.t_co2[i].sum():.2f}" for i in range(len(s.energies))), f"{s.total_t:.2f}", style="bold")
    t.add_row("構成比", *(f"{s.shares[e]:.1%}" for e in s.energies), "100%")
    console.print(t)

    e_t = Table(title="by energy", title_justify="left", pad_edge=False)
    for c in ("energy", "scope", "amount", "t-CO2", "share", "heat×C×44/12 t", "cost ¥"):
        e_t.add_column(c, justify="left" if c == "energy" else "right")
    for row in d["rows"]:
        amount = sum(v for v in row["amount_by_month"].values() if v is not None)
        heat = row["heat_route_t_co2"]
        e_t.add_row(mark(row["energy"]), str(row["scope"]), f"{amount:,.6g} {row['unit']}", f"{row['t_co2']:.2f}",
                    f"{row['share']:.1%}", "" if heat is None else f"{heat:.2f}",
                    "" if row["cost_jpy"] is None else f"{row['cost_jpy']:,.0f}")
    console.print(e_t)

    sc = Table(title="Scope 1 / Scope 2", title_justify="left", pad_edge=False)
    sc.add_column("")
    sc.add_column("t-CO2", justify="right")
    sc.add_row("Scope 1 (fuels burnt on site)", f"{d['scope1_t_co2']:.2f}")
    sc.add_row(SCOPE2_LABELS["location"], f"{d['scope2_location_based_t_co2']:.2f}")
    sc.add_row(SCOPE2_LABELS["market"], f"{d['scope2_market_based_t_co2']:.2f}")
    # both totals, each labelled; the one used for the sheet's total in bold (the HTML report shows both too)
    for m in ("location", "market"):
        used = m == d["scope2_method"]
        sc.add_row(f"total, Scope 2 {m}-based" + (" (used in this sheet's totals)" if used else ""),
                   f"{d[f'total_{m}_based_t_co2']:.2f}", style="bold" if used else None)
    if d["cost_jpy_known_part"]:
        sc.add_row("cost ¥" + ("" if d["cost_jpy"] is not None else " (rows with a price only)"),
                   f"{d['cost_jpy_known_part']:,.0f}")
    if d["intensity"] and d["intensity"]["t_co2_per_unit"] is not None:
        i = d["intensity"]
        sc.add_row(f"intensity per {i['production_unit']} ({i['production']:,.0f} produced)",
                   f"{i['t_co2_per_unit'] * 1000:.3f} kg")
    console.print(sc)

    from rich import box
    ft = Table(title="factors used", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    ft.add_column("energy (basis)", no_wrap=True)
    ft.add_column("from (menu, results FY)", overflow="fold", ratio=1)
    ft.add_column("value", no_wrap=True)
    ft.add_column("verified", no_wrap=True)
    notes: list[str] = []
    for f in s.factors:
        value = f"{f['value']:g} {f['unit']}"
        if f.get("note"):
            if f["note"] not in notes:
                notes.append(f["note"])
            value += f" [{notes.index(f['note']) + 1}]"
        who = ", ".join(str(x) for x in (f.get("supplier") or f["set"], f.get("menu"),
                                          f.get("results_fiscal_year") and f"FY{f['results_fiscal_year']}") if x)
        ft.add_row(f"{f['energy']} ({f['basis']})", who, value,
                   "yes" if f["verified"] else Text("UNVERIFIED", style="bold red"))
    console.print(ft)
    for k, n in enumerate(notes, 1):
        console.print(f"[{k}] {n}", markup=False, highlight=False)
    if uv:
        console.print(Text(f"※ uses an UNVERIFIED factor ({', '.join(sorted(uv))}): check it against the official "
                           "list and replace it in a factor file (docs/co2.md)", style="red"))
    if s.heat_route_t:
        console.print("heat×C×44/12: amount × heat value × carbon factor × 44/12, shown beside the listed factor "
                      "(they differ by the list's rounding)")
    for tg in s.targets:
        verdict = "on track" if tg["on_track"] else f"{tg['gap_t_co2']:.2f} t above the path"
        console.print(f"target {tg['label']}: FY{tg['fiscal_year']} path {tg['target_t_co2']:.2f} t "
                      f"(base FY{tg['base_fiscal_year']} {tg['base_t_co2']:.2f} t), actual {tg['actual_t_co2']:.2f} t"
                      f" → {verdict}")
    other = {k: v for k, v in s.by_fiscal_year.items() if k != s.fiscal_year}
    if other:
        console.print("other fiscal years in the file: " + ", ".join(f"FY{k} {v:.2f} t" for k, v in sorted(other.items())))
