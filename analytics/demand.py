"""Demand (デマンド): the mean kW of each 30-minute period, the months' maxima and
契約電力 (contract power) under the Japanese 実量制 rule.

A demand period is [start, start + period) aligned to :00/:30 (or every
`period_min` minutes) on the *site's* clock, so a zone with a non-hour offset
(+05:45, +09:30) or with DST still gets the periods its utility meter shows.
Its demand is the period's energy divided by its length (kWh × 60/period_min),
the way utility meters count it:

- from the incomer's energy counter when there is one: differences of the
  counter; a step down is a wrap when some plausible modulus (10^n kWh, 2^16/2^32
  counts at the usual scales) makes it a step like its neighbours, else a
  reset, whose step is unknown;
- else from power samples, each held until the next one (left Riemann sum), as
  everywhere in mieruka, but never across a gap longer than `max_gap_s`.

Each sample interval carries an amount of energy over [a, b); an interval that
straddles a period edge is split by time.  The seconds of a period that some
interval covers give its `coverage` (0..1).  When both a counter and a power
channel of the same meter exist, counter intervals that cannot be used (reset,
long gap across a period edge) are filled from the power samples, so the
counter's exactness is kept and a reset costs nothing.

A period with coverage below 1 keeps its estimate (mean over what was measured)
but is never a monthly maximum or a peak: one invented half hour would raise the
bill for a year.  契約電力 for a month is the highest demand of that month and
the 11 before it (高圧 contracts under 500 kW).

The live helpers (`period_bounds`, `predict_end_kw`, `alarm_stage`) are the same
arithmetic for a collector keeping the current period.

All times are int64 milliseconds since the epoch, UTC.  Pure: no store, no I/O.
"""
from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import asdict, dataclass, field

import numpy as np

# the period grid and the live current period live in the core (the collector uses them too)
from ..demand_period import (MS_PER_MIN, MS_PER_S, _TZ_PROBE_MS, LiveDemand, PeriodTracker,  # noqa: F401
                             _offsets_table, _period_starts, alarm_stage, period_bounds, period_start_ms,
                             predict_end_kw)

COMPLETE = 1.0 - 1e-9                    # coverage that counts as fully measured (float sums)


# ---------------------------------------------------------------- interval energies
class Intervals:
    """Energy over sample intervals [a, a + dur): the common form of counters and
    power.  `e × scale` is the kWh of each interval (power keeps kW·ms and scales
    the sums only, one pass less over a year of 1-s samples)."""

    def __init__(self, a_ms: np.ndarray, dur_ms: np.ndarray, e: np.ndarray, scale: float = 1.0) -> None:
        self.a_ms, self.dur_ms, self.e, self.scale = a_ms, dur_ms, e, scale

    @property
    def b_ms(self) -> np.ndarray:
        return self.a_ms + self.dur_ms

    @property
    def kwh(self) -> np.ndarray:
        return self.e * self.scale if self.scale != 1.0 else self.e

    def take(self, m: np.ndarray) -> "Intervals":
        return Intervals(self.a_ms[m], self.dur_ms[m], self.e[m], self.scale)


_MODULI = np.array(sorted({10.0 ** k for k in range(3, 11)} |
                          {m * s for m in (2.0 ** 16, 2.0 ** 32) for s in (1.0, 0.1, 0.01, 0.001)}))


def counter_intervals(t_ms: np.ndarray, kwh: np.ndarray, max_gap_s: float | None = None
                      ) -> tuple[Intervals, np.ndarray]:
    """Counter readings -> energy per interval, and a mask of the intervals whose
    energy is unknown (resets; wraps are undone when a modulus fits, see module doc).
    Long intervals are kept: a counter across a gap still knows the gap's energy,
    and `period_sums` uses it when the gap stays inside one period."""
    t = np.asarray(t_ms, np.int64)
    v = np.asarray(kwh, np.float64)
    d = np.diff(v)
    unknown = d < 0                          # drops (values are finite here)
    if unknown.any():
        d = d.copy()
        drops = np.flatnonzero(unknown)
        # a counter stepping down thousands of times is not wrapping: leave them unknown
        for i in (drops if drops.size <= 10_000 else drops[:0]):
            w = _wrap_step(v, d, i)
            if w is not None:
                d[i] = w
                unknown[i] = False
        d[unknown] = 0.0
    return Intervals(t[:-1], np.diff(t), d), unknown


