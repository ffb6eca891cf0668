"""Prepared channels: clean samples as rates on a time axis shared by the meters
polled together (durations that never bridge a gap, calendar classes, day and
hour runs, masked weights), so each detector only multiplies and sums."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from mieruka.calendar import SiteCalendar
from mieruka.models import ChannelData, ChannelInfo, Quality

from . import resample as rs
from .weather import is_outdoor_temperature


class Axis:
    """Everything that depends only on sample times, shared by the channels polled
    together: durations, calendar classes, day and hour runs, masked weights."""

    def __init__(self, t_ms: np.ndarray, max_gap_s: float | None, calendar: "CachedCalendar") -> None:
        self.t_ms = t_ms
        self.step_s = rs.nominal_step_s(t_ms)
        self.dur_s = rs.durations_s(t_ms, self.step_s, max_gap_s)
        lt, _, self.production, self.idle = calendar.classify_idle(t_ms)
        self.local_day = lt.day
        self._cache: dict[str, Any] = {}

    def _get(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @property
    def day_runs(self) -> tuple[np.ndarray, np.ndarray]:
        return self._get("day_runs", lambda: rs.runs(self.local_day))

    @property
    def w_out(self) -> np.ndarray:
        """Seconds per sample outside production (0 inside)."""
        return self._get("w_out", lambda: self.dur_s * ~self.production)

    @property
    def w_idle(self) -> np.ndarray:
        """Seconds per sample outside production and breaks (0 elsewhere)."""
        return self._get("w_idle", lambda: self.dur_s * self.idle)

    @property
    def w_prod(self) -> np.ndarray:
        return self._get("w_prod", lambda: self.dur_s * self.production)

    @property
    def hours(self) -> tuple[int, int, np.ndarray, np.ndarray, np.ndarray]:
        """(first UTC hour ms, number of hours, run starts, hour index per run, covered s per hour)."""
        def make():
            h0 = int(self.t_ms[0]) // rs.MS_PER_HOUR * rs.MS_PER_HOUR
            n = int(self.t_ms[-1] - h0) // rs.MS_PER_HOUR + 1
            starts, keys = rs.runs((self.t_ms - h0) // rs.MS_PER_HOUR)
            covered = np.zeros(n)
            covered[keys] = rs.run_sums(self.dur_s, starts)
            return h0, n, starts, keys, covered
        return self._get("hours", make)

    def hourly_mean(self, rate: np.ndarray, min_coverage: float = 0.5) -> tuple[np.ndarray, int]:
        """(mean rate per UTC hour, NaN where under half measured; first hour ms)."""
        h0, n, starts, keys, covered = self.hours
        integral = np.zeros(n)
        integral[keys] = rs.run_sums(rate * self.dur_s, starts)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = integral / covered
        mean[covered < min_coverage * 3600.0] = np.nan
        return mean, h0


@dataclass
class Series:
    """One prepared channel: rate per sample on a (shared) time axis."""

    info: ChannelInfo
    axis: Axis
    rate: np.ndarray

    @property
    def t_ms(self) -> np.ndarray:
        return self.axis.t_ms

    @property
    def dur_s(self) -> np.ndarray:
        return self.axis.dur_s

    @property
    def local_day(self) -> np.ndarray:
        return self.axis.local_day

    @property
    def production(self) -> np.ndarray:
        return self.axis.production

    @property
    def idle(self) -> np.ndarray:
        return self.axis.idle


def _stem(cid: str) -> str:
    for sep in (".", "_", "-", "/"):
        if sep in cid:
            return cid.rsplit(sep, 1)[0]
    return cid


def prepare(info: ChannelInfo, times: np.ndarray, values: np.ndarray, quality: np.ndarray | None,
            calendar: SiteCalendar, max_gap_s: float | None, axes: dict | None = None) -> Series | None:
    """Clean one channel and turn it into a rate (kW, m3/min or MPa) on a time axis
    (`axes`: a dict shared between calls, so channels with equal times share one)."""
    t = rs.to_ms(times)
    v = np.asarray(values, dtype=np.float64)
    if quality is not None:
        ok = np.asarray(quality) == Quality.OK
        if not ok.all():
            t, v = t[ok], v[ok]
    t, v = rs.clean_series(t, v)
    if t.size < 2:
        return None
    if info.quantity in ("energy_kwh", "air_volume_m3"):
        t, v = rs.counter_to_rate(t, v, 3600.0 if info.quantity == "energy_kwh" else 60.0, max_gap_s)
        if t.size < 2:
            return None
    if not isinstance(calendar, CachedCalendar):
        calendar = CachedCalendar(calendar)
    axes = {} if axes is None else axes
    key = (t.size, int(t[0]), int(t[-1]))
    ax = axes.get(key)
    if ax is None or not (ax.t_ms is t or np.array_equal(ax.t_ms, t)):
        ax = Axis(t, max_gap_s, calendar)
        axes[key] = ax
    return Series(info, ax, v)


def role(info: ChannelInfo) -> str | None:
    q = info.quantity
    if q in ("power_kw", "energy_kwh"):
        return "power"
    if q in ("air_flow_m3min", "air_volume_m3"):
        return "flow"
    if q == "pressure_mpa":
        return "pressure"
    if q == "temperature_c" and is_outdoor_temperature(q, info.equipment_kind):
        return "temperature"
    return None


def select_channels(channels: dict[str, ChannelData]) -> dict[str, ChannelData]:
    """Drop a counter channel when a rate channel of the same meter (id stem or
    equipment) is there: the rate has the time detail, the counter would double count."""
    rate_stems = {}
    for cid, ch in channels.items():
        info = ch.info
        if info.quantity in ("power_kw", "air_flow_m3min"):
            rate_stems.setdefault(info.quantity, set()).update({_stem(cid), info.equipment or cid})
    out = {}
    for cid, ch in channels.items():
        info = ch.info
        rate_q = {"energy_kwh": "power_kw", "air_volume_m3": "air_flow_m3min"}.get(info.quantity)
        if rate_q and ({_stem(cid), info.equipment or "\0"} & rate_stems.get(rate_q, set())):
            continue
        if role(info):
            out[cid] = ch
    # a counter whose rise equals a rate channel's energy over the same time is that
    # meter's other quantity, whatever the names (a logger's `有効電力` and `積算電力量`)
    for cq, rq in (("energy_kwh", "power_kw"), ("air_volume_m3", "air_flow_m3min")):
        counters = [c for c, ch in out.items() if ch.info.quantity == cq]
        rates = [c for c, ch in out.items() if ch.info.quantity == rq]
        if not counters or not rates or len(counters) * len(rates) > MAX_PAIRS:
            continue
        per_h = 3600.0 if cq == "energy_kwh" else 60.0
        for c in counters:
            if any(_integrates(out[c], out[r], per_h) for r in rates):
                del out[c]
    return out


MAX_PAIRS = 2500                # counters x rate channels compared at most (each is one pass over both)
SAME_METER_TOLERANCE = 0.03     # counter rise vs integrated rate over the common span


def _ok_ms(ch: ChannelData) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(ch.time)
    if np.issubdtype(t.dtype, np.datetime64):
        t = t.astype("datetime64[ms]").astype(np.int64)
    v = np.asarray(ch.value, np.float64)
    ok = np.isfinite(v)
    if ch.quality is not None:
        ok &= np.asarray(ch.quality) == Quality.OK
    return t[ok], v[ok]


def _integrates(counter: ChannelData, rate: ChannelData, per_h: float) -> bool:
    """True when the counter's rise over the span both cover equals the rate channel's
    integral over it within SAME_METER_TOLERANCE (resets and wraps are left out)."""
    tc, vc = _ok_ms(counter)
    tr, vr = _ok_ms(rate)
    if tc.size < 4 or tr.size < 4:
        return False
    lo, hi = max(int(tc[0]), int(tr[0])), min(int(tc[-1]), int(tr[-1]))
    if hi <= lo:
        return False
    mc = (tc >= lo) & (tc <= hi)
    d = np.diff(vc[mc])
    rise = float(d[d >= 0].sum())
    mr = (tr >= lo) & (tr < hi)
    t_r = tr[mr]
    if rise <= 0 or t_r.size < 3:
        return False
    dt_h = np.diff(np.append(t_r, hi)) / 3_600_000.0
    energy = float((vr[mr] * dt_h).sum()) * (3600.0 / per_h)
    return abs(energy - rise) <= SAME_METER_TOLERANCE * rise


class CachedCalendar:
    """A SiteCalendar that remembers its answers for identical time axes: meters polled
    together share timestamps, so 50 channels cost one classification, not 50."""

    def __init__(self, cal: SiteCalendar) -> None:
        self._cal = cal
        self._classified: dict[tuple, tuple] = {}
        self._types: dict[tuple[int, int], np.ndarray] = {}

    def __getattr__(self, name: str):
        return getattr(self._cal, name)

    def classify(self, times_utc: np.ndarray):
        t = np.asarray(times_utc)
        key = (t.size, t[0].item() if t.size else None, t[-1].item() if t.size else None)
        hit = self._classified.get(key)
        if hit is not None and np.array_equal(hit[0], t):
            return hit[1]
        out = self._cal.classify(t)
        self._classified[key] = (t, out)
        return out

    def classify_idle(self, t_ms: np.ndarray):
        """classify() plus the idle mask (outside production, breaks excluded), cached too."""
        key = ("idle", t_ms.size, int(t_ms[0]), int(t_ms[-1]))
        hit = self._classified.get(key)
        if hit is not None and np.array_equal(hit[0], t_ms):
            return hit[1]
        lt, day_type, prod = self.classify(t_ms.astype("datetime64[ms]"))
        out = (lt, day_type, prod, rs.idle_mask(self._cal, lt.minute, lt.weekday, day_type, prod))
        self._classified[key] = (t_ms, out)
        return out

    def day_types(self, first_day: int, last_day: int) -> np.ndarray:
        key = (first_day, last_day)
        if key not in self._types:
            self._types[key] = self._cal.day_types(first_day, last_day)
        return self._types[key]


def mean_rate(s: Series, mask: np.ndarray | None = None) -> float:
    w = s.dur_s if mask is None else (s.axis.w_prod if mask is s.production else s.dur_s * mask)
    tot = float(w.sum())
    return rs.wsum(s.rate, w) / tot if tot > 0 else 0.0


def production_share(s: Series) -> float:
    tot = float(s.dur_s.sum())
    return float(s.axis.w_prod.sum()) / tot if tot > 0 else 0.0


def end_ms(s: Series) -> int:
    """End of the last sample's interval."""
    return int(s.t_ms[-1] + s.dur_s[-1] * 1000.0)
