"""The CO2 engine on public worked examples; expected figures computed by hand here."""
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mieruka.analytics.co2 import CO2Engine
from mieruka.energy import normalize_energy
from mieruka.errors import ConfigError
from mieruka.models import Finding
from mieruka.site import parse_site

JST = ZoneInfo("Asia/Tokyo")


@pytest.fixture(scope="module")
def shk():
    return CO2Engine("shk_2023")


def test_worked_examples_shk_2023(shk):
    assert shk.price("kerosene", 1000, "L", "2024-05").t_co2 == pytest.approx(1 * 2.50)       # 1000 L = 1 kL
    assert shk.price("都市ガス", 12, "千m3", "2024-05").t_co2 == pytest.approx(12 * 2.05)     # 24.6 t
    assert shk.price("city_gas", 12_000, "m³", "2024-05").t_co2 == pytest.approx(24.6)
    assert shk.price("LPG", 340, "kg", "2024-05").t_co2 == pytest.approx(0.340 * 2.99)
    assert shk.price("A重油", 2, "kL", "2024-05").t_co2 == pytest.approx(2 * 2.75)
    assert shk.price("揮発油", 500, "L", "2024-05").t_co2 == pytest.approx(0.5 * 2.29)


def test_heat_value_route(shk):
    p = shk.price("軽油", 1, "kL", "2024-05")
    assert p.t_co2 == pytest.approx(2.62)
    assert p.t_co2_heat_route == pytest.approx(38.0 * 0.0188 * 44 / 12)   # 2.6195 t
    assert p.t_co2_heat_route == pytest.approx(2.6195, abs=1e-4)
    assert shk.price("coal_coke", 1, "t", "2024-05").t_co2_heat_route is None   # no heat value listed


def test_legacy_set_differs():
    legacy = CO2Engine("shk_legacy")
    p = legacy.price("灯油", 1000, "L", "2024-05")
    assert p.t_co2 == pytest.approx(2.49) and p.factor_used["set"] == "shk_legacy"
    assert legacy.price("city_gas", 10, "千Nm3", "2024-05").t_co2 == pytest.approx(22.3)
    with pytest.raises(ValueError, match="reference states"):   # legacy city gas is per Nm3
        legacy.price("city_gas", 10, "千m3", "2024-05")
    assert legacy.price("steam", 100, "GJ", "2024-05").factor_used["verified"] is False
    with pytest.raises(ValueError, match="no factor for natural_gas"):
        legacy.price("natural_gas", 1, "千m3", "2024-05")


def test_electricity_location_and_market(shk):
    # FY2023 energy -> FY2022 results of the retailer (the list used for that year's report)
    p = shk.price("electricity", 10_000, "kWh", "2023-06", supplier="東京電力エナジーパートナー")
    assert p.t_co2_location == pytest.approx(10_000 * 0.000457)     # 4.57 t
    assert p.t_co2_market == pytest.approx(10_000 * 0.000451)       # 4.51 t, company-wide adjusted
    assert p.t_co2 == p.t_co2_market                                 # default headline: market
    assert p.factor_location["basis"] == "location" and p.factor_market["menu"] == "company_wide"
    p = shk.price("電力", 10, "MWh", "2023-06", supplier="TEPCO", menu="L")
    assert p.t_co2_market == pytest.approx(10_000 * 0.000390)       # menu L (residual)
    p = shk.price("electricity", 10_000, "kWh", "2024-06", supplier="四国電力", menu="A")
    assert p.t_co2_market == 0.0 and p.t_co2_location == pytest.approx(4.64)
    assert p.factor_used["results_fiscal_year"] == 2023


def test_location_headline_option():
    eng = CO2Engine("shk_2023", scope2_method="location")
    assert eng.price("electricity", 10_000, "kWh", "2023-06", supplier="TEPCO").t_co2 == pytest.approx(4.57)


def test_default_electricity_factor_is_flagged_unverified(shk):
    p = shk.price_electricity_kwh(10_000, dt.date(2024, 5, 1))
    assert p.factor_used["verified"] is False and not p.verified
    # a retailer without a basic factor: location-based falls back to the 代替値, flagged
    p = shk.price("electricity", 1000, "kWh", "2023-05", supplier="東急パワーサプライ")
    assert p.t_co2_market == pytest.approx(0.416)
    assert p.factor_location["verified"] is False and p.factor_market["verified"] is True


