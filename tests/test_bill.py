"""The electricity bill (analytics/bill.py) reproduced to the yen by hand, and its config."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from mieruka.analytics import bill as bm
from mieruka.analytics import demand as dm
from mieruka.errors import ConfigError
from mieruka.site import parse_site

BILL = {
    "basic_jpy_per_kw": 1815.0,
    "energy_rates": [
        {"band": "day", "hours": "08:00-22:00", "days": ["mon", "tue", "wed", "thu", "fri"], "holidays_too": False,
         "jpy_per_kwh": 20.31},
        {"band": "night", "jpy_per_kwh": 17.12},
    ],
    "fuel_adjustment_jpy_per_kwh": {"2026-04": -1.87},
    "renewable_levy_jpy_per_kwh": {"FY2026": 3.98, "2025": 3.49},
    "power_factor_pct": 85,
}


def site(bill=None, demand=None):
    data = {"site": {"name": "t"}, "bill": bill or BILL}
    if demand:
        data["demand"] = demand
    return parse_site(data, "site.toml")


def test_sample_bill_to_the_yen():
    # April 2026, 契約電力 186 kW, 力率 92 %, 24,567.5 kWh day + 9,876.5 kWh night:
    #   基本料金     186 x 1,815 x (185 - 92) / 100 = 337,590 x 0.93 = 313,958.7      -> 313,958
    #   電力量料金   24,567.5 x 20.31 = 498,965.925; 9,876.5 x 17.12 = 169,085.68
    #                sum 668,051.605                                                  -> 668,051
    #   燃料費調整額 34,444 x (-1.87) = -64,410.28 (cut toward zero)                    -> -64,410
    #   再エネ賦課金 34,444 x 3.98 (FY2026) = 137,087.12                                -> 137,087
    #   subtotal     313,958 + 668,051 - 64,410 + 137,087                             = 1,054,686
    #   消費税       1,054,686 x 10 % = 105,468.6                                      -> 105,468
    #   total                                                                         = 1,160,154
    b = bm.compute_bill("2026-04", 186.0, 92, {"day": 24_567.5, "night": 9_876.5}, {"day": 20.31, "night": 17.12},
                        site().bill)
    assert (b.basic_jpy, b.energy_jpy, b.fuel_adjustment_jpy, b.renewable_levy_jpy) == (313_958, 668_051, -64_410,
                                                                                          137_087)
    assert (b.subtotal_jpy, b.tax_jpy, b.total_jpy) == (1_054_686, 105_468, 1_160_154)
    assert b.energy_kwh == pytest.approx(34_444.0) and b.notes == []


def _ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp() * 1000)


def test_monthly_bill_from_demand_periods_with_measured_power_factor():
    # three half hours of April 2026 (Tokyo):
    #   Wed 04-01 10:00  186 kW -> 93 kWh, day band          kvarh 30.0
    #   Wed 04-29 10:00  100 kW -> 50 kWh, 昭和の日: night   kvarh 30.9
    #   Thu 04-02 02:00   40 kW -> 20 kWh, night             kvarh 100 (outside 08-22: not in 力率)
    # 力率 = 143 / sqrt(143^2 + 60.9^2) = 143 / 155.43 = 92.0 %                    -> 92
    # 契約電力 = 186 (data: 1 of 12 months; above the configured 150)
    #   基本料金     186 x 1,815 x 0.93 = 313,958.7                                -> 313,958
    #   電力量料金   93 x 20.31 + 70 x 17.12 = 1,888.83 + 1,198.40 = 3,087.23       -> 3,087
    #   燃料費調整額 163 x (-1.87) = -304.81                                       -> -304
    #   再エネ賦課金 163 x 3.98 = 648.74                                           -> 648
    #   subtotal 313,958 + 3,087 - 304 + 648 = 317,389; tax 31,738.9 -> 31,738; total 349,127
    starts = np.array([_ms("2026-04-01T10:00:00+09:00"), _ms("2026-04-02T02:00:00+09:00"),
                       _ms("2026-04-29T10:00:00+09:00")], np.int64)
    kwh = np.array([93.0, 20.0, 50.0])
    d = dm.DemandPeriods(starts, kwh * 2, kwh, np.ones(3), 30, "Asia/Tokyo")
    r = dm.DemandPeriods(starts, np.zeros(3), np.array([30.0, 100.0, 30.9]), np.ones(3), 30, "Asia/Tokyo")
    cfg = site()
    [b] = bm.monthly_bills(d, dm.monthly_maxima(d), cfg.bill, configured_contract_kw=150.0,
                           holidays={dt.date(2026, 4, 29)}, reactive=r)
    assert b.contract_kw == 186.0 and b.power_factor_pct == 92 and b.power_factor_measured
    assert b.energy_kwh_by_band == pytest.approx({"day": 93.0, "night": 70.0})
    assert (b.basic_jpy, b.energy_jpy, b.fuel_adjustment_jpy, b.renewable_levy_jpy) == (313_958, 3_087, -304, 648)
    assert (b.subtotal_jpy, b.tax_jpy, b.total_jpy) == (317_389, 31_738, 349_127)


def test_rounding_rules():
    assert bm.power_factor_pct(100.0, 0.0) == 100
    assert bm.power_factor_pct(3.0, 4.0) == 60                  # 3 / 5
    assert bm.power_factor_pct(0.855, 0.5186) == 86             # 85.501 % -> 86 (四捨五入)
    assert bm.basic_charge_jpy(100, 1000.0, 85) == 100_000
    assert bm.basic_charge_jpy(100, 1000.0, 85, used_energy=False) == 50_000   # no energy used: half
    assert bm.basic_charge_jpy(100, 1000.0, 100) == 85_000                     # 力率 100 %: 15 % off
    # 10 kW over the contract for 12 months at 1,815 円/kW, 力率 85 %, tax 10 %:
    # 10 x 1,815 x 1.00 x 12 x 1.10 = 239,580
    assert bm.new_peak_cost_jpy_12m(196.0, 186.0, 1815.0, 85, 0.10) == 239_580
    assert bm.new_peak_cost_jpy_12m(180.0, 186.0, 1815.0, 85, 0.10) == 0


def test_missing_fuel_adjustment_is_said_not_hidden():
    b = bm.compute_bill("2026-05", 100.0, 85, {"all": 1000.0}, {"all": 20.0}, site().bill)
    assert b.fuel_adjustment_jpy == 0 and any("2026-05" in n for n in b.notes)


@pytest.mark.parametrize("patch, expect", [
    ({"energy_rates": [{"band": "day", "hours": "08:00-22:00", "jpy_per_kwh": 20}]},
     "bill.energy_rates: no rate covers summer mon 00:00"),
    ({"fuel_adjustment_jpy_per_kwh": {"2026-13": 1.0}}, "bill.fuel_adjustment_jpy_per_kwh: '2026-13' is not a month"),
    ({"renewable_levy_jpy_per_kwh": {"26": 1.0}}, "bill.renewable_levy_jpy_per_kwh: '26' is not a fiscal year"),
    ({"power_factor_pct": 120}, "bill.power_factor_pct"),
    ({"basic_jpy_per_kw": -1}, "bill.basic_jpy_per_kw"),
])
def test_bill_config_errors_name_the_key(patch, expect):
    with pytest.raises(ConfigError) as e:
        site({**BILL, **patch})
    assert expect in str(e.value) and str(e.value).startswith("site.toml: ")


@pytest.mark.parametrize("demand, expect", [
    ({"period_min": 7}, "demand.period_min: 7 does not divide a day"),
    ({"alarm_stages": [0.9, 0.8]}, "demand.alarm_stages: stages must rise"),
    ({"target_kw": 0}, "demand.target_kw"),
    ({"contract": 100}, "demand.contract: unknown key"),
])
def test_demand_config_errors(demand, expect):
    with pytest.raises(ConfigError) as e:
        site(demand=demand)
    assert expect in str(e.value)


def test_japanese_keys_accepted():
    cfg = parse_site({"site": {"name": "t"}, "デマンド": {"契約電力": 300, "目標電力": 270, "デマンド時限": 30},
                      "電気料金": {"基本料金単価": 1800, "力率": 90}}, "site.toml")
    assert cfg.demand.contract_kw == 300 and cfg.demand.target_kw == 270
    assert cfg.bill.basic_jpy_per_kw == 1800 and cfg.bill.power_factor_pct == 90


def test_demand_channel_must_exist_and_be_power_or_energy():
    meters = [{"id": "m", "model": "sdm630", "channels": [
        {"id": "v", "quantity": "voltage_v", "register": "voltage_l1"},
        {"id": "p", "quantity": "power_kw", "register": "total_power"}]}]
    with pytest.raises(ConfigError, match="demand.channel: no channel with id 'x'"):
        parse_site({"site": {"name": "t"}, "meters": meters, "demand": {"channel": "x"}}, "site.toml")
    with pytest.raises(ConfigError, match="demand.channel: channel 'v' is voltage_v"):
        parse_site({"site": {"name": "t"}, "meters": meters, "demand": {"channel": "v"}}, "site.toml")
    assert parse_site({"site": {"name": "t"}, "meters": meters, "demand": {"channel": "p"}}).demand.channel == "p"


def test_peak_cut_measure_in_the_savings_plan_is_priced_through_the_bill():
    # two days of 1-minute data: the incomer draws 100 kW, except one half hour at
    # 200 kW when the furnace (metered) adds 100 kW.  Cutting that half hour down to the
    # 10th-highest level (100 kW) takes 100 kW off 契約電力:
    #   100 kW x 1,800 円/kW x (185 - 90)/100 x 12 months x 1.10 (tax) = 2,257,200 円/year
    from mieruka.analytics.co2 import CO2Engine
    from mieruka.analytics.pipeline import analyze, params_for_site
    from mieruka.calendar import SiteCalendar
    from mieruka.models import ChannelData, ChannelInfo

    t = (np.datetime64("2026-04-06T00:00", "ms") + np.arange(2 * 1440) * np.timedelta64(60_000, "ms"))
    spike = (t >= np.datetime64("2026-04-06T01:00", "ms")) & (t < np.datetime64("2026-04-06T01:30", "ms"))
    furnace = np.where(spike, 100.0, 0.0)
    chans = {"main": ChannelData(ChannelInfo("main", "power_kw", "kW", "incomer"), t, 100.0 + furnace),
             "furnace": ChannelData(ChannelInfo("furnace", "power_kw", "kW", "furnace"), t, furnace),
             # part of the 100 kW, around the clock by design: it cannot move out of the peak
             "freezer": ChannelData(ChannelInfo("freezer", "power_kw", "kW", "always_on"), t, np.full(t.size, 10.0))}
    cfg = parse_site({"site": {"name": "t"}, "bill": {"basic_jpy_per_kw": 1800, "power_factor_pct": 90}})
    res = analyze(chans, SiteCalendar.from_config(cfg), CO2Engine.from_site(cfg), params_for_site(cfg))
    m = next(x for x in res.plan if x.id == "peak_cut")
    assert m.demand_cost_jpy_per_year == 2_257_200 and m.cost_jpy_per_year == 2_257_200
    assert m.energy_kwh_per_year == 0 and m.target == "furnace"
    # without a [bill] the plan has no peak cut (nothing to price it with)
    res = analyze(chans, SiteCalendar.from_config(cfg), CO2Engine.from_site(cfg), params_for_site(None))
    assert all(x.id != "peak_cut" for x in res.plan)
