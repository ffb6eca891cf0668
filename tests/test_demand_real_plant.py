"""Demand and the measured power factor on a real plant year: DAEWOO Steel 2018
(UCI, CC BY 4.0), 15-minute kWh and lagging kvarh stamped at the interval END,
Asia/Seoul.  The kWh become an energy counter (as a utility meter reads it), the
kvarh a reactive counter; the answers are worked out independently from the CSV."""
from __future__ import annotations

import csv
import datetime as dt
import math
from pathlib import Path

import numpy as np
import pytest

from mieruka.analytics import bill as bm
from mieruka.analytics import demand as dm
from mieruka.analytics.demand_result import DemandSettings, compute_demand
from mieruka.models import ChannelData, ChannelInfo

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "steel_industry_2018.csv"


@pytest.fixture(scope="module")
def steel():
    if not DATA.exists():
        pytest.skip(f"{DATA} is not on this machine")
    with open(DATA, newline="") as f:
        rows = list(csv.reader(f))[1:]
    end_local = []
    for r in rows:
        d, hm = r[0].split(" ")
        dd, mm, yyyy = d.split("/")
        h, mi = hm.split(":")
        end_local.append(np.datetime64(f"{yyyy}-{mm}-{dd}T{int(h):02d}:{mi}", "ms"))
    end_local = np.array(end_local)
    back = np.nonzero(np.diff(end_local) <= np.timedelta64(0, "ms"))[0] + 1
    end_local[back] += np.timedelta64(1, "D")           # the last row ends at midnight of 1 January 2019
    kwh = np.array([float(r[1]) for r in rows])
    kvarh = np.array([float(r[2]) for r in rows])
    end_utc = end_local - np.timedelta64(9, "h")
    t = np.concatenate(([end_utc[0] - np.timedelta64(15, "m")], end_utc))
    return t, kwh, kvarh, end_local


def test_real_plant_demand_from_the_counter(steel):
    t, kwh, _, end_local = steel
    counter = np.concatenate(([0.0], np.cumsum(kwh)))
    chans = {"plant_kwh": ChannelData(ChannelInfo("plant_kwh", "energy_kwh", "kWh", "incomer"), t, counter)}
    comp = compute_demand(chans, "Asia/Seoul", DemandSettings())
    d = comp.periods
    assert len(d) == 365 * 48 and d.complete.all() and d.source == "counter"
    # independently: the two quarter hours ending at :15 and :30 (or :45 and :00) make a half hour
    pairs = kwh.reshape(-1, 2).sum(axis=1) * 2.0
    assert d.kw == pytest.approx(pairs, abs=1e-6)
    months = end_local.astype("datetime64[M]")[0::2]     # each pair's first quarter ends inside its month
    res = comp.result
    assert len(res["monthly"]) == 12
    for m in res["monthly"]:
        want = pairs[months == np.datetime64(m["month"])].max()
        assert m["max_kw"] == pytest.approx(want, abs=0.001)
    assert res["monthly"][-1]["contract_kw_12m"] == pytest.approx(pairs.max(), abs=0.001)
    assert res["summary"]["max_kw"] == pytest.approx(pairs.max(), abs=0.001)


def test_real_plant_power_factor_from_kvarh(steel):
    t, kwh, kvarh, end_local = steel
    tz = "Asia/Seoul"
    d = dm.demand_periods(tz, 30, counter=(t.astype(np.int64), np.concatenate(([0.0], np.cumsum(kwh)))))
    r = dm.demand_periods(tz, 30, counter=(t.astype(np.int64), np.concatenate(([0.0], np.cumsum(kvarh)))))
    pf = bm._measured_pf(d, r, type("B", (), {"power_factor_hours": "08:00-22:00"})())
    start_local = end_local - np.timedelta64(15, "m")
    hour = (start_local.astype("datetime64[h]") - start_local.astype("datetime64[D]")).astype(int)
    day_hours = (hour >= 8) & (hour < 22)
    months = start_local.astype("datetime64[M]")
    for m in np.unique(months):
        sel = day_hours & (months == m)
        p, q = kwh[sel].sum(), kvarh[sel].sum()
        want = math.floor(100 * p / math.hypot(p, q) + 0.5)
        assert pf[str(m)] == want, str(m)
    assert 60 <= min(pf.values()) and max(pf.values()) <= 100
