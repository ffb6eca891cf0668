"""The savings plan: measures ranked by yen per year, in the shape of an audit report.

Each measure carries its annual energy saving (kWh/year, from the findings
of the period, annualised), its yen and t-CO2 per year (priced by the one CO2
engine), its reduction contribution (削減寄与率: % of the site's annual CO2)
and its payback (投資回収年 = investment / yen per year) where an investment
figure is known.  Investments are typical defaults, all in
`SavingsAssumptions`, so an auditor can replace them with a quote.

Rules of thumb used (stated in every plan's `assumptions`):

- pressure setpoint: about 1% of compressor power per 2 psi (0.014 MPa) of
  discharge pressure near 0.7 MPa (US DOE, "Improving Compressed Air System
  Performance" sourcebook), i.e. about 7% per 0.1 MPa; applied to production-
  time compressor energy;
- VSD: power falls linearly with delivered air from a floor of 10% of full
  load (field notes: "VSD roughly linear from a no-load floor"), against the
  measured load/unload energy; only for load/unload machines;
- leak repair: leaks brought down to max(50% of today's, 10% of capacity)
  (US DOE: under 10% of capacity is well kept), at the system's specific energy;
- pulse blow: halves blow-off air (measures catalogue #8); the blow-off share
  of production air is not metered and is assumed (default 10%).

Measures overlap (a compressor stopped at night no longer feeds leaks at
night): leak repair is then counted over production hours only.  The plan
total is the sum of the measures, as audit reports add contributions.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field

HOURS_PER_YEAR = 8760.0


@dataclass
class SavingsAssumptions:
    pressure_power_per_01mpa: float = 0.07       # share of compressor power per 0.1 MPa
    pressure_target_mpa: float = 0.6
    pressure_assumed_mpa: float = 0.7            # when no pressure meter is paired
    vsd_floor_of_full_load: float = 0.10
    leak_target_share_of_capacity: float = 0.10
    leak_target_share_of_today: float = 0.50
    pulse_blow_share_of_air: float = 0.10
    pulse_blow_air_saving: float = 0.50
    investment_jpy: dict[str, float] = field(default_factory=lambda: {
        "standby_off": 0.0,                 # operation: switch off, timers are cheap
        "fix_baseline_gaps": 0.0,           # operation: checklist at shutdown
        "compressor_night_stop": 0.0,       # operation (a timer: add its price here)
        "pressure_setpoint": 0.0,           # operation
        "leak_repair": 100_000.0,           # per system: ultrasonic survey and fittings
        "pulse_blow": 300_000.0,            # per system: pulse valves on blow-off nozzles
        "review_base_load": 0.0,            # set points, right-sizing: set a quote here
    })
    vsd_investment_jpy_per_kw: float = 30_000.0   # per kW of full-load power
    base_load_reduction_share: float = 0.0        # always-on loads: no saving claimed unless the site sets one

    def describe(self) -> dict:
        return asdict(self)


@dataclass
class Measure:
    id: str
    title: str                       # in the site language
    title_en: str
    title_ja: str
    target: str                      # channel or system it applies to
    energy_kwh_per_year: float
    basis: str                       # how the saving was estimated (one line)
    investment_jpy: float | None = None
    cost_jpy_per_year: float | None = None
    co2_t_per_year: float | None = None
    reduction_contribution_pct: float | None = None
    payback_years: float | None = None
    kind: str = "operation"          # operation | retrofit | equipment (catalogue kinds)
    confidence: str | None = None    # high | medium | low (see CONFIDENCE_RULES)
    energy_kwh_per_year_low: float | None = None
    energy_kwh_per_year_high: float | None = None
    cost_jpy_per_year_low: float | None = None
    cost_jpy_per_year_high: float | None = None
    confidence_basis: str | None = None
    demand_cost_jpy_per_year: float = 0.0   # 基本料金 a measure saves (peak cut), priced by analytics/bill.py

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items()}


def price_measures(measures: list[Measure], engine, period_start: dt.datetime, site_co2_t_per_year: float,
                   tariff_jpy_per_kwh: float | None = None) -> list[Measure]:
    """Price each measure's annual kWh through the CO2 engine; fill contribution and
    payback; return them ranked by yen per year (then kWh)."""
    from mieruka.models import Finding

    for m in measures:
        f = Finding("measure", m.target, period_start, period_start + dt.timedelta(days=365),
                    m.energy_kwh_per_year, m.basis)
        engine.price_findings([f], tariff_jpy_per_kwh=tariff_jpy_per_kwh)
        m.cost_jpy_per_year, m.co2_t_per_year = f.cost_jpy, f.co2_t
        if m.demand_cost_jpy_per_year:          # yen from 基本料金, not from kWh
            m.cost_jpy_per_year = (m.cost_jpy_per_year or 0.0) + m.demand_cost_jpy_per_year
        if site_co2_t_per_year > 0 and f.co2_t is not None:
            m.reduction_contribution_pct = 100.0 * f.co2_t / site_co2_t_per_year
        if m.investment_jpy is not None and m.cost_jpy_per_year:
            m.payback_years = m.investment_jpy / m.cost_jpy_per_year
    return sorted(measures, key=lambda m: (-(m.cost_jpy_per_year or 0.0), -m.energy_kwh_per_year, m.id, m.target))


# How sure a measure's figure is: measured directly over a long enough window (high),
# measured but annualised from irregular events or a short window (medium), or resting
# on a rule of thumb (low).  The range is the figure x (1 -/+ band).
CONFIDENCE_BAND = {"high": 0.15, "medium": 0.30, "low": 0.50}
MEASURED = {"standby_off", "compressor_night_stop", "review_base_load"}
EVENTS = {"fix_baseline_gaps"}
METERED_ESTIMATE = {"leak_repair"}
RULE_OF_THUMB = {"pressure_setpoint", "vsd_compressor", "pulse_blow"}


def measure_confidence(measure_id: str, days_analysed: float) -> tuple[str, str]:
    """(confidence, why) of a measure's figure from how it was estimated and how many
    days it rests on."""
    if measure_id in RULE_OF_THUMB:
        return "low", "rule of thumb (see basis); replace with a quote or a measurement"
    if measure_id in MEASURED:
        if days_analysed >= 90:
            return "high", f"measured over {days_analysed:.0f} days"
        if days_analysed >= 14:
            return "medium", f"measured over {days_analysed:.0f} days, extrapolated to a year"
        return "low", f"measured over only {days_analysed:.0f} days, extrapolated to a year"
    if measure_id in EVENTS:
        if days_analysed >= 180:
            return "medium", f"irregular events over {days_analysed:.0f} days, annualised at the observed rate"
        return "low", f"irregular events over only {days_analysed:.0f} days, annualised at the observed rate"
    if measure_id in METERED_ESTIMATE:
        if days_analysed >= 14:
            return "medium", f"leak measured over {days_analysed:.0f} days; repair target assumed"
        return "low", f"leak measured over only {days_analysed:.0f} days; repair target assumed"
    if measure_id == "peak_cut":
        return "medium", (f"peaks measured over {days_analysed:.0f} days, priced by the bill's 基本料金; "
                          "assumes the listed loads can move out of those half hours")
    return "low", "estimate"


def assign_confidence(measures: list[Measure], days_analysed: float) -> None:
    """Fill confidence, its basis and the kWh/JPY range of each (priced) measure."""
    for m in measures:
        m.confidence, m.confidence_basis = measure_confidence(m.id, days_analysed)
        band = CONFIDENCE_BAND[m.confidence]
        m.energy_kwh_per_year_low = m.energy_kwh_per_year * (1.0 - band)
        m.energy_kwh_per_year_high = m.energy_kwh_per_year * (1.0 + band)
        if m.cost_jpy_per_year is not None:
            m.cost_jpy_per_year_low = m.cost_jpy_per_year * (1.0 - band)
            m.cost_jpy_per_year_high = m.cost_jpy_per_year * (1.0 + band)


def plan_totals(measures: list[Measure], site_energy_kwh_per_year: float, site_cost_jpy_per_year: float | None
                ) -> dict:
    kwh = sum(m.energy_kwh_per_year for m in measures)
    jpy = sum(m.cost_jpy_per_year or 0.0 for m in measures)
    co2 = sum(m.co2_t_per_year or 0.0 for m in measures)
    lo = sum(m.energy_kwh_per_year_low if m.energy_kwh_per_year_low is not None else m.energy_kwh_per_year
             for m in measures)
    hi = sum(m.energy_kwh_per_year_high if m.energy_kwh_per_year_high is not None else m.energy_kwh_per_year
             for m in measures)
    share = 100.0 * kwh / site_energy_kwh_per_year if site_energy_kwh_per_year > 0 else None
    return {
        "energy_kwh_per_year_low": lo, "energy_kwh_per_year_high": hi, "share_of_site_energy_pct": share,
        "confidence": {c: sum(1 for m in measures if m.confidence == c) for c in ("high", "medium", "low")},
        "energy_kwh_per_year": kwh, "cost_jpy_per_year": jpy, "co2_t_per_year": co2,
        "reduction_contribution_pct": sum(m.reduction_contribution_pct or 0.0 for m in measures),
        "energy_reduction_pct": 100.0 * kwh / site_energy_kwh_per_year if site_energy_kwh_per_year > 0 else None,
        "cost_reduction_pct": 100.0 * jpy / site_cost_jpy_per_year if site_cost_jpy_per_year else None,
        "investment_jpy": sum(m.investment_jpy or 0.0 for m in measures),
    }


# --------------------------------------------------------------- compressor measures
def pressure_setpoint_kwh(production_energy_kwh_per_year: float, pressure_mpa: float | None,
                          a: SavingsAssumptions) -> tuple[float, str]:
    p = pressure_mpa if pressure_mpa is not None else a.pressure_assumed_mpa
    steps = max(p - a.pressure_target_mpa, 0.0) / 0.1
    basis = (f"{a.pressure_power_per_01mpa:.0%} of compressor power per 0.1 MPa (US DOE: 1% per 2 psi), "
             f"{p:.2f} -> {a.pressure_target_mpa:.2f} MPa" + ("" if pressure_mpa is not None else " (pressure assumed)"))
    return production_energy_kwh_per_year * a.pressure_power_per_01mpa * steps, basis


def vsd_kwh(running_energy_kwh_per_year: float, loaded_fraction: float, full_kw: float, unload_kw: float,
            a: SavingsAssumptions) -> tuple[float, str]:
    """Load/unload today vs a VSD delivering the same air (linear from a floor)."""
    now_kw = loaded_fraction * full_kw + (1.0 - loaded_fraction) * unload_kw
    vsd_kw = full_kw * (a.vsd_floor_of_full_load + (1.0 - a.vsd_floor_of_full_load) * loaded_fraction)
    saving = max(1.0 - vsd_kw / now_kw, 0.0) if now_kw > 0 else 0.0
    return running_energy_kwh_per_year * saving, (
        f"loaded {loaded_fraction:.0%} of running time: {now_kw:.1f} kW load/unload vs {vsd_kw:.1f} kW VSD "
        f"(linear from {a.vsd_floor_of_full_load:.0%} floor)")


def leak_repair_kwh(leak_flow_m3min: float, capacity_m3min: float | None, hours_per_year: float,
                    specific_energy_kwh_per_m3: float, a: SavingsAssumptions) -> tuple[float, str]:
    target = a.leak_target_share_of_today * leak_flow_m3min
    if capacity_m3min:
        target = max(target, a.leak_target_share_of_capacity * capacity_m3min)
    cut = max(leak_flow_m3min - target, 0.0)
    return cut * 60.0 * hours_per_year * specific_energy_kwh_per_m3, (
        f"leak {leak_flow_m3min:.2f} -> {min(target, leak_flow_m3min):.2f} m3/min over {hours_per_year:,.0f} h/year "
        f"at {specific_energy_kwh_per_m3:.3f} kWh/m3")


def pulse_blow_kwh(production_air_m3_per_year: float, specific_energy_kwh_per_m3: float,
                   a: SavingsAssumptions) -> tuple[float, str]:
    m3 = production_air_m3_per_year * a.pulse_blow_share_of_air * a.pulse_blow_air_saving
    return m3 * specific_energy_kwh_per_m3, (
        f"assumed {a.pulse_blow_share_of_air:.0%} of production air is blow-off, pulsing halves it")
