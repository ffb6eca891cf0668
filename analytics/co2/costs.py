"""Yen for an amount of energy from the site's tariffs.

Prices, first match wins: `tariffs.prices[energy]` (any unit of the energy's
dimension), then `electricity_jpy_per_kwh`, `gas_jpy_per_m3` (city gas and
natural gas given in m3 or 千m3) and `fuel_jpy_per_l` (liquid fuels).

Time-of-use bands price electricity spread evenly over a finding's
[start, end): the minutes of the span are classified by band (vectorised, one
element per minute; a year is 525,600 elements) and each band's share of the
energy is priced at its rate; minutes in no band take the flat rate.
"""
from __future__ import annotations

import datetime as dt

import numpy as np

from ...energy import KINDS
from ...units import convert, parse_unit


def tariff_cost_jpy(tariffs, energy: str, amount: float, unit) -> float | None:
    """Yen for `amount` (in Unit `unit`) of `energy`, or None when no price is known."""
    if tariffs is None:
        return None
    try:
        return _tariff_cost(tariffs, energy, amount, unit)
    except ValueError:      # e.g. a price per m3 for an amount in Nm3: no price rather than a wrong one
        return None


def _tariff_cost(tariffs, energy: str, amount: float, unit) -> float | None:
    for name, p in tariffs.prices.items():
        if _norm(name) == energy:
            return convert(amount, unit, parse_unit(p.unit)) * p.jpy_per_unit
    if energy == "electricity":
        return convert(amount, unit, "kWh") * tariffs.electricity_jpy_per_kwh
    if energy in ("city_gas", "natural_gas") and tariffs.gas_jpy_per_m3 is not None and unit.dimension == "volume_gas":
        return convert(amount, unit, "m3") * tariffs.gas_jpy_per_m3
    if KINDS[energy].liquid_fuel and tariffs.fuel_jpy_per_l is not None:
        return convert(amount, unit, "L") * tariffs.fuel_jpy_per_l
    return None


def _norm(name: str) -> str:
    from ...energy import normalize_energy
    return normalize_energy(name)


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def tou_cost_jpy(energy_kwh: float, start: dt.datetime, end: dt.datetime, tariffs, calendar) -> tuple[float, dict]:
    """Yen for `energy_kwh` spread evenly over [start, end) under time-of-use bands;
    also returns the kWh per band name (for the finding's explanation)."""
    flat = tariffs.electricity_jpy_per_kwh
    n = int((end - start).total_seconds() // 60)
    if n <= 0 or not tariffs.time_of_use:
        return energy_kwh * flat, {}
    t0 = np.datetime64(start.astimezone(dt.timezone.utc).replace(tzinfo=None), "ms")
    times = t0 + np.arange(n, dtype=np.int64) * np.timedelta64(60_000, "ms")
    lt, day_type, _ = calendar.classify(times)
    holiday = day_type == 2          # SUNDAY_HOLIDAY: national holidays and Sundays
    band = np.full(n, -1, np.int16)
    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    for i, b in enumerate(tariffs.time_of_use):
        a, z = (_minutes(x) for x in b.hours.split("-"))
        in_hours = (lt.minute >= a) & (lt.minute < z) if z > a else (lt.minute >= a) | (lt.minute < z)
        day_ok = np.isin(lt.weekday, [days.index(d[:3].lower()) for d in b.days])
        if not b.holidays_too:
            day_ok &= ~holiday
        band = np.where((band < 0) & in_hours & day_ok, i, band)
    per_min = energy_kwh / n
    counts = np.bincount(band + 1, minlength=len(tariffs.time_of_use) + 1)
    rates = np.array([flat] + [b.electricity_jpy_per_kwh for b in tariffs.time_of_use])
    cost = float((counts * per_min * rates).sum())
    kwh_by_band = {("flat" if i == 0 else tariffs.time_of_use[i - 1].name): float(c * per_min)
                   for i, c in enumerate(counts) if c}
    return cost, kwh_by_band
