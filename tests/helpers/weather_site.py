"""A year of a factory with weather-driven chillers, an always-on server room,
refrigeration and drifting production (shared by the weather tests and benches)."""
from __future__ import annotations

WEEK = {d: ["08:00-12:00", "13:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}


def weather_site(noise: float = 0.05, drift: float = 0.15, season: float = 0.10, weather_c: float = 3.0,
                 temperature_channel: str | None = "outdoor") -> dict:
    return {
        "scenario": {"name": "weather-site", "noise": noise, "outdoor_temp_mean_c": 16.0,
                     "outdoor_temp_season_c": 10.0, "outdoor_temp_weather_c": weather_c,
                     "outdoor_temp_channel": temperature_channel,
                     "production_drift_per_year": drift, "production_season": season},
        "calendar": {"holidays": "JP", "shifts": WEEK,
                     "company_holidays": [{"name": "年末年始", "from": "12-29", "to": "01-03"}]},
        "main": {"channel": "main", "unmetered_production_kw": 10, "unmetered_standby_kw": 2},
        "loads": [
            {"channel": "press", "production_kw": 30, "standby_kw": 2.5, "standby_allowance_kw": 0.5},
            {"channel": "machining", "production_kw": 45, "standby_kw": 4.0},
            {"channel": "chiller", "kind": "chiller", "equipment_kind": "chiller", "production_kw": 6,
             "lunch_kw": 6, "standby_kw": 0.3, "cooling_kw_per_degc": 3.0, "balance_c": 17.0},
            {"channel": "office_hvac", "kind": "hvac", "production_kw": 4, "standby_kw": 0.2,
             "hvac_kw_per_degc": 0.6, "comfort_c": 20.0},
            {"channel": "server_room", "kind": "constant", "equipment_kind": "server", "production_kw": 12},
            {"channel": "cold_store", "kind": "constant", "equipment_kind": "refrigeration", "production_kw": 5,
             "cooling_kw_per_degc": 0.15, "balance_c": 8.0},
            {"channel": "lighting", "kind": "lighting", "production_kw": 8, "standby_kw": 0.6,
             "standby_allowance_kw": 0.4},
        ],
        "events": [
            {"kind": "left_on", "channel": "press", "count": 4},
            {"kind": "left_on", "channel": "machining", "count": 3},
            {"kind": "night_high", "channel": "machining", "count": 4},
            {"kind": "left_on", "channel": "chiller", "count": 3, "level": 3.0},
            {"kind": "holiday_run", "count": 2},
        ],
    }
