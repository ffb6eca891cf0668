"""The fiscal-year sheet: totals, shares, targets, intensity (hand-computed and property-based)."""
import datetime as dt

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mieruka.analytics.co2 import CO2Engine
from mieruka.analytics.co2.report import to_csv_text, to_json
from mieruka.analytics.co2.sheet import PricedRow, Production, build_sheet
from mieruka.analytics.co2.targets import japan_target_t, sbt_target_t, target_rows

ENGINE = CO2Engine("shk_2023")
CASES = [("electricity", "kWh", "TEPCO"), ("kerosene", "L", None), ("city_gas", "千m3", None),
         ("lpg", "kg", None), ("diesel", "kL", None), ("steam", "GJ", None)]


def _rows(spec):
    out = []
    for month_idx, case_idx, amount in spec:
        energy, unit, sup = CASES[case_idx]
        y, m = (2024, 4 + month_idx) if month_idx < 9 else (2025, month_idx - 8)
        when = dt.date(y, m, 1)
        if energy == "steam":   # shk_2023 has no steam factor: a row factor (a supplier's letter)
            p = ENGINE.price(energy, amount, unit, when, factor=0.06, factor_unit="t-CO2/GJ")
        else:
            p = ENGINE.price(energy, amount, unit, when, supplier=sup)
        out.append(PricedRow(when, p))
    return out


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 11), st.integers(0, len(CASES) - 1),
                          st.floats(min_value=0.001, max_value=1e6, allow_nan=False)), min_size=1, max_size=40))
def test_sheet_totals_add_up(spec):
    rows = _rows(spec)
    s = build_sheet(rows, ENGINE.describe(), 2024)
    total = sum(r.priced.t_co2 for r in rows)
    assert s.total_t == pytest.approx(total, rel=1e-9)
    assert sum(s.by_month.values()) == pytest.approx(total, rel=1e-9)
    assert sum(s.by_energy.values()) == pytest.approx(total, rel=1e-9)
    assert s.scope1_t + s.scope2_t == pytest.approx(total, rel=1e-9)
    assert sum(s.shares.values()) == pytest.approx(1.0)
    d = to_json(s)
    assert d["total_location_based_t_co2"] == pytest.approx(sum(r.priced.t_co2_location for r in rows), rel=1e-9)
    assert len(d["by_month"]) == 12 and list(d["by_month"])[0] == "2024-04" and list(d["by_month"])[-1] == "2025-03"


def test_sheet_by_hand():
    rows = _rows([(0, 0, 10_000), (1, 0, 20_000), (0, 1, 1000), (1, 2, 12)])
    s = build_sheet(rows, ENGINE.describe())
    assert s.fiscal_year == 2024
    # FY2024 electricity: TEPCO FY2022 results (no FY2023 in the shipped list); market = 0.000451
    assert s.by_energy["electricity"] == pytest.approx(30_000 * 0.000451)     # 13.53
    assert s.scope1_t == pytest.approx(2.50 + 24.6)
    assert s.by_month["2024-04"] == pytest.approx(4.51 + 2.50)
    assert s.by_month["2024-05"] == pytest.approx(9.02 + 24.6)
    assert s.total_t == pytest.approx(40.63)
    assert s.shares["city_gas"] == pytest.approx(24.6 / 40.63)
    assert s.energies[0] == "electricity"
    d = to_json(s)
    assert d["scope2_location_based_t_co2"] == pytest.approx(30_000 * 0.000457)   # 13.71
    assert d["total_location_based_t_co2"] == pytest.approx(13.71 + 27.1)


def test_other_fiscal_years_are_kept_not_dropped():
    rows = _rows([(0, 1, 1000)]) + [PricedRow(dt.date(2023, 5, 1), ENGINE.price("kerosene", 2000, "L", "2023-05"))]
    s = build_sheet(rows, ENGINE.describe())
    assert s.fiscal_year == 2024 and s.by_fiscal_year == {2023: pytest.approx(5.0), 2024: pytest.approx(2.5)}
    assert build_sheet(rows, ENGINE.describe(), 2023).total_t == pytest.approx(5.0)
    with pytest.raises(ValueError, match="no rows in FY2020"):
        build_sheet(rows, ENGINE.describe(), 2020)


def test_intensity_and_cost():
    rows = [PricedRow(dt.date(2024, 4, 1), ENGINE.price("kerosene", 1000, "L", "2024-04", cost_jpy=110_000)),
            PricedRow(dt.date(2024, 5, 1), ENGINE.price("kerosene", 2000, "L", "2024-05"))]
    prod = [Production(dt.date(2024, 4, 1), 500, "個"), Production(dt.date(2024, 5, 1), 1500, "個")]
    s = build_sheet(rows, ENGINE.describe(), 2024, prod)
    i = s.intensity()
    assert i["t_co2_per_unit"] == pytest.approx(7.5 / 2000)
    assert i["by_month"]["2024-04"] == pytest.approx(2.5 / 500)
    d = to_json(s)
    assert d["cost_jpy"] is None and d["cost_jpy_known_part"] == pytest.approx(110_000)   # May has no price
    csv_text = to_csv_text(s)
    assert csv_text.startswith("\ufeff") and "cost_jpy,kerosene,灯油,1,JPY,110000,," in csv_text


def test_target_paths_by_hand():
    assert sbt_target_t(100.0, 2022, 2024) == pytest.approx(100 * (1 - 0.042 * 2))     # 91.6
    assert sbt_target_t(100.0, 2022, 2050) == 0.0
    assert japan_target_t(200.0, 2030) == pytest.approx(200 * 0.54)                   # 108
    assert japan_target_t(200.0, 2024) == pytest.approx(200 * (1 - 0.46 * 11 / 17))   # 140.47
    rows = target_rows(95.0, 2024, 2022, 100.0, 200.0)
    sbt, jp = rows
    assert sbt["gap_t_co2"] == pytest.approx(95.0 - 91.6) and not sbt["on_track"]
    assert jp["on_track"] and jp["target_fy2030_t_co2"] == pytest.approx(108.0)
    assert target_rows(95.0, 2024) == []


def test_mixed_gas_states_keep_co2_but_not_amount():
    legacy = CO2Engine("shk_legacy")
    rows = [PricedRow(dt.date(2024, 4, 1), legacy.price("city_gas", 1, "千Nm3", "2024-04")),
            PricedRow(dt.date(2024, 4, 1), legacy.price("city_gas", 1000, "m3", "2024-04", factor=2.05,
                                                        factor_unit="t-CO2/千m3"))]
    s = build_sheet(rows, legacy.describe(), 2024)
    assert s.total_t == pytest.approx(2.23 + 2.05)
    assert np.isnan(s.amount[0, 0])
