"""The monthly electricity bill of a 高圧 実量制 contract, estimated from demand periods.

    基本料金     = 契約電力 kW × 基本料金単価 円/kW × (185 − 力率 %) / 100
                   (half when the month used no energy)
    電力量料金   = Σ kWh of each season/time band × its rate
    燃料費調整額 = month's kWh × that month's 燃料費調整単価 (may be negative)
    再エネ賦課金 = month's kWh × the fiscal year's levy
    消費税       = (sum of the above) × tax rate

Rounding, as Japanese supply terms (電気供給約款) state it: every charge is
computed in yen and its fraction below one yen is cut off (切り捨て; for a
negative 燃料費調整額 the discount is cut toward zero too); the tax is computed
once on the sum of the charges and its fraction cut off likewise.  The rates
are taken as tax-exclusive (税抜).  Arithmetic is in Decimal so that a bill
reproduces to the yen (20,123.4 kWh × 21.50 must not become 432,652.0999…).

力率 is the month's average over `power_factor_hours` (08:00-22:00 on the
utilities' terms) from metered kWh and kvarh, rounded to a whole percent
(四捨五入), at most 100; without a reactive meter the configured value is used.

契約電力 of a month is the highest demand of that month and the 11 before it
(analytics/demand.monthly_maxima); when the data does not reach 11 months back,
the configured `[demand] contract_kw` (the contract on the last bill) is a floor.

Pure: arrays, config objects and dates in; figures out.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass, field
from decimal import ROUND_DOWN, Decimal

import numpy as np

from mieruka.calendar import fiscal_year
from mieruka.tariff_bands import rate_table

from .demand import DemandPeriods, MonthMax, _offsets_table, _TZ_PROBE_MS


def _d(x: float) -> Decimal:
    # through repr: the decimal a person typed (21.5), not the binary float's expansion
    return Decimal(repr(float(x)))


def yen(x: Decimal) -> int:
    """Cut the fraction below one yen (toward zero)."""
    return int(x.to_integral_value(rounding=ROUND_DOWN))


def power_factor_pct(kwh: float, kvarh: float) -> int:
    """Average power factor in whole percent (四捨五入), from active and reactive energy."""
    if kwh <= 0:
        return 100
    pf = Decimal(repr(100.0 * kwh / math.hypot(kwh, abs(kvarh))))
    return min(int(pf.quantize(Decimal(1), rounding="ROUND_HALF_UP")), 100)


def basic_charge_jpy(contract_kw: float, basic_jpy_per_kw: float, pf_pct: float, used_energy: bool = True) -> int:
    """基本料金 to the yen (half when no energy was used in the month)."""
    x = _d(contract_kw) * _d(basic_jpy_per_kw) * (Decimal(185) - _d(pf_pct)) / Decimal(100)
    if not used_energy:
        x = x / 2
    return yen(x)


def new_peak_cost_jpy_12m(new_kw: float, contract_kw: float, basic_jpy_per_kw: float, pf_pct: float,
                          tax_rate: float = 0.10) -> int:
    """What a demand of `new_kw` above today's contract adds to 12 months of 基本料金, tax included."""
    over = max(new_kw - contract_kw, 0.0)
    per_month = _d(over) * _d(basic_jpy_per_kw) * (Decimal(185) - _d(pf_pct)) / Decimal(100)
    return yen(per_month * 12 * (1 + _d(tax_rate)))