def _wrap_step(v: np.ndarray, d: np.ndarray, i: int) -> float | None:
    """The step of a counter drop at interval i if a plausible modulus wrapped it."""
    prev, now = v[i], v[i + 1]
    if not (np.isfinite(prev) and np.isfinite(now)):
        return None
    near = np.concatenate([d[max(i - 5, 0):i], d[i + 1:i + 6]])
    near = near[np.isfinite(near) & (near >= 0)]
    if near.size == 0:
        return None
    limit = 3.0 * float(near.max()) + 1e-9
    for m in _MODULI:
        if prev < m and now < m:
            step = now + m - prev
            if 0 <= step <= limit:
                return float(step)
    return None


def power_intervals(t_ms: np.ndarray, kw: np.ndarray, max_gap_s: float | None = None) -> Intervals:
    """Power samples -> energy per interval: each sample holds until the next one, but
    across a gap longer than `max_gap_s` (default 5 nominal steps, at least 2 min)
    only for one nominal step."""
    t = np.asarray(t_ms, np.int64)
    p = np.asarray(kw, np.float64)
    if t.size == 0:
        return Intervals(t, t.copy(), p)
    dt_ms = np.empty(t.size, np.int64)
    np.subtract(t[1:], t[:-1], out=dt_ms[:-1])
    step_ms = int(np.median(dt_ms[:min(t.size - 1, 20_001)])) if t.size > 1 else 60_000
    step_ms = max(step_ms, 1)
    gap_ms = max(5 * step_ms, 120_000) if max_gap_s is None else int(max_gap_s * MS_PER_S)
    dt_ms[-1] = step_ms
    if dt_ms.max() > gap_ms:                      # one pass without a mask in the usual case
        dt_ms[dt_ms > gap_ms] = step_ms
    return Intervals(t, dt_ms, np.multiply(p, dt_ms), 1.0 / 3_600_000.0)


# ------------------------------------------------------------------------ the periods
@dataclass
class DemandPeriods:
    """Demand per period: UTC starts, kW (estimate over the measured part; NaN where
    nothing was measured), energy, coverage 0..1."""

    start_ms: np.ndarray
    kw: np.ndarray
    kwh: np.ndarray
    coverage: np.ndarray
    period_min: int
    timezone: str
    source: str = "power"                 # "counter", "power" or "counter+power"

    @property
    def complete(self) -> np.ndarray:
        return self.coverage >= COMPLETE

    def __len__(self) -> int:
        return len(self.start_ms)


def _grid(a_ms: np.ndarray, tz, period_min: int, start_ms: int | None, end_ms: int | None
          ) -> tuple[np.ndarray, np.ndarray]:
    """(period starts of every interval start, the sorted grid of period starts)."""
    ka, regular = _period_starts(a_ms, tz, period_min)
    p = period_min * MS_PER_MIN
    # the grid spans the data (intervals straddling the range's edges are split first)
    # and the range (periods without data show as not covered); callers trim it
    lo, hi = int(ka[0]), int(ka[-1])
    if start_ms is not None:
        lo = min(lo, int(period_start_ms(np.array([start_ms]), tz, period_min)[0]))
    if end_ms is not None:
        hi = max(hi, int(period_start_ms(np.array([end_ms - 1]), tz, period_min)[0]))
    # a regular UTC grid, plus any period start a DST shift of a non-multiple offset adds
    grid = np.arange(lo, hi + p, p, dtype=np.int64)
    extra = ka[:0] if regular else np.setdiff1d(ka[(ka >= lo) & (ka <= hi)], grid)
    if extra.size:
        grid = np.union1d(grid, extra)
    return ka, grid


