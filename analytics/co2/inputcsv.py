"""Read a CSV of energy amounts (bills, meter totals) and price each row.

Columns (header names in English or Japanese, any order):
`period` (YYYY-MM or a date), `energy`, `amount`, `unit`; optional `factor`,
`factor_unit`, `supplier`, `menu`, `cost_jpy`, `site`.  Rows whose energy is
`production` (生産量) carry production counts (`unit` = the product unit) for the
intensity per unit.  UTF-8 with or without BOM, or Shift_JIS (cp932) as Excel
saves it.  Any bad row raises InputError "FILE:LINE: field: problem".
"""
from __future__ import annotations

import logging

import csv
import io
import math
import difflib
import unicodedata
from pathlib import Path

from ...energy import check_unit_fits, measurable_in, normalize_energy
from ...errors import InputError
from ...units import check_same_dimension, parse_factor_unit, parse_unit
from .engine import CO2Engine, to_date
from .factors import FactorLookupError
from .sheet import PricedRow, Production

log = logging.getLogger(__name__)

REQUIRED = ("period", "energy", "amount", "unit")
HEADERS = {
    "period": ("period", "month", "date", "年月", "期間", "月", "日付", "対象月"),
    "energy": ("energy", "エネルギー", "エネルギー種別", "燃料", "種別", "燃料種別"),
    "amount": ("amount", "使用量", "数量", "量"),
    "unit": ("unit", "単位"),
    "factor": ("factor", "排出係数", "係数"),
    "factor_unit": ("factor_unit", "係数単位", "排出係数単位"),
    "supplier": ("supplier", "供給者", "電力会社", "小売電気事業者", "ガス会社", "契約"),
    "menu": ("menu", "メニュー"),
    "cost_jpy": ("cost_jpy", "cost", "金額", "料金", "費用", "金額(円)"),
    "site": ("site", "事業所", "拠点"),
}
_HEADER_LOOKUP = {unicodedata.normalize("NFKC", a).strip().lower(): k for k, v in HEADERS.items() for a in v}
PRODUCTION = {"production", "生産量", "生産数", "生産"}


def _decode(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from None
    for enc in ("utf-8-sig", "cp932"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    raise InputError(f"{path}: not UTF-8 or Shift_JIS text")


def _number(text: str, what: str, allow_negative: bool = False) -> float:
    s = unicodedata.normalize("NFKC", text).strip().replace(",", "").replace("¥", "").replace("円", "")
    try:
        v = float(s)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if not math.isfinite(v):
        raise ValueError(f"{text!r} is not a finite number")
    if v < 0 and not allow_negative:
        raise ValueError(f"{what} {v:g} is negative")
    return v


def read_energy_csv(path: str | Path, engine: CO2Engine) -> tuple[list[PricedRow], list[Production]]:
    """Price every row of the CSV; InputError on the first bad row (no partial result)."""
    path = Path(path)
    text = _decode(path)
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    while header is not None and not any(h.strip() for h in header):
        header = next(reader, None)
    if header is None:
        raise InputError(f"{path}: empty file (expected a header: {', '.join(REQUIRED)}, ...)")
    cols: dict[str, int] = {}
    for i, h in enumerate(header):
        key = _HEADER_LOOKUP.get(unicodedata.normalize("NFKC", h).strip().lower())
        if key is None and h.strip():
            close = difflib.get_close_matches(unicodedata.normalize("NFKC", h).strip().lower(), list(_HEADER_LOOKUP),
                                              n=1, cutoff=0.6)
            hint = f"did you mean {_HEADER_LOOKUP[close[0]]!r}? " if close else ""
            raise InputError(f"{path}:{reader.line_num}: unknown column {h.strip()!r} "
                             f"({hint}columns: {', '.join(HEADERS)})")
        if key in cols:
            raise InputError(f"{path}:{reader.line_num}: column {key!r} appears twice")
        if key:
            cols[key] = i
    missing = [c for c in REQUIRED if c not in cols]
    if missing:
        raise InputError(f"{path}:{reader.line_num}: missing required column {', '.join(missing)}")
    rows: list[PricedRow] = []
    production: list[Production] = []
    for rec in reader:
        line = reader.line_num
        if not any(c.strip() for c in rec):
            continue
        if len(rec) > len(header):
            raise InputError(f"{path}:{line}: {len(rec)} fields, the header has {len(header)}")
        get = {k: (rec[i].strip() if i < len(rec) else "") for k, i in cols.items()}
        field = "?"
        try:
            for field in REQUIRED:
                if not get[field] and not (field == "unit" and _is_production(get["energy"])):
                    raise ValueError("empty")
            field = "period"
            when = to_date(unicodedata.normalize("NFKC", get["period"]))
            if _is_production(get["energy"]):
                field = "amount"
                production.append(Production(when, _number(get["amount"], "amount"), get["unit"] or "unit"))
                continue
            field = "energy"
            energy = normalize_energy(get["energy"])
            field = "amount"
            amount = _number(get["amount"], "amount")
            field = "unit"
            unit = parse_unit(get["unit"])
            if not (get.get("factor") and get.get("factor_unit")):
                check_unit_fits(energy, unit)
            elif unit.dimension not in measurable_in(energy):
                check_unit_fits(energy, unit)        # electricity in L: no own factor makes it fit
            factor = factor_unit = None
            if get.get("factor") or get.get("factor_unit"):
                field = "factor"
                if not get.get("factor"):
                    raise ValueError("factor_unit is given but factor is empty")
                factor = _number(get["factor"], "factor")
                field = "factor_unit"
                if not get.get("factor_unit"):
                    raise ValueError("factor is given without its unit (e.g. t-CO2/kWh)")
                factor_unit = get["factor_unit"]
                check_same_dimension(unit, parse_factor_unit(factor_unit).per)
            field = "cost_jpy"
            cost = _number(get["cost_jpy"], "cost_jpy") if get.get("cost_jpy") else None
            field = "energy"
            p = engine.price(energy, amount, unit, when, supplier=get.get("supplier") or None,
                             menu=get.get("menu") or None, factor=factor, factor_unit=factor_unit, cost_jpy=cost)
        except FactorLookupError as e:
            raise InputError(f"{path}:{line}: {e.field}: {e}") from None
        except ValueError as e:
            raise InputError(f"{path}:{line}: {field}: {e}") from None
        for w in p.warnings or ():
            log.warning("%s:%d: %s", path, line, w)
        rows.append(PricedRow(when, p, line, get.get("site") or None))
    if not rows:
        raise InputError(f"{path}: no energy rows after the header")
    return rows, production


def _is_production(energy: str) -> bool:
    return unicodedata.normalize("NFKC", energy).strip().lower() in PRODUCTION
