"""Scenario file: what the simulated factory contains (TOML, validated with pydantic).

A scenario names its channels itself, so a recording (and its ground truth) can
be made from a scenario alone; the site config links meters and register maps to
the same channel ids for the live Modbus server.  See docs/simulators.md.

::

    [scenario]
    name = "demo"
    noise = 0.03               # relative noise of every load (std / level)
    nominal_voltage_v = 115.5  # L-N voltage the power meters report

    [[loads]]                  # a breaker-level load
    channel = "press_power"
    kind = "breaker"           # breaker | lighting | hvac | constant
    production_kw = 18.0
    lunch_kw = 5.0
    standby_kw = 2.4

    [[compressors]]
    system = "air1"
    power_channel = "compressor_power"
    ...
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mieruka.errors import ConfigError
from mieruka.site import CalendarSection, format_validation_error, read_toml


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, protected_namespaces=())


class ScenarioSection(_M):
    name: str = "factory"
    description: str = ""
    timezone: str = "Asia/Tokyo"
    noise: float = Field(default=0.03, ge=0, le=1, description="relative std of load noise")
    noise_smoothing_s: float = Field(default=60.0, ge=0, description="time constant of the slow part of the noise")
    nominal_voltage_v: float = Field(default=115.5, gt=0, description="L-N voltage (200 V delta ~ 115 V L-N)")
    frequency_hz: float = Field(default=50.0, gt=0, description="50 Hz east Japan, 60 Hz west")
    power_factor: float = Field(default=0.92, gt=0, le=1)
    outdoor_temp_mean_c: float = Field(default=17.0, description="yearly mean outdoor temperature")
    outdoor_temp_season_c: float = Field(default=10.0, ge=0, description="seasonal half-swing (Aug warm, Feb cold)")
    outdoor_temp_daily_c: float = Field(default=4.0, ge=0, description="daily half-swing (warmest 14:00)")
    outdoor_temp_weather_c: float = Field(default=0.0, ge=0, description="day-to-day weather swing (fronts, "
                                          "heat waves): a deterministic pseudo-random day anomaly of this size")
    outdoor_temp_channel: str | None = Field(default=None, description="record the outdoor temperature as this "
                                             "channel (temperature_c, equipment_kind outdoor_air)")
    production_drift_per_year: float = Field(default=0.0, ge=-0.9, le=5, description="slow drift of production "
                                             "loads: relative change per year from the start (order book, new line)")
    production_season: float = Field(default=0.0, ge=0, le=0.9, description="seasonal swing of production loads "
                                     "(relative half-swing, busiest in production_peak_day_of_year)")
    production_peak_day_of_year: int = Field(default=350, ge=0, le=365)


class LoadSpec(_M):
    """One metered load.  Levels are mean kW; production/lunch/standby follow the calendar."""

    channel: str
    kind: Literal["breaker", "lighting", "hvac", "constant", "chiller"] = "breaker"
    equipment_kind: str | None = None
    always_on: bool | None = Field(default=None, description="written to the channel metadata (site config's always_on)")
    system: str | None = None
    meter: str | None = Field(default=None, description="meter id (for faults); default: the channel id")
    production_kw: float = Field(ge=0)
    lunch_kw: float | None = Field(default=None, ge=0, description="default: standby + 30% of the production step")
    standby_kw: float = Field(default=0.0, ge=0, description="mean power outside production")
    standby_allowance_kw: float = Field(default=0.0, ge=0)
    noise: float | None = Field(default=None, ge=0, le=1, description="relative noise; default scenario.noise")
    # hvac: power grows with |outdoor temp - comfort|
    hvac_kw_per_degc: float = Field(default=0.0, ge=0)
    comfort_c: float = 21.0
    # chiller (while it runs: production and lunch) and constant loads (refrigeration: always):
    # power grows with the outdoor temperature above a balance point
    cooling_kw_per_degc: float = Field(default=0.0, ge=0)
    balance_c: float = 18.0
    # counters
    energy_channel: str | None = Field(default=None, description="an energy counter integrating this load")
    counter_start_kwh: float = Field(default=0.0, ge=0)
    counter_wrap_kwh: float | None = Field(default=None, gt=0, description="counter wraps to 0 here")

    @property
    def off_outside_production(self) -> bool:
        return self.standby_kw == 0.0


class CompressorSpec(_M):
    """An air compressor with its receiver; cycling emerges from demand + leaks vs capacity."""

    system: str
    power_channel: str
    flow_channel: str | None = None
    pressure_channel: str | None = None
    volume_channel: str | None = None
    energy_channel: str | None = None
    meter: str | None = None
    flow_meter: str | None = None
    control: Literal["load_unload", "vsd"] = "load_unload"
    capacity_m3_per_min: float = Field(gt=0)
    full_load_power_kw: float = Field(gt=0)
    unload_power_kw: float | None = Field(default=None, ge=0,
                                          description="default 30% of full load (VSD: 12%, its no-load floor)")
    vsd_min_speed: float = Field(default=0.3, gt=0, lt=1)
    receiver_m3: float = Field(default=2.0, gt=0, description="receiver + piping volume")
    pressure_band_mpa: tuple[float, float] = (0.6, 0.7)
    unload_run_on_s: float = Field(default=600.0, ge=0, description="stop after this long unloaded")
    demand_production_m3min: float = Field(ge=0)
    demand_lunch_m3min: float | None = Field(default=None, ge=0)
    demand_standby_m3min: float = Field(default=0.0, ge=0)
    demand_noise: float = Field(default=0.15, ge=0, le=1)
    leak_m3min: float = Field(default=0.0, ge=0, description="leak flow at the start")
    stop_outside_production: bool = Field(default=False, description="switched off at night and on holidays")
    counter_start_kwh: float = 0.0
    counter_start_m3: float = 0.0
    volume_wrap_m3: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _check(self) -> "CompressorSpec":
        lo, hi = self.pressure_band_mpa
        if not 0 < lo < hi:
            raise ValueError("pressure_band_mpa must be [low, high] with 0 < low < high")
        return self

    @property
    def unload_kw(self) -> float:
        if self.unload_power_kw is not None:
            return self.unload_power_kw
        return (0.3 if self.control == "load_unload" else 0.12) * self.full_load_power_kw


class MainSpec(_M):
    """The incomer: the sum of all loads and compressors plus unmetered loads."""

    channel: str
    energy_channel: str | None = None
    meter: str | None = None
    unmetered_production_kw: float = Field(default=0.0, ge=0)
    unmetered_standby_kw: float = Field(default=0.0, ge=0)
    counter_start_kwh: float = 0.0
    counter_wrap_kwh: float | None = Field(default=None, gt=0, description="the energy counter wraps to 0 here")


class EventSpec(_M):
    """An injected anomaly.  Give `date` (site-local) or `count` (dates drawn by seed)."""

    kind: Literal["left_on", "holiday_run", "night_high", "leak_growth"]
    channel: str | None = Field(default=None, description="left_on / night_high: the load's channel")
    system: str | None = Field(default=None, description="leak_growth: the compressor system")
    date: dt.date | None = None
    count: int = Field(default=1, ge=0)
    level: float = Field(default=1.0, gt=0, description="share of the production level while the event lasts")
    growth_m3min_per_week: float = Field(default=0.0, ge=0, description="leak_growth: extra leak per week")

    @model_validator(mode="after")
    def _targets(self) -> "EventSpec":
        if self.kind in ("left_on", "night_high") and not self.channel:
            raise ValueError(f"{self.kind} events need `channel`")
        if self.kind == "leak_growth" and (not self.system or self.growth_m3min_per_week <= 0):
            raise ValueError("leak_growth events need `system` and growth_m3min_per_week > 0")
        return self


class FaultSpec(_M):
    """A meter fault.  Without start/end (and count = 0) it lasts forever (live server)."""

    meter: str
    kind: Literal["timeout", "exception", "garbage", "stuck", "gap", "reset"]
    channel: str | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    count: int = Field(default=0, ge=0, description="recordings: this many windows drawn by seed")
    duration_min: float = Field(default=60.0, gt=0, description="length of each drawn window")
    delay_s: float | None = Field(default=None, ge=0, description="timeout: answer after this delay (none: never)")
    exception_code: int = Field(default=4, ge=1, le=255)
    address: int | None = Field(default=None, ge=0, le=65535,
                                description="exception: only reads touching this address")
    garbage: Literal["nan", "huge", "random"] = "nan"


class PeakSpec(_M):
    """Extra load in chosen half hours (a furnace start colliding with the compressors):
    `kw` more from `start` (naive = site local time) for `minutes`, on a load's
    breaker (`channel`) or, without one, on an unmetered feeder of the incomer."""

    start: dt.datetime
    minutes: float = Field(default=30.0, gt=0)
    kw: float = Field(gt=0)
    channel: str | None = Field(default=None, description="a load's channel; none: unmetered, on the incomer")
    label: str = "peak"


class Scenario(_M):
    scenario: ScenarioSection = Field(default_factory=ScenarioSection)
    calendar: CalendarSection = Field(default_factory=CalendarSection)
    main: MainSpec | None = None
    loads: list[LoadSpec] = Field(default_factory=list)
    compressors: list[CompressorSpec] = Field(default_factory=list)
    events: list[EventSpec] = Field(default_factory=list)
    faults: list[FaultSpec] = Field(default_factory=list)
    peaks: list[PeakSpec] = Field(default_factory=list)
    demand_period_min: int = Field(default=30, ge=1, le=1440, description="period of the truth's demand")

    source: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _refs(self) -> "Scenario":
        seen: set[str] = set()
        for cid in self.channel_ids():
            if cid in seen:
                raise ValueError(f"channel {cid!r} is produced twice")
            seen.add(cid)
        loads = {ld.channel for ld in self.loads}
        systems = {c.system for c in self.compressors}
        for e in self.events:
            if e.channel and e.channel not in loads:
                raise ValueError(f"event {e.kind}: channel {e.channel!r} is not one of the loads ({', '.join(loads)})")
            if e.system and e.system not in systems:
                raise ValueError(f"event {e.kind}: system {e.system!r} is not a compressor system")
        for i, pk in enumerate(self.peaks):
            if pk.channel is not None and pk.channel not in loads:
                raise ValueError(f"peaks[{i}]: channel {pk.channel!r} is not one of the loads ({', '.join(loads)})")
            if pk.channel is None and self.main is None:
                raise ValueError(f"peaks[{i}]: a peak without `channel` goes on the incomer: add [main]")
        if 1440 % self.demand_period_min:
            raise ValueError("demand_period_min must divide a day (e.g. 15, 30, 60)")
        return self

    def channel_ids(self) -> list[str]:
        out: list[str] = []
        if self.main:
            out += [self.main.channel] + ([self.main.energy_channel] if self.main.energy_channel else [])
        for ld in self.loads:
            out += [ld.channel] + ([ld.energy_channel] if ld.energy_channel else [])
        for c in self.compressors:
            out += [x for x in (c.power_channel, c.energy_channel, c.flow_channel, c.volume_channel,
                                c.pressure_channel) if x]
        return out


def parse_scenario(data: dict, where: str = "<scenario>", source: Path | None = None) -> Scenario:
    try:
        sc = Scenario.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, where, data, model=Scenario)) from None
    sc.source = source
    return sc


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; errors name the file and the key."""
    path = Path(path)
    return parse_scenario(read_toml(path, "scenario"), str(path), path.resolve())