def period_sums(iv: Intervals, tz, period_min: int = 30, start_ms: int | None = None, end_ms: int | None = None,
                usable: np.ndarray | None = None, grid: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(grid of period starts, kWh per period, covered seconds per period) from
    interval energies.  An interval inside one period counts whole; one crossing a
    single period edge is split by time; one spanning more is left out (a gap)."""
    p = period_min * MS_PER_MIN
    n = iv.a_ms.size
    if n == 0:
        g = grid if grid is not None else np.empty(0, np.int64)
        return g, np.zeros(g.size), np.zeros(g.size)
    if usable is not None and not usable.all():
        iv = iv.take(usable)
        if iv.a_ms.size == 0:
            g = grid if grid is not None else np.empty(0, np.int64)
            return g, np.zeros(g.size), np.zeros(g.size)
    fast = _fast_sums(iv, tz, p, start_ms, end_ms, grid)
    if fast is not None:
        return fast
    ka, g = _grid(iv.a_ms, tz, period_min, start_ms, end_ms)
    iv_kwh, iv_b = iv.kwh, iv.b_ms
    if grid is not None:
        g = grid
    kwh = np.zeros(g.size)
    sec = np.zeros(g.size)
    end_a = ka + p
    cross = iv_b > end_a
    inside = ~cross
    if g.size and (g.size == 1 or bool(np.all(np.diff(g) == p))):     # regular grid: arithmetic
        ia = (ka - g[0]) // p
        ok = (ia >= 0) & (ia < g.size)
        if not ok.all():
            ia = np.where(ok, ia, 0)
    else:
        ia = np.minimum(np.searchsorted(g, ka), max(g.size - 1, 0))
        ok = g[ia] == ka if g.size else np.zeros(ka.size, bool)
    dur_s = (iv_b - iv.a_ms) * (1.0 / MS_PER_S)
    if not cross.any() and ok.all():
        starts = np.flatnonzero(np.r_[True, ia[1:] != ia[:-1]]) if np.all(ia[1:] >= ia[:-1]) else None
        if starts is not None:                        # sorted: sums over runs
            kwh[ia[starts]] = np.add.reduceat(iv_kwh, starts)
            sec[ia[starts]] = np.add.reduceat(dur_s, starts)
            return g, kwh, sec
    m = inside & ok
    _bin_add(kwh, ia[m], iv_kwh[m])
    _bin_add(sec, ia[m], dur_s[m])
    if cross.any():
        c = np.flatnonzero(cross & ok)
        b_end = end_a[c] + p
        two = iv_b[c] <= b_end                     # crosses exactly one edge
        c = c[two]
        ib = ia[c] + 1
        okb = (ib < g.size)
        okb[okb] = g[ib[okb]] == end_a[c][okb]
        c, ib = c[okb], ib[okb]
        frac = (end_a[c] - iv.a_ms[c]) / (iv_b[c] - iv.a_ms[c])
        _bin_add(kwh, ia[c], iv_kwh[c] * frac)
        _bin_add(kwh, ib, iv_kwh[c] * (1 - frac))
        _bin_add(sec, ia[c], (end_a[c] - iv.a_ms[c]) / MS_PER_S)
        _bin_add(sec, ib, (iv_b[c] - end_a[c]) / MS_PER_S)
    return g, kwh, sec


def _fast_sums(iv: Intervals, tz, p: int, start_ms: int | None, end_ms: int | None, grid: np.ndarray | None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The one-pass path for time-sorted intervals (callers sort) on a regular grid
    (one UTC offset modulo the period over the span: every zone but the rare
    non-multiple DST shifts).  Where each period's samples start is a binary search
    of the period edges; intervals never overlap, so only the last interval of each
    period can cross an edge: those few are split afterwards.  None: not applicable."""
    a = iv.a_ms
    z = zoneinfo.ZoneInfo(tz) if isinstance(tz, str) else tz
    if a.size == 0 or a[-1] < a[0]:
        return None
    _, table = _offsets_table(int(a[0]), int(a[-1]), z)
    shifts = np.unique(table % p)
    if shifts.size != 1:
        return None
    s = int(shifts[0])
    lo, hi = (int(a[0]) + s) // p, (int(a[-1]) + s) // p
    if int(a[-1]) + int(iv.dur_ms[-1]) > (hi + 1) * p - s:
        hi += 1                                           # the last interval runs into the next period
    if start_ms is not None:
        lo = min(lo, (start_ms + s) // p)
    if end_ms is not None:
        hi = max(hi, (end_ms - 1 + s) // p)
    g = np.arange(lo, hi + 1, dtype=np.int64) * p - s if grid is None else grid
    if g.size == 0 or not bool(np.all(np.diff(g) == p)) or (int(g[0]) + s) % p:
        return None
    edges = np.concatenate((g, [g[-1] + p]))
    idx = np.searchsorted(a, edges)                       # first sample of each period
    full = idx[:-1] < idx[1:]
    starts = idx[:-1][full]
    kwh = np.zeros(g.size)
    sec = np.zeros(g.size)
    if starts.size == 0:
        return g, kwh, sec
    if idx[0] > 0 or idx[-1] < a.size:                   # samples outside the grid: leave them out
        first, stop = int(idx[0]), int(idx[-1])
        a, dur, e = a[first:stop], iv.dur_ms[first:stop], iv.e[first:stop]
        starts = starts - first
    else:
        dur, e = iv.dur_ms, iv.e
    where = np.flatnonzero(full)
    kwh[where] = np.add.reduceat(e, starts) * iv.scale
    sec[where] = np.add.reduceat(dur, starts).astype(np.float64) / MS_PER_S
    last = np.concatenate((starts[1:] - 1, [a.size - 1]))
    over = (a[last] + dur[last]) - edges[where + 1]          # ms past the period's end
    x = np.flatnonzero(over > 0)
    if x.size:
        if (over[x] > p).any():
            return None                                    # intervals longer than a period: general path
        moved = e[last[x]] * (over[x] / dur[last[x]]) * iv.scale
        w = where[x]
        kwh[w] -= moved
        sec[w] -= over[x] / MS_PER_S
        nxt = w + 1
        ok = nxt < g.size
        np.add.at(kwh, nxt[ok], moved[ok])
        np.add.at(sec, nxt[ok], over[x][ok] / MS_PER_S)
    return g, kwh, sec


def _bin_add(out: np.ndarray, idx: np.ndarray, w: np.ndarray) -> None:
    if idx.size:
        out += np.bincount(idx, weights=w, minlength=out.size)[:out.size]


def demand_periods(tz: str, period_min: int = 30, *, counter: tuple[np.ndarray, np.ndarray] | None = None,
                   power: tuple[np.ndarray, np.ndarray] | None = None, start_ms: int | None = None,
                   end_ms: int | None = None, max_gap_s: float | None = None) -> DemandPeriods:
    """Demand per period from an energy counter (times ms, kWh) and/or power samples
    (times ms, kW) of the same meter, inside [start_ms, end_ms) when given (see the
    module doc for the rules)."""
    if period_min <= 0 or (1440 % period_min and period_min % 1440):
        raise ValueError(f"period_min {period_min}: use a divisor of a day (e.g. 15, 30, 60)")
    p_s = period_min * 60.0
    src = []
    grid = kwh = sec = None
    counter = _clean(*counter) if counter is not None else None
    power = _clean(*power) if power is not None else None
    if counter is not None and counter[0].size >= 2:
        t, v = counter
        iv, unknown = counter_intervals(t, v, max_gap_s)
        # a long counter interval is exact when it stays inside one period; across an
        # edge its split is a guess: leave it (and resets) to the power samples
        p = period_min * MS_PER_MIN
        bad = unknown
        long = np.flatnonzero(iv.dur_ms > _gap_ms(iv.dur_ms, max_gap_s))
        if long.size:
            a_l = iv.a_ms[long]
            cross = a_l + iv.dur_ms[long] > period_start_ms(a_l, tz, period_min) + p
            if cross.any():
                bad = unknown.copy()
                bad[long[cross]] = True
        usable = ~bad if bad.any() else np.ones(0, bool)
        grid, kwh, sec = period_sums(iv, tz, period_min, start_ms, end_ms, usable if usable.size else None)
        if not usable.size:
            usable = np.ones(iv.a_ms.size, bool)
        src.append("counter")
        if power is not None and power[0].size:
            pt, pv = power
            piv = power_intervals(pt, pv, max_gap_s)
            # holes: unusable counter steps, and the time before and after the counter's readings
            big = np.iinfo(np.int64).max // 2
            ha = np.r_[-big, iv.a_ms[~usable], t[-1]]
            hb = np.r_[t[0], iv.b_ms[~usable], big]
            fill = _within(piv, ha, hb)
            if fill.any():
                _, k2, s2 = period_sums(piv.take(fill), tz, period_min,
                                        grid=grid)
                kwh, sec = kwh + k2, sec + s2
                src.append("power")
    elif power is not None and power[0].size:
        t, v = power
        grid, kwh, sec = period_sums(power_intervals(t, v, max_gap_s), tz, period_min, start_ms, end_ms)
        src.append("power")
    if grid is None:
        e = np.empty(0)
        return DemandPeriods(np.empty(0, np.int64), e, e, e, period_min, str(tz), "+".join(src) or "none")
    if start_ms is not None or end_ms is not None:
        lo = -np.inf if start_ms is None else start_ms
        hi = np.inf if end_ms is None else end_ms
        keep = (grid >= lo) & (grid < hi)
        grid, kwh, sec = grid[keep], kwh[keep], sec[keep]
    cov = np.minimum(sec / p_s, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        kw = np.where(sec > 0, kwh * 3600.0 / sec, np.nan)
    # a fully covered period is energy over the period's length, exactly as meters count
    full = cov >= COMPLETE
    kw[full] = kwh[full] * 3600.0 / p_s
    return DemandPeriods(grid, kw, kwh, cov, period_min, str(tz), "+".join(src))


def _gap_ms(dur_ms: np.ndarray, max_gap_s: float | None) -> float:
    """Longest step taken as continuous: 5 nominal steps, at least 2 minutes."""
    if max_gap_s is not None:
        return max_gap_s * MS_PER_S
    step = float(np.median(dur_ms[:20_001])) if dur_ms.size else 60_000.0
    return max(5 * step, 120_000.0)


def _within(iv: Intervals, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Power intervals whose start lies inside one of the [a, b) holes."""
    order = np.argsort(a)
    a, b = a[order], b[order]
    i = np.searchsorted(a, iv.a_ms, side="right") - 1
    m = i >= 0
    m[m] = iv.a_ms[m] < b[i[m]]
    return m


def _clean(t, v) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(t)
    if np.issubdtype(t.dtype, np.datetime64):
        t = t.astype("datetime64[ms]").astype(np.int64)
    t = t.astype(np.int64, copy=False)
    v = np.asarray(v, np.float64)
    ok = np.isfinite(v)
    if not ok.all():
        t, v = t[ok], v[ok]
    if t.size > 1 and not np.greater(t[1:], t[:-1]).all():
        o = np.argsort(t, kind="stable")
        t, v = t[o], v[o]
        keep = np.r_[t[1:] != t[:-1], True]
        t, v = t[keep], v[keep]
    return t, v


# ------------------------------------------------------------------ months and peaks
@dataclass
class MonthMax:
    month: str                  # "YYYY-MM" in the site's zone
    max_kw: float | None        # None: no fully measured period in the month
    at_ms: int | None
    contract_kw_12m: float | None
    complete_periods: int = 0
    periods: int = 0


def local_months(start_ms: np.ndarray, tz: str) -> np.ndarray:
    """'YYYY-MM' (site zone) of each period start."""
    z = zoneinfo.ZoneInfo(tz)
    if start_ms.size == 0:
        return np.empty(0, "<U7")
    g0, table = _offsets_table(int(start_ms.min()), int(start_ms.max()), z)
    local = start_ms + table[(start_ms - g0) // _TZ_PROBE_MS]
    return np.datetime_as_string(local.astype("datetime64[ms]").astype("datetime64[M]"), unit="M")


def monthly_maxima(d: DemandPeriods) -> list[MonthMax]:
    """Highest fully measured demand of each local month, and 契約電力 = the highest of
    that month and the 11 before it (months without data count as nothing)."""
    months = local_months(d.start_ms, d.timezone)
    out: list[MonthMax] = []
    if months.size == 0:
        return out
    names, first, counts = np.unique(months, return_index=True, return_counts=True)
    kw = np.where(d.complete, d.kw, -np.inf)
    for name, i0, n in zip(names, first, counts):
        seg = kw[i0:i0 + n]
        j = int(np.argmax(seg))
        ok = np.isfinite(seg[j])
        out.append(MonthMax(str(name), float(seg[j]) if ok else None, int(d.start_ms[i0 + j]) if ok else None, None,
                            int(np.isfinite(seg).sum()), int(n)))
    for m in out:
        y, mo = int(m.month[:4]), int(m.month[5:])
        window = {f"{(y * 12 + mo - 1 - k) // 12:04d}-{(y * 12 + mo - 1 - k) % 12 + 1:02d}" for k in range(12)}
        vals = [x.max_kw for x in out if x.month in window and x.max_kw is not None]
        m.contract_kw_12m = max(vals) if vals else None
    return out


@dataclass
class Peak:
    start_ms: int
    kw: float
    shares: dict[str, float] = field(default_factory=dict)


def top_peaks(d: DemandPeriods, n: int = 10, breakers: dict[str, np.ndarray] | None = None) -> list[Peak]:
    """The n highest fully measured periods, highest first (ties: earlier first), with
    each breaker's share of the period's energy (`breakers`: channel -> kWh per period
    on the same grid, NaN where unknown)."""
    ok = np.flatnonzero(d.complete & np.isfinite(d.kw))
    if ok.size == 0 or n <= 0:
        return []
    order = ok[np.lexsort((d.start_ms[ok], -d.kw[ok]))][:n]
    out = []
    for i in order:
        shares = {}
        for cid, e in (breakers or {}).items():
            if d.kwh[i] > 0 and np.isfinite(e[i]):
                shares[cid] = float(e[i] / d.kwh[i])
        out.append(Peak(int(d.start_ms[i]), float(d.kw[i]), dict(sorted(shares.items(), key=lambda kv: -kv[1]))))
    return out


def periods_over(d: DemandPeriods, kw: float | None) -> int:
    """Fully measured periods whose demand exceeds `kw`."""
    if kw is None:
        return 0
    return int(np.count_nonzero(d.complete & (d.kw > kw)))


# ------------------------------------------------------------------ peak cut / shift
@dataclass
class PeakCut:
    """Cutting the highest periods down to the level of the `keep`-th highest: the kW
    that would come off 契約電力 and what ran in the periods to cut."""

    from_kw: float
    to_kw: float
    cut_kw: float
    periods: int                 # how many periods are above `to_kw`
    movable: dict[str, float]    # breaker -> mean kW it drew in those periods


def peak_cut(d: DemandPeriods, keep: int = 10, breakers: dict[str, np.ndarray] | None = None) -> PeakCut | None:
    """The contract reduction reachable by moving the load of the periods above the
    `keep`-th highest demand (what ran there is listed by breaker, in kW)."""
    ok = np.flatnonzero(d.complete & np.isfinite(d.kw))
    if ok.size <= keep:
        return None
    kw = np.sort(d.kw[ok])[::-1]
    top, level = float(kw[0]), float(kw[keep])
    above = ok[d.kw[ok] > level]
    h = d.period_min / 60.0
    movable = {}
    for cid, e in (breakers or {}).items():
        v = e[above]
        v = v[np.isfinite(v)]
        if v.size:
            movable[cid] = float(v.mean() / h)
    return PeakCut(top, level, top - level, int(above.size), dict(sorted(movable.items(), key=lambda kv: -kv[1])))