def test_periods_and_json(shk):
    import json

    import numpy as np
    a = shk.price("kerosene", 1, "kL", np.datetime64("2024-05-31T20:00", "ms"))
    b = shk.price("kerosene", 1, "kL", dt.datetime(2024, 5, 1, 9, tzinfo=JST))
    assert a.t_co2 == b.t_co2 == pytest.approx(2.5)
    d = json.loads(json.dumps(shk.price_electricity_kwh(1, "2024-05-01").as_dict()))
    assert d["verified"] is False and d["factor_used"]["value"] == 0.000432
    with pytest.raises(ValueError, match="not YYYY-MM"):
        shk.price("kerosene", 1, "kL", "May 2024")


def test_year_fallback_is_noted(shk):
    p = shk.price("electricity", 1000, "kWh", "2025-05", supplier="TEPCO")   # wants FY2024 results
    assert p.factor_used["results_fiscal_year"] == 2022
    assert "used FY2022" in p.factor_used["note"]


@pytest.mark.parametrize("kwargs, msg", [
    (dict(supplier="存在しない電力"), "no electricity factor for supplier"),
    (dict(supplier="TEPCO", menu="Z"), "no adjusted factor for menu 'Z'"),
    (dict(contract="nope"), "no contract 'nope'"),
])
def test_electricity_errors(shk, kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        shk.price("electricity", 1, "kWh", "2023-05", **kwargs)


def test_units_that_do_not_fit_are_refused(shk):
    with pytest.raises(ValueError, match="does not fit electricity"):
        shk.price("electricity", 1, "L", "2024-05")
    with pytest.raises(ValueError, match="does not fit kerosene"):
        shk.price("kerosene", 1, "kg", "2024-05")
    with pytest.raises(ValueError):                                      # factor per kWh for a fuel in L
        shk.price("kerosene", 1, "L", "2024-05", factor=0.0025, factor_unit="t-CO2/kWh")


def test_row_factor_override(shk):
    p = shk.price("city_gas", 1000, "m3", "2024-05", factor=2210, factor_unit="kg-CO2/千m3")
    assert p.t_co2 == pytest.approx(1.0 * 2210 / 1000)                   # 2.21 t
    assert p.factor_used["basis"] == "row"


def test_energy_names():
    assert normalize_energy("プロパン") == "lpg"
    assert normalize_energy("B・C重油") == "bc_heavy_oil"
    assert normalize_energy("Ａ重油") == "a_heavy_oil"
    for gas in ("oxygen", "窒素", "アルゴン"):
        with pytest.raises(ValueError, match="does not count"):
            normalize_energy(gas)
    with pytest.raises(ValueError, match="did you mean 'electricity'"):
        normalize_energy("electricty")


def test_user_factor_files(tmp_path):
    own = tmp_path / "own.toml"
    own.write_text('''
title = "our own factors"
source = "supplier letters 2024"
[[suppliers]]
name = "東京電力エナジーパートナー"
results_fiscal_year = 2023
basic = 0.000450
adjusted = { company_wide = 0.000440 }
[[suppliers]]
name = "テストガス"
energy = "都市ガス"
unit = "t-CO2/千m3"
basic = 2.21
verified = false
''', encoding="utf-8")
    newset = tmp_path / "newset.toml"
    newset.write_text('set = "ours"\nextends = "shk_2023"\ntitle = "t"\nsource = "s"\n'
                      '[factors]\nkerosene = { value = 2.51, unit = "t-CO2/kL" }\n', encoding="utf-8")
    eng = CO2Engine("ours", [own, newset])
    p = eng.price("electricity", 10_000, "kWh", "2024-05", supplier="TEPCO")   # FY2024 -> FY2023 results
    assert p.t_co2_location == pytest.approx(4.50) and p.t_co2_market == pytest.approx(4.40)
    p = eng.price("electricity", 10_000, "kWh", "2023-05", supplier="TEPCO")   # FY2023 -> FY2022 results
    assert p.t_co2_location == pytest.approx(4.57)
    p = eng.price("city_gas", 10, "千m3", "2024-05", supplier="テストガス")
    assert p.t_co2 == pytest.approx(22.1) and p.factor_used["verified"] is False
    assert eng.price("city_gas", 10, "千m3", "2024-05", supplier="他社ガス").t_co2 == pytest.approx(20.5)
    assert eng.price("kerosene", 1, "kL", "2024-05").t_co2 == pytest.approx(2.51)
    assert eng.price("diesel", 1, "kL", "2024-05").t_co2 == pytest.approx(2.62)   # inherited


@pytest.mark.parametrize("text, msg", [
    ('title="t"\nsource="s"\nset="x"\n[factors]\noxygen = { value = 1, unit = "t-CO2/t" }\n', "factors.oxygen"),
    ('title="t"\nsource="s"\nset="x"\n[factors]\nkerosene = { value = 1, unit = "t-CO2/kWh" }\n',
     "factors.kerosene.unit: unit kWh does not fit kerosene"),
    ('title="t"\nsource="s"\nset="x"\n[factors]\nkerosene = { value = 1, unit = "t/kL" }\n', "factors.kerosene.unit"),
    ('title="t"\nsource="s"\n[factors]\nkerosene = { value = 1, unit = "t-CO2/kL" }\n', "needs `set"),
    ('source="s"\n', "title: required key is missing"),
    ('title="t"\nsource="s"\n[[suppliers]]\nname="x"\nbasic=-1\n', "suppliers[0].basic"),
])
def test_bad_factor_file_messages(tmp_path, text, msg):
    f = tmp_path / "bad.toml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        CO2Engine("shk_2023", [f])
    assert str(f) in str(e.value) and msg in str(e.value)


def test_site_config_factor_errors_name_the_key(tmp_path):
    from mieruka.site import load_site
    site = tmp_path / "site.toml"
    site.write_text('[site]\nname = "t"\n[co2]\nfactor_set = "shk_2099"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        CO2Engine.from_site(load_site(site))
    assert str(e.value).startswith(f"{site}: co2.factor_set: unknown factor set 'shk_2099'")
    site.write_text('[site]\nname = "t"\n[co2]\nfactor_files = ["missing.toml"]\n', encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        CO2Engine.from_site(load_site(site))
    assert str(e.value) == f"{site}: co2.factor_files: {tmp_path / 'missing.toml'}: no such factor file"


def test_unknown_factor_set():
    with pytest.raises(ConfigError, match="unknown factor set 'nope'"):
        CO2Engine("nope")


def _site(extra: dict):
    return parse_site({"site": {"name": "t"}, **extra}, "site.toml")


def test_price_findings_flat_and_time_of_use():
    cfg = _site({
        "tariffs": {"electricity_jpy_per_kwh": 20.0, "time_of_use": [
            {"name": "day", "hours": "08:00-22:00", "days": ["mon", "tue", "wed", "thu", "fri"],
             "holidays_too": False, "electricity_jpy_per_kwh": 30.0}]},
        "contracts": [{"id": "hv", "retailer": "TEPCO", "results_fiscal_year": 2022}],
    })
    eng = CO2Engine.from_site(cfg)
    monday = Finding("standby", "c1", dt.datetime(2024, 6, 3, 6, tzinfo=JST), dt.datetime(2024, 6, 3, 10, tzinfo=JST),
                     100.0, "x")
    holiday = Finding("standby", "c1", dt.datetime(2024, 5, 3, 6, tzinfo=JST), dt.datetime(2024, 5, 3, 10, tzinfo=JST),
                      100.0, "x")   # 憲法記念日 (a Friday): the band does not apply on holidays
    eng.price_findings([monday, holiday])
    assert monday.cost_jpy == pytest.approx(50 * 20 + 50 * 30)   # 06-08 flat, 08-10 day band
    assert monday.metrics["energy_kwh_by_tariff_band"] == pytest.approx({"flat": 50.0, "day": 50.0})
    assert holiday.cost_jpy == pytest.approx(100 * 20)
    assert monday.co2_t == pytest.approx(100 * 0.000451)         # contract TEPCO, market-based
    assert monday.factor["verified"] is True and monday.factor["factor_set"] == "shk_2023"
    f = Finding("air_leak", "c1", monday.start, monday.end, 100.0, "x")
    eng.price_findings([f], tariff_jpy_per_kwh=25.0)
    assert f.cost_jpy == pytest.approx(2500)


def test_price_findings_contract_by_meter():
    cfg = _site({
        "contracts": [{"id": "main", "retailer": "TEPCO", "results_fiscal_year": 2022},
                      {"id": "annex", "retailer": "九州電力", "results_fiscal_year": 2022, "menu": "B", "meters": ["m2"]}],
        "meters": [{"id": "m1", "model": "sdm630", "channels": [{"id": "a", "quantity": "power_kw", "register": "total_power"}]},
                   {"id": "m2", "model": "sdm630", "channels": [{"id": "b", "quantity": "power_kw", "register": "total_power"}]}],
    })
    eng = CO2Engine.from_site(cfg)
    t = dt.datetime(2024, 6, 3, tzinfo=JST)
    fa, fb = Finding("standby", "a", t, t, 1000.0, "x"), Finding("standby", "b", t, t, 1000.0, "x")
    eng.price_findings([fa, fb])
    assert fa.co2_t == pytest.approx(0.451) and fb.co2_t == pytest.approx(0.467)
    assert fa.cost_jpy == pytest.approx(1000 * 25.0)             # the config's default flat tariff


@settings(max_examples=60, deadline=None)
@given(st.floats(min_value=0, max_value=1e7, allow_nan=False),
       st.sampled_from([("kerosene", "L", "kL", 1e-3), ("electricity", "kWh", "MWh", 1e-3),
                        ("city_gas", "m3", "千m3", 1e-3), ("lpg", "kg", "t", 1e-3), ("electricity", "kWh", "千kWh", 1e-3)]))
def test_unit_choice_never_changes_co2(x, case):
    energy, small, big, ratio = case
    eng = _ENGINE
    a = eng.price(energy, x, small, "2023-05", supplier="TEPCO" if energy == "electricity" else None)
    b = eng.price(energy, x * ratio, big, "2023-05", supplier="TEPCO" if energy == "electricity" else None)
    assert a.t_co2 == pytest.approx(b.t_co2, rel=1e-9, abs=1e-12)
    assert a.t_co2_location == pytest.approx(b.t_co2_location, rel=1e-9, abs=1e-12)


_ENGINE = CO2Engine("shk_2023")


def test_own_factor_in_the_amounts_unit_is_computed_with_a_warning(shk, caplog):
    """The Miyagi guideline's sample sheet: LPG in kL with 3.00 t-CO2/kL (issue 10, item 14)."""
    p = shk.price("LPG", 1.5, "kL", "2025-04", factor=3.00, factor_unit="t-CO2/kL")
    assert p.t_co2 == pytest.approx(4.5) and p.factor_used["basis"] == "row"
    assert p.warnings and "usually measured in kg, t" in p.warnings[0] and "t-CO2/t" in p.warnings[0]
    p = shk.price("LPG", 1500, "L", "2025-04", factor=3.00, factor_unit="t-CO2/kL")     # converts within volume
    assert p.t_co2 == pytest.approx(4.5)
    assert shk.price("LPG", 2, "t", "2025-04", factor=3.00, factor_unit="t-CO2/t").warnings is None
    with pytest.raises(ValueError, match="kL .* cannot be converted to t"):              # units truly disagree
        shk.price("LPG", 1.5, "kL", "2025-04", factor=3.00, factor_unit="t-CO2/t")
    with pytest.raises(ValueError, match="does not fit lpg"):                           # no own factor: refused
        shk.price("LPG", 1.5, "kL", "2025-04")
    with pytest.raises(ValueError, match="does not fit electricity"):                   # no meter reads kWh in L
        shk.price("electricity", 100, "L", "2025-04", factor=0.5, factor_unit="t-CO2/L")
