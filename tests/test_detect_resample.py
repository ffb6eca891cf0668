"""Sample handling every detector relies on: gaps are not integrated, counters
survive resets, unsorted and duplicate samples are cleaned."""
from __future__ import annotations

import numpy as np
import pytest

from mieruka.analytics import resample as rs

MIN = 60_000


def test_durations_never_bridge_a_gap():
    t = np.array([0, 1, 2, 3, 200, 201, 202], dtype=np.int64) * MIN      # a 197-minute hole
    d = rs.durations_s(t)
    assert d.tolist() == [60, 60, 60, 60, 60, 60, 60]
    p = np.full(t.size, 10.0)
    assert rs.wsum(p, d) / 3600 == pytest.approx(10.0 * 7 / 60)          # 7 minutes at 10 kW, not 3.4 h


def test_jittered_polling_is_integrated_exactly():
    rng = np.random.default_rng(1)
    t = np.cumsum(rng.integers(55_000, 65_000, 5000)).astype(np.int64)
    d = rs.durations_s(t)
    assert d[:-1].sum() == pytest.approx((t[-1] - t[0]) / 1000)


def test_counter_resets_and_gaps_give_no_rate():
    t = np.arange(10, dtype=np.int64) * MIN
    t[6:] += 60 * MIN                                                    # an hour missing before sample 6
    kwh = np.array([100, 101, 102, 103, 0.5, 1.5, 2.5, 3.5, 4.5, 5.5])  # reset after sample 3
    tt, kw = rs.counter_to_rate(t, kwh)
    assert np.allclose(kw, 60.0)                                         # 1 kWh per minute = 60 kW
    assert 3 * MIN not in tt.tolist() and 5 * MIN not in tt.tolist()    # the reset and the gap
    assert len(tt) == 7


def test_clean_series_sorts_dedups_and_drops_nan():
    t = np.array([3, 1, 2, 2, 4], dtype=np.int64) * MIN
    v = np.array([3.0, 1.0, 2.0, 2.5, np.nan])
    tt, vv = rs.clean_series(t, v)
    assert tt.tolist() == [MIN, 2 * MIN, 3 * MIN]
    assert vv.tolist() == [1.0, 2.5, 3.0]


def test_hourly_slots_keep_coverage():
    t = np.arange(0, 90, dtype=np.int64) * MIN                           # 1.5 hours of 1-min data
    mean = rs.hourly_mean(t, np.full(90, 5.0), rs.durations_s(t), 0, 2)
    assert mean[0] == pytest.approx(5.0) and mean[1] == pytest.approx(5.0)
    short = rs.hourly_mean(t[:70], np.full(70, 5.0), rs.durations_s(t[:70]), 0, 2)
    assert np.isnan(short[1])                                            # 10 minutes: under half measured
