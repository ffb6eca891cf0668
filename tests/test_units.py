"""Amount units and factor units: spellings, conversions, refusals."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mieruka.units import UNITS, convert, parse_factor_unit, parse_unit


@pytest.mark.parametrize("text, name", [
    ("kWh", "kWh"), ("KWH", "kWh"), ("MWh", "MWh"), ("千kWh", "千kWh"), ("1000kWh", "千kWh"),
    ("thousand kWh", "千kWh"), ("m3", "m3"), ("m³", "m3"), ("ｍ³", "m3"), ("thousand m3", "千m3"),
    ("千m3", "千m3"), ("千m³", "千m3"), ("Nm3", "Nm3"), ("Nm³", "Nm3"), ("千Nm3", "千Nm3"), ("L", "L"),
    ("l", "L"), ("litre", "L"), ("liter", "L"), ("kl", "kL"), ("KL", "kL"), ("ＫＬ", "kL"), ("kg", "kg"),
    ("t", "t"), ("tonne", "t"), ("GJ", "GJ"), ("MJ", "MJ"),
])
def test_spellings(text, name):
    assert parse_unit(text).name == name


@pytest.mark.parametrize("text", ["", "kW", "km3", "gallon", "m2"])
def test_unknown_unit_is_refused(text):
    with pytest.raises(ValueError, match="unknown unit"):
        parse_unit(text)


def test_conversions_by_hand():
    assert convert(1000, "L", "kL") == pytest.approx(1.0)
    assert convert(12, "千m3", "m3") == pytest.approx(12_000)
    assert convert(2.5, "MWh", "kWh") == pytest.approx(2500)
    assert convert(2.5, "千kWh", "MWh") == pytest.approx(2.5)
    assert convert(340, "kg", "t") == pytest.approx(0.34)
    assert convert(3600, "MJ", "GJ") == pytest.approx(3.6)


@pytest.mark.parametrize("a, b, msg", [
    ("kWh", "GJ", "cannot be converted"),
    ("L", "m3", "cannot be converted"),
    ("kg", "kL", "cannot be converted"),
    ("m3", "Nm3", "different reference states"),
    ("千Nm3", "千m3", "different reference states"),
])
def test_different_dimensions_are_refused(a, b, msg):
    with pytest.raises(ValueError, match=msg):
        convert(1.0, a, b)


@pytest.mark.parametrize("text, t_per_mass, per", [
    ("t-CO2/kWh", 1.0, "kWh"), ("kg-CO2/千m3", 1e-3, "千m3"), ("tCO2/kL", 1.0, "kL"), ("t-CO₂/t", 1.0, "t"),
    ("kgCO2/kWh", 1e-3, "kWh"), ("t-CO2/MWh", 1.0, "MWh"), ("kg-CO2e/L", 1e-3, "L"), ("T-CO2 / GJ", 1.0, "GJ"),
])
def test_factor_units(text, t_per_mass, per):
    fu = parse_factor_unit(text)
    assert fu.t_per_mass == t_per_mass and fu.per.name == per


@pytest.mark.parametrize("text", ["t/kWh", "CO2/kWh", "t-CO2", "lb-CO2/kWh", "t-CO2/furlong"])
def test_bad_factor_units(text):
    with pytest.raises(ValueError):
        parse_factor_unit(text)


def test_factor_unit_refuses_other_dimension():
    fu = parse_factor_unit("t-CO2/kL")
    assert fu.t_co2(2.50, 1000, parse_unit("L")) == pytest.approx(2.50)   # 1000 L = 1 kL
    with pytest.raises(ValueError):
        fu.t_co2(2.50, 1000, parse_unit("kg"))
    with pytest.raises(ValueError, match="reference states"):
        parse_factor_unit("t-CO2/千Nm3").t_co2(2.23, 12, parse_unit("千m3"))


same_dim_pairs = st.sampled_from([(a, b) for a in UNITS.values() for b in UNITS.values() if a.dimension == b.dimension])


@given(same_dim_pairs, st.floats(min_value=0, max_value=1e9, allow_nan=False))
def test_round_trip(pair, x):
    a, b = pair
    assert convert(convert(x, a, b), b, a) == pytest.approx(x, rel=1e-12, abs=1e-12)
