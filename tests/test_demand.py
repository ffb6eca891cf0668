"""analytics/demand.py on small hand-made arrays with answers worked out by hand."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from mieruka.analytics import demand as dm

MIN = 60_000


def ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp() * 1000)


def minutes(start: str, n: int, step_min: float = 1.0) -> np.ndarray:
    return ms(start) + (np.arange(n) * step_min * MIN).astype(np.int64)


def test_power_mean_per_period_on_the_site_clock():
    # 09:00-11:00 JST, 100 kW except 200 kW from 09:30 to 10:00: demands 100, 200, 100, 100
    t = minutes("2026-04-01T09:00:00+09:00", 120)
    p = np.full(120, 100.0)
    p[30:60] = 200.0
    d = dm.demand_periods("Asia/Tokyo", 30, power=(t, p))
    assert d.kw.tolist() == pytest.approx([100, 200, 100, 100])
    assert d.coverage.tolist() == [1, 1, 1, 1]
    assert d.start_ms[0] == ms("2026-04-01T09:00:00+09:00")


def test_counter_delta_times_two_and_split_at_edges():
    # a counter read every 7 minutes from 08:58: 120 kW constant -> 2 kWh/min
    t = minutes("2026-04-01T08:58:00+09:00", 12, 7)
    e = 5000.0 + 2.0 * (t - t[0]) / MIN
    d = dm.demand_periods("Asia/Tokyo", 30, counter=(t, e),
                          start_ms=ms("2026-04-01T09:00:00+09:00"), end_ms=ms("2026-04-01T10:00:00+09:00"))
    # the 08:58-09:05 step is split: 2 of its 7 minutes fall before 09:00
    assert d.kw.tolist() == pytest.approx([120.0, 120.0])
    assert d.complete.all()
    assert d.source == "counter"


def test_counter_wrap_is_undone_and_reset_is_not_guessed():
    t = minutes("2026-04-01T09:00:00+09:00", 61)
    e = 9990.0 + np.arange(61) * 1.0                # 60 kW; wraps at 10,000 kWh at 09:10
    d = dm.demand_periods("Asia/Tokyo", 30, counter=(t, np.mod(e, 10_000.0)))
    assert d.kw.tolist() == pytest.approx([60.0, 60.0])
    reset = e.copy()
    reset[40:] -= reset[40]                          # cleared at 09:40: the 09:39-09:40 kWh are unknown
    d = dm.demand_periods("Asia/Tokyo", 30, counter=(t, reset))
    assert d.coverage[0] == 1.0 and d.coverage[1] == pytest.approx(29 / 30)
    assert not d.complete[1]
    assert d.kw[1] == pytest.approx(60.0)          # the estimate over what was measured
    # with the meter's power samples the hole is filled and the period is exact again
    d = dm.demand_periods("Asia/Tokyo", 30, counter=(t, reset), power=(t, np.full(61, 60.0)))
    assert d.complete.all() and d.kw.tolist() == pytest.approx([60.0, 60.0])
    assert d.source == "counter+power"


def test_counter_across_a_gap_inside_one_period_is_exact():
    t = minutes("2026-04-01T09:00:00+09:00", 31)
    e = np.arange(31) * 1.5                          # 90 kW
    keep = np.r_[0:5, 25:31]                         # 20 minutes without readings, all inside 09:00-09:30
    d = dm.demand_periods("Asia/Tokyo", 30, counter=(t[keep], e[keep]))
    assert d.complete[0] and d.kw[0] == pytest.approx(90.0)


def test_power_gap_lowers_coverage_and_is_never_a_peak():
    t = minutes("2026-04-01T09:00:00+09:00", 90)
    p = np.full(90, 100.0)
    p[30:60] = 300.0                                  # the highest period ...
    keep = np.r_[0:30, 30:40, 50:90]                  # ... lost 10 minutes (longer than the 2-minute hold)
    d = dm.demand_periods("Asia/Tokyo", 30, power=(t[keep], p[keep]))
    assert d.coverage[1] == pytest.approx(20 / 30)
    assert d.kw[1] == pytest.approx(300.0)
    months = dm.monthly_maxima(d)
    assert months[0].max_kw == pytest.approx(100.0)
    assert [pk.kw for pk in dm.top_peaks(d, 5)] == pytest.approx([100.0, 100.0])


def test_non_hour_offset_zone_aligns_to_local_half_hours():
    # Kathmandu is UTC+05:45: local :00/:30 are UTC :15/:45
    t = minutes("2026-04-01T00:00:00+00:00", 60)
    d = dm.demand_periods("Asia/Kathmandu", 30, power=(t, np.full(60, 10.0)))
    starts = [dt.datetime.fromtimestamp(s / 1000, dt.timezone.utc).strftime("%H:%M") for s in d.start_ms]
    assert starts == ["23:45", "00:15", "00:45"]
    assert d.coverage.tolist() == pytest.approx([0.5, 1.0, 0.5])


def test_dst_fall_back_day_has_fifty_half_hours():
    # Europe/Berlin 2026-10-25: 02:00-03:00 local twice
    t0 = ms("2026-10-25T00:00:00+02:00")
    t = t0 + np.arange(25 * 60, dtype=np.int64) * MIN
    d = dm.demand_periods("Europe/Berlin", 30, power=(t, np.full(t.size, 50.0)))
    assert len(d) == 50 and d.complete.all()
    months = dm.local_months(d.start_ms, "Europe/Berlin")
    assert set(months.tolist()) == {"2026-10"}


def test_dst_spring_forward_day_has_forty_six_half_hours():
    # Europe/Berlin 2026-03-29: 02:00-03:00 local does not exist
    t0 = ms("2026-03-29T00:00:00+01:00")
    t = t0 + np.arange(23 * 60, dtype=np.int64) * MIN
    d = dm.demand_periods("Europe/Berlin", 30, power=(t, np.full(t.size, 50.0)))
    assert len(d) == 46 and d.complete.all()
    starts = [dt.datetime.fromtimestamp(s / 1000, dt.timezone.utc).astimezone(
        __import__("zoneinfo").ZoneInfo("Europe/Berlin")).strftime("%H:%M") for s in d.start_ms[3:6]]
    assert starts == ["01:30", "03:00", "03:30"]


def test_fifteen_minute_periods():
    t = minutes("2026-04-01T09:00:00+09:00", 30)
    p = np.r_[np.full(15, 40.0), np.full(15, 80.0)]
    d = dm.demand_periods("Asia/Tokyo", 15, power=(t, p))
    assert d.kw.tolist() == pytest.approx([40.0, 80.0])


def test_contract_is_the_highest_of_the_month_and_the_eleven_before():
    # one 30-minute period per month, Jan 2025 .. Mar 2026 with known demands
    kws = [100, 120, 110, 300, 90, 95, 100, 100, 100, 100, 100, 100, 100, 100, 105]
    starts = [ms(f"{2025 + (i // 12)}-{i % 12 + 1:02d}-10T10:00:00+09:00") for i in range(15)]
    d = dm.DemandPeriods(np.array(starts, np.int64), np.array(kws, float), np.array(kws, float) / 2,
                         np.ones(15), 30, "Asia/Tokyo")
    months = dm.monthly_maxima(d)
    c = {m.month: m.contract_kw_12m for m in months}
    assert c["2025-03"] == 120 and c["2025-04"] == 300
    assert c["2026-03"] == 300                # April 2025 is still among the 12 months
    assert c.get("2026-04") is None
    d2 = dm.DemandPeriods(np.r_[d.start_ms, ms("2026-04-10T10:00:00+09:00")], np.r_[d.kw, 101.0],
                          np.r_[d.kwh, 50.5], np.ones(16), 30, "Asia/Tokyo")
    assert {m.month: m.contract_kw_12m for m in dm.monthly_maxima(d2)}["2026-04"] == 105   # April 2025 dropped out


def test_peaks_with_breaker_shares_and_peak_cut():
    t = minutes("2026-04-01T09:00:00+09:00", 120)
    p = np.full(120, 100.0)
    p[60:90] = 160.0
    d = dm.demand_periods("Asia/Tokyo", 30, power=(t, p))
    furnace = np.array([10.0, 10.0, 40.0, 10.0])      # kWh per period
    peaks = dm.top_peaks(d, 2, {"furnace": furnace})
    assert peaks[0].kw == pytest.approx(160.0) and peaks[0].start_ms == ms("2026-04-01T10:00:00+09:00")
    assert peaks[0].shares["furnace"] == pytest.approx(40.0 / 80.0)
    cut = dm.peak_cut(d, 1, {"furnace": furnace})
    assert cut.cut_kw == pytest.approx(60.0) and cut.periods == 1
    assert cut.movable["furnace"] == pytest.approx(80.0)          # 40 kWh in half an hour


def test_live_prediction_and_stages():
    # 10 minutes in: 50 kWh so far, 240 kW now -> 50 + 240 x 20/60 = 130 kWh -> 260 kW
    assert dm.predict_end_kw(50.0, 240.0, 600.0, 1800.0) == pytest.approx(260.0)
    assert dm.predict_end_kw(100.0, 999.0, 1800.0, 1800.0) == pytest.approx(200.0)
    assert [dm.alarm_stage(x, 300, [0.8, 0.9, 1.0]) for x in (200, 240, 275, 300, 400)] == [0, 1, 2, 3, 3]
    assert dm.alarm_stage(500, None) == 0
    s, e = dm.period_bounds(ms("2026-04-01T09:47:13+09:00"), "Asia/Tokyo")
    assert (s, e) == (ms("2026-04-01T09:30:00+09:00"), ms("2026-04-01T10:00:00+09:00"))


def test_period_tracker_live():
    # 1-minute power readings from 09:20: 120 kW, then 240 kW from 09:40; target 200 kW
    tr = dm.PeriodTracker("Asia/Tokyo", 30, target_kw=200, stages=[0.8, 0.9, 1.0])
    t0 = ms("2026-04-01T09:20:00+09:00")
    done = []
    for k in range(41):                                  # 09:20 .. 10:00
        kw = 120.0 if k < 20 else 240.0
        r = tr.update(t0 + k * MIN, kw=kw)
        if r:
            done.append(r)
    # the 09:00 period: measured from 09:20 only -> coverage 1/3, 120 kW over what was measured
    (start, kw, cov), second = done
    assert start == ms("2026-04-01T09:00:00+09:00") and cov == pytest.approx(1 / 3)
    assert kw == pytest.approx(120.0 / 3)               # energy over the whole period's length
    # 09:30-10:00: 10 min at 120 kW + 20 min at 240 kW = 20 + 80 kWh -> 200 kW, fully measured
    assert second == (ms("2026-04-01T09:30:00+09:00"), pytest.approx(200.0), pytest.approx(1.0))
    # 09:30 period at 10:00 - not closed yet; at 09:45 the prediction was:
    tr2 = dm.PeriodTracker("Asia/Tokyo", 30, target_kw=200)
    for k in range(16):                                  # 09:30 .. 09:45, 10 min at 120 then 240
        tr2.update(ms("2026-04-01T09:30:00+09:00") + k * MIN, kw=120.0 if k < 10 else 240.0)
    st = tr2.status()
    # energy: 10 min x 120 + 5 min x 240 = 20 + 20 = 40 kWh; + 240 kW x 15 min = 60 -> 100 kWh -> 200 kW
    assert st.energy_kwh == pytest.approx(40.0) and st.predicted_kw == pytest.approx(200.0) and st.stage == 3
    # a counter feeds the same: 2 kWh/min = 120 kW; a reset counts nothing for its step
    tr3 = dm.PeriodTracker("Asia/Tokyo", 30)
    c, out = 1000.0, []
    for k in range(31):
        if k == 10:
            c = 0.0                                       # cleared
        out.append(tr3.update(ms("2026-04-01T10:00:00+09:00") + k * MIN, counter_kwh=c))
        c += 2.0
    # 29 steps of 2 kWh (the reset step counts nothing): 58 kWh -> 116 kW, 29/30 measured
    assert out[-1] == (ms("2026-04-01T10:00:00+09:00"), pytest.approx(116.0), pytest.approx(29 / 30))
    assert tr3.start_ms == ms("2026-04-01T10:30:00+09:00")


def test_the_only_meter_of_a_recording_is_the_demand_channel():
    """A logger's export of one meter (no equipment kind) is the site's meter: demand
    refused it ('no site-total channel') although there was nothing else to take."""
    from mieruka.analytics.demand_result import DemandInputError, DemandSettings, choose_channel
    from mieruka.models import ChannelInfo
    one = {"usage": ChannelInfo("usage", "power_kw", "kW")}
    assert choose_channel(one, DemandSettings()) == "usage"
    # a power channel and its own counter: the power channel
    pair = one | {"usage_kwh": ChannelInfo("usage_kwh", "energy_kwh", "kWh")}
    assert choose_channel(pair, DemandSettings()) == "usage"
    assert choose_channel({"c": ChannelInfo("c", "energy_kwh", "kWh")}, DemandSettings()) == "c"
    # several meters, or one labelled as a machine: which is the site is not known
    for infos in ({"a": ChannelInfo("a", "power_kw", "kW"), "b": ChannelInfo("b", "power_kw", "kW")},
                  {"press": ChannelInfo("press", "power_kw", "kW", "press")}):
        with pytest.raises(DemandInputError, match="no site-total channel.*--channel.*power/energy channels: "):
            choose_channel(infos, DemandSettings())


def test_demand_and_bill_warn_when_the_recording_is_from_another_zone(tmp_path):
    """Demand periods, months and time bands follow the site zone: a New York recording
    read as Asia/Tokyo put its peaks at 01:00; say so, and --timezone auto takes the zone."""
    import subprocess
    import sys
    import zoneinfo
    ny = zoneinfo.ZoneInfo("America/New_York")
    t0 = dt.datetime(2024, 7, 1, tzinfo=ny)
    rows = ["time,channel,quantity,value"]
    for k in range(3 * 48):
        t = t0 + dt.timedelta(minutes=30 * k)
        rows.append(f"{t.isoformat()},main,power_kw,{100.0 if t.hour == 14 else 20.0}")
    rec = tmp_path / "ny.csv"
    rec.write_text("\n".join(rows) + "\n")
    run = lambda *a: subprocess.run([sys.executable, "-m", "mieruka.cli", "demand", str(rec), *a],   # noqa: E731
                                    capture_output=True, text=True, timeout=120)
    r = run()
    assert r.returncode == 0 and "do not fit Asia/Tokyo; they suggest America/New_York" in r.stderr
    r = run("--timezone", "auto", "--json")
    assert r.returncode == 0, r.stderr
    import json
    d = json.loads(r.stdout)
    assert d["timezone"] == "America/New_York"
    assert d["peaks"][0]["start"].startswith("2024-07-0") and "T14:00:00-04:00" in d["peaks"][0]["start"]
