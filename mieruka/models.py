"""The vocabulary that moves between the parts: readings (as numpy columns),
quality flags and findings."""
from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class Quality(enum.IntEnum):
    """Quality of one reading.  Only OK values are used by the analytics; the
    others are kept so that gaps and faults can be seen and counted."""

    OK = 0
    TIMEOUT = 1        # the meter did not answer in time
    EXCEPTION = 2      # the meter answered with a Modbus exception
    OUT_OF_RANGE = 3   # decoded, but outside the channel's plausible range (garbage)
    STALE = 4          # the same value for longer than the meter can plausibly hold it
    ERROR = 5          # anything else (decode error, connection refused)

    @classmethod
    def parse(cls, text: str) -> "Quality":
        try:
            return cls[text.strip().upper().replace("-", "_")]
        except KeyError:
            raise ValueError(f"unknown quality {text!r}; one of {', '.join(q.name.lower() for q in cls)}") from None


TIME_DTYPE = "datetime64[ms]"   # UTC, naive numpy datetimes are always UTC in mieruka


@dataclass
class ReadingBatch:
    """A batch of readings as columns.  `time` is UTC (datetime64[ms])."""

    time: np.ndarray                 # datetime64[ms], UTC
    channel: np.ndarray              # object array of channel ids
    value: np.ndarray                # float64; NaN where quality is not OK
    quality: np.ndarray              # uint8 Quality codes

    def __post_init__(self) -> None:
        self.time = np.asarray(self.time, dtype=TIME_DTYPE)
        self.channel = np.asarray(self.channel, dtype=object)
        self.value = np.asarray(self.value, dtype=np.float64)
        self.quality = np.asarray(self.quality, dtype=np.uint8)
        n = len(self.time)
        if not (len(self.channel) == len(self.value) == len(self.quality) == n):
            raise ValueError("ReadingBatch columns differ in length")

    def __len__(self) -> int:
        return len(self.time)

    @classmethod
    def empty(cls) -> "ReadingBatch":
        return cls(np.empty(0, TIME_DTYPE), np.empty(0, object), np.empty(0), np.empty(0, np.uint8))

    @classmethod
    def concat(cls, batches: list["ReadingBatch"]) -> "ReadingBatch":
        if not batches:
            return cls.empty()
        return cls(np.concatenate([b.time for b in batches]), np.concatenate([b.channel for b in batches]),
                   np.concatenate([b.value for b in batches]), np.concatenate([b.quality for b in batches]))

    @classmethod
    def single_channel(cls, channel: str, time: np.ndarray, value: np.ndarray,
                       quality: np.ndarray | None = None) -> "ReadingBatch":
        n = len(time)
        q = np.zeros(n, np.uint8) if quality is None else quality
        return cls(time, np.full(n, channel, dtype=object), value, q)


@dataclass
class ChannelInfo:
    """What analytics need to know about a channel; from the site config or from
    a recording's own columns (so that an auditor needs no site config)."""

    id: str
    quantity: str
    unit: str | None = None
    equipment_kind: str | None = None
    system: str | None = None
    breaker: str | None = None
    process: str | None = None
    equipment: str | None = None
    meter: str | None = None
    standby_allowance_kw: float = 0.0
    rated_power_kw: float | None = None
    capacity_m3_per_min: float | None = None
    always_on: bool | None = None    # must run outside production (servers, refrigeration); None: from its kind/data


@dataclass
class ChannelData:
    """One channel's readings with its metadata: what the analysis pipeline takes
    (and what a recording holds).  `quality` None means every reading is OK."""

    info: ChannelInfo
    time: np.ndarray                 # datetime64[ms] UTC, sorted
    value: np.ndarray                # float64 (NaN where quality is not OK)
    quality: np.ndarray | None = None   # uint8 Quality codes, one per reading

    @property
    def id(self) -> str:
        return self.info.id

    def ok(self) -> tuple[np.ndarray, np.ndarray]:
        """(times, values) of the OK readings."""
        if self.quality is None:
            return self.time, self.value
        m = self.quality == Quality.OK
        return self.time[m], self.value[m]

    def between(self, start: np.datetime64 | None, end: np.datetime64 | None) -> "ChannelData":
        """The readings in [start, end) (None: open end)."""
        m = np.ones(len(self.time), bool)
        if start is not None:
            m &= self.time >= start
        if end is not None:
            m &= self.time < end
        return ChannelData(self.info, self.time[m], self.value[m], None if self.quality is None else self.quality[m])


@dataclass
class Finding:
    """One thing an energy manager should know about, priced in kWh, yen and t-CO2.

    Detectors fill kind, channel, start, end, energy_kwh, metrics and
    explanation; the CO2 engine fills cost_jpy, co2_t and factor.
    """

    kind: str                        # standby | air_leak | baseline_gap | compressor_profile | ...
    channel: str
    start: dt.datetime               # timezone-aware
    end: dt.datetime
    energy_kwh: float
    explanation: str
    metrics: dict[str, Any] = field(default_factory=dict)   # names carry units
    cost_jpy: float | None = None
    co2_t: float | None = None
    factor: dict[str, Any] | None = None                    # the emission factor used (set, name, value, unit, verified)
    annual_energy_kwh: float | None = None                  # extrapolated to a year, where meaningful

    def to_dict(self) -> dict[str, Any]:
        d = {
            "kind": self.kind, "channel": self.channel,
            "start": self.start.isoformat(), "end": self.end.isoformat(),
            "energy_kwh": self.energy_kwh, "cost_jpy": self.cost_jpy, "co2_t": self.co2_t,
            "metrics": self.metrics, "explanation": self.explanation,
        }
        if self.annual_energy_kwh is not None:
            d["annual_energy_kwh"] = self.annual_energy_kwh
        if self.factor is not None:
            d["factor"] = self.factor
        return d
