"""Hostile input for analytics/demand.py (hypothesis): irregular, unsorted, duplicated
times, NaN, counter drops; the fast and general paths against a brute-force
reference that splits each interval by its overlap with each period."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mieruka.analytics import demand as dm

T0 = 1_792_800_000_000          # 2026-10-24T22:00Z: Europe/Berlin's fall-back is 25 h later
P = 30 * 60_000


def reference(iv: dm.Intervals, tz: str, period_min: int) -> dict[int, tuple[float, float]]:
    """period start -> (kWh, covered s), by overlap of every interval with every period."""
    out: dict[int, list[float]] = {}
    p = period_min * 60_000
    for a, dur, e in zip(iv.a_ms.tolist(), iv.dur_ms.tolist(), iv.kwh.tolist()):
        b = a + dur
        s0 = int(dm.period_start_ms(np.array([a]), tz, period_min)[0])
        if b > s0 + 2 * p:
            continue                                   # spans more than one edge: a gap
        for s in (s0, s0 + p):
            lo, hi = max(a, s), min(b, s + p)
            if hi > lo:
                acc = out.setdefault(s, [0.0, 0.0])
                acc[0] += e * (hi - lo) / dur
                acc[1] += (hi - lo) / 1000
    return {k: (v[0], v[1]) for k, v in out.items()}


steps = st.lists(st.integers(min_value=1, max_value=900_000), min_size=2, max_size=300)


@settings(max_examples=60, deadline=None)
@given(steps=steps, seed=st.integers(0, 10_000),
       tz=st.sampled_from(["Asia/Tokyo", "Europe/Berlin", "Asia/Kathmandu"]),
       period=st.sampled_from([15, 30, 60]))
def test_period_sums_match_the_brute_force_split(steps, seed, tz, period):
    rng = np.random.default_rng(seed)
    t = T0 + np.cumsum(np.array(steps, np.int64))
    p = rng.uniform(0, 500, t.size)
    iv = dm.power_intervals(t, p)
    g, kwh, sec = dm.period_sums(iv, tz, period)
    ref = reference(iv, tz, period)
    got = {int(s): (k, c) for s, k, c in zip(g, kwh, sec) if c > 0}
    assert set(got) == set(ref)
    for s, (k, c) in ref.items():
        assert got[s][0] == pytest.approx(k, rel=1e-9, abs=1e-9)
        assert got[s][1] == pytest.approx(c, rel=1e-9, abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 200), seed=st.integers(0, 10_000), drops=st.integers(0, 5), nans=st.integers(0, 5),
       tz=st.sampled_from(["Asia/Tokyo", "Europe/Berlin", "Australia/Lord_Howe"]))
def test_hostile_counters_and_power_never_crash_and_stay_bounded(n, seed, drops, nans, tz):
    rng = np.random.default_rng(seed)
    t = T0 + rng.integers(0, 3 * 86_400_000, n)            # unsorted, duplicates possible
    e = np.cumsum(rng.uniform(0, 5, n))
    for i in rng.integers(0, max(n, 1), drops if n else 0):
        e[i:] -= rng.uniform(0, abs(e[i]) + 1)              # resets and odd drops
    p = rng.uniform(-10, 800, n)
    for i in rng.integers(0, max(n, 1), nans if n else 0):
        e[i] = np.nan
        p[i] = np.inf
    d = dm.demand_periods(tz, 30, counter=(t, e), power=(t, p))
    assert ((d.coverage >= 0) & (d.coverage <= 1)).all()
    assert np.isfinite(d.kw[d.coverage > 0]).all()
    assert len(d.start_ms) == len(np.unique(d.start_ms))
    months = dm.monthly_maxima(d)
    assert all(m.max_kw is None or np.isfinite(m.max_kw) for m in months)
    peaks = dm.top_peaks(d, 5)
    assert all(d.complete[np.searchsorted(d.start_ms, pk.start_ms)] for pk in peaks)