@dataclass
class BillMonth:
    month: str
    contract_kw: float
    contract_basis: str
    power_factor_pct: float
    power_factor_measured: bool
    energy_kwh: float
    energy_kwh_by_band: dict[str, float]
    basic_jpy: int
    energy_jpy: int
    fuel_adjustment_jpy: int
    renewable_levy_jpy: int
    subtotal_jpy: int
    tax_jpy: int
    total_jpy: int
    coverage: float                       # share of the calendar month's periods measured
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def compute_bill(month: str, contract_kw: float, pf_pct: float, kwh_by_band: dict[str, float],
                 band_rates: dict[str, float], bill, *, pf_measured: bool = False, contract_basis: str = "",
                 coverage: float = 1.0) -> BillMonth:
    """One month's bill from its figures (the hand-checkable core of `monthly_bills`)."""
    notes = []
    kwh = sum(kwh_by_band.values())
    basic = basic_charge_jpy(contract_kw, bill.basic_jpy_per_kw, pf_pct, used_energy=kwh > 0)
    energy = yen(sum((_d(k) * _d(band_rates[b]) for b, k in kwh_by_band.items()), Decimal(0)))
    fuel_rate = bill.fuel_adjustment_jpy_per_kwh.get(month)
    if fuel_rate is None:
        notes.append(f"燃料費調整単価 for {month} is not configured: 0 used")
        fuel_rate = 0.0
    fy = str(fiscal_year(dt.date(int(month[:4]), int(month[5:7]), 1)))
    levy_rate = bill.renewable_levy_jpy_per_kwh.get(fy)
    if levy_rate is None:
        notes.append(f"再エネ賦課金 for FY{fy} is not configured: 0 used")
        levy_rate = 0.0
    fuel = yen(_d(kwh) * _d(fuel_rate))
    levy = yen(_d(kwh) * _d(levy_rate))
    sub = basic + energy + fuel + levy
    tax = yen(Decimal(sub) * _d(bill.consumption_tax_rate))
    if coverage < 1.0:
        notes.append(f"only {coverage:.1%} of the month's periods were measured: the energy charges cover "
                     "those only (基本料金 is the whole month's)")
    return BillMonth(month, contract_kw, contract_basis, pf_pct, pf_measured, kwh, dict(kwh_by_band), basic, energy,
                     fuel, levy, sub, tax, sub + tax, coverage, notes)


def band_energy(d: DemandPeriods, bill, holidays: set[dt.date] | None = None,
                fallback_jpy_per_kwh: float | None = None) -> tuple[dict[str, dict[str, float]], dict[str, float],
                                                                      dict[str, float]]:
    """kWh of each local month by rate band: ({month: {band: kWh}}, {band: 円/kWh},
    {month: coverage}).  Without `energy_rates` everything is one band at the
    fallback price.  Bands are looked up at each period's local start."""
    months: dict[str, dict[str, float]] = {}
    cover: dict[str, float] = {}
    if len(d) == 0:
        return months, {}, cover
    import zoneinfo
    g0, table = _offsets_table(int(d.start_ms.min()), int(d.start_ms.max()), zoneinfo.ZoneInfo(d.timezone))
    local = d.start_ms + table[(d.start_ms - g0) // _TZ_PROBE_MS]
    day = local // 86_400_000
    minute = (local % 86_400_000) // 60_000
    weekday = (day + 3) % 7                                    # 1970-01-01 was a Thursday
    ym = local.astype("datetime64[ms]").astype("datetime64[M]")
    month_no = ym.astype(np.int64) % 12 + 1
    names = np.datetime_as_string(ym, unit="M")
    if bill.energy_rates:
        tab = rate_table(bill)
        season = np.where(np.isin(month_no, bill.summer_months), 0, 1)
        hol_days = {(h - dt.date(1970, 1, 1)).days for h in (holidays or set())}
        hol = np.isin(day, list(hol_days)).astype(np.int64) if hol_days else np.zeros(day.size, np.int64)
        idx = tab[season, weekday, hol, minute]
        labels = [f"{r.band}" if r.season == "all" else f"{r.season}:{r.band}" for r in bill.energy_rates]
        rates = {}
        for lab, r in zip(labels, bill.energy_rates):
            rates.setdefault(lab, r.jpy_per_kwh)
    else:
        idx = np.zeros(day.size, np.int64)
        labels = ["all"]
        rates = {"all": float(fallback_jpy_per_kwh or 0.0)}
    kwh = np.nan_to_num(d.kwh)
    for name in np.unique(names):
        m = names == name
        sums = np.bincount(idx[m], weights=kwh[m], minlength=len(labels))
        per: dict[str, float] = {}
        for i, lab in enumerate(labels):
            if sums[i] or lab not in per:
                per[lab] = per.get(lab, 0.0) + float(sums[i])
        months[str(name)] = {k: v for k, v in per.items() if v} or {labels[0]: 0.0}
        cover[str(name)] = float(d.coverage[m].sum()) / _periods_in_month(str(name), d.timezone, d.period_min)
    return months, rates, cover


def _periods_in_month(month: str, tz: str, period_min: int) -> int:
    """Demand periods in a local calendar month (DST months have one hour more or less)."""
    import zoneinfo
    z = zoneinfo.ZoneInfo(tz)
    y, m = int(month[:4]), int(month[5:7])
    a = dt.datetime(y, m, 1, tzinfo=z)
    b = dt.datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=z)
    return max(int(round((b.timestamp() - a.timestamp()) / (period_min * 60))), 1)


