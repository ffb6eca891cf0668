"""The CO2 engine: factor sets, pricing energy in t-CO2 and yen, the fiscal-year sheet.

    from mieruka.analytics.co2 import CO2Engine
    engine = CO2Engine.from_site(cfg)
    engine.price("灯油", 1000, "L", "2024-05").t_co2      # 2.50

See :mod:`mieruka.analytics.co2.engine` for the API detectors and the REST API use.
"""
from .engine import C_TO_CO2, CO2Engine, Priced, to_date
from .factors import Factor, FactorLibrary, FactorLookupError

__all__ = ["CO2Engine", "Priced", "Factor", "FactorLibrary", "FactorLookupError", "C_TO_CO2", "to_date"]