def monthly_bills(d: DemandPeriods, maxima: list[MonthMax], bill, *, configured_contract_kw: float | None = None,
                  holidays: set[dt.date] | None = None, reactive: DemandPeriods | None = None,
                  fallback_jpy_per_kwh: float | None = None) -> list[BillMonth]:
    """The bill of every local month in `d` (see module doc).  `reactive`: kvarh per
    period on the same grid (from a kvarh counter or kvar samples) for a measured 力率."""
    by_band, rates, cover = band_energy(d, bill, holidays, fallback_jpy_per_kwh)
    pf_by_month = _measured_pf(d, reactive, bill) if reactive is not None else {}
    out = []
    for i, mm in enumerate(maxima):
        if mm.month not in by_band:
            continue
        reach = _months_back_covered(maxima, i)
        c = mm.contract_kw_12m
        if c is None or (reach < 11 and configured_contract_kw and configured_contract_kw > c):
            c, basis = configured_contract_kw, "configured contract_kw (data covers fewer than 12 months)"
        else:
            basis = "highest demand of this month and the 11 before" + ("" if reach >= 11 else
                                                                      f" (data covers {reach + 1} of 12 months)")
        if c is None:
            continue
        pf, measured = (pf_by_month[mm.month], True) if mm.month in pf_by_month else (bill.power_factor_pct, False)
        out.append(compute_bill(mm.month, c, pf, by_band[mm.month], rates, bill, pf_measured=measured,
                                contract_basis=basis, coverage=cover[mm.month]))
    return out


def _months_back_covered(maxima: list[MonthMax], i: int) -> int:
    """How many of the 11 months before maxima[i] the data reaches back to."""
    y, m = int(maxima[i].month[:4]), int(maxima[i].month[5:])
    first = maxima[0].month
    fy, fm = int(first[:4]), int(first[5:])
    return min((y * 12 + m) - (fy * 12 + fm), 11)


def _measured_pf(d: DemandPeriods, reactive: DemandPeriods, bill) -> dict[str, int]:
    import zoneinfo
    if len(d) == 0 or len(reactive) == 0:
        return {}
    kvarh = np.full(len(d), np.nan)
    pos = np.searchsorted(reactive.start_ms, d.start_ms)
    hit = (pos < len(reactive)) & (reactive.start_ms[np.minimum(pos, len(reactive) - 1)] == d.start_ms)
    kvarh[hit] = reactive.kwh[pos[hit]]
    g0, table = _offsets_table(int(d.start_ms.min()), int(d.start_ms.max()), zoneinfo.ZoneInfo(d.timezone))
    local = d.start_ms + table[(d.start_ms - g0) // _TZ_PROBE_MS]
    minute = (local % 86_400_000) // 60_000
    a, b = (int(x[:2]) * 60 + int(x[3:]) for x in bill.power_factor_hours.split("-"))
    in_hours = (minute >= a) & (minute < b) if a < b else (minute >= a) | (minute < b)
    names = np.datetime_as_string(local.astype("datetime64[ms]").astype("datetime64[M]"), unit="M")
    use = in_hours & np.isfinite(kvarh) & np.isfinite(d.kwh) & (d.coverage > 0)
    out = {}
    for name in np.unique(names[use]):
        m = use & (names == name)
        out[str(name)] = power_factor_pct(float(d.kwh[m].sum()), float(kvarh[m].sum()))
    return out
