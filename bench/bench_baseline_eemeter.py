"""Benchmark: mieruka's day-type baseline vs OpenEEmeter's CalTRACK hourly model.

    .venv/bin/pip install 'eemeter>=4.1,<5'      # bench-only (pulls pandas, statsmodels, ...)
    .venv/bin/python bench/bench_baseline_eemeter.py [--days 365]

Same data, same protocol for both models: hourly energy, 4 folds of whole weeks
(week number mod 4), each fold predicted by the model fitted on the other
three; CV(RMSE) and NMBE (ASHRAE Guideline 14, dof = n, fractions) over all
predicted hours.  Fit time = the four fits and predictions, from hourly data.

Series:
- simulated factory (a year of 1-minute data from `mieruka.simulators`,
  averaged to hours): the incomer and two breakers, one of them an air
  conditioner that follows the simulator's outdoor temperature.  eemeter gets
  that same outdoor temperature (converted to Fahrenheit, as CalTRACK expects),
  so it is not handicapped on weather.
- the real plant year (`../shared/data/steel_industry_2018.csv`, Gwangyang,
  Korean holidays).  The data set has no temperature: eemeter gets a synthetic
  seasonal + daily cosine for the site's climate (mean 15 C, +-11 C over the
  year, +-4 C over the day), which is stated in docs/performance.md.
eemeter drops zero readings of electricity (treated as missing); the series
used have no zero hours.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from mieruka.analytics import baseline as base_mod
from mieruka.analytics import baseline_model as bm
from mieruka.analytics import weather as wx
from mieruka.calendar import SiteCalendar, parse_shift_spec

REPO = Path(__file__).resolve().parents[1]
STEEL = REPO.parent / "shared" / "data" / "steel_industry_2018.csv"
FOLDS = 4


def metrics(y: np.ndarray, yhat: np.ndarray) -> tuple[float, float, int]:
    ok = np.isfinite(y) & np.isfinite(yhat)
    r = y[ok] - yhat[ok]
    n = int(ok.sum())
    ybar = float(y[ok].mean())
    return float(np.sqrt(np.mean(r * r)) / ybar), float(r.sum() / (n * ybar)), n


def folds_of(h0_ms: int, n: int) -> np.ndarray:
    """Fold of each hour: local week number mod 4 (weeks from the first hour)."""
    return (np.arange(n) // (24 * 7)) % FOLDS


# ------------------------------------------------------------------ mieruka
def mieruka_cv(kw_h: np.ndarray, h0_ms: int, cal: SiteCalendar, temp_c: np.ndarray | None = None,
               plain: bool = False) -> tuple[np.ndarray, float, str]:
    """Out-of-sample hourly predictions of mieruka's baseline as the pipeline chooses it
    (days off inferred; day type, + drift, + weather by out-of-sample CV(RMSE)), the
    time taken and the model's name.  `plain`: the day-type model alone (issue 4's)."""
    t = time.perf_counter()
    sat = bool(cal.shifts.get("sat"))
    dm, _ = base_mod.day_matrix_from_hourly(kw_h, h0_ms, cal)
    if plain:
        pred, _ = base_mod.fold_predictions(dm.kw, dm.day_type, sat, FOLDS)
        name = "day_type (plain)"
    else:
        types = bm.off_days_as_company_holidays(dm.day_type, bm.infer_days_off(bm.daily_energy(dm.kw), dm.day_type))
        temp_day = None
        if temp_c is not None:
            tm, _ = base_mod.day_matrix_from_hourly(temp_c, h0_ms, cal)
            temp_day = wx.daily_mean_temperature(tm.kw)
        static = base_mod.fit_metrics(dm.kw, types, sat)["cv_rmse"]
        choice = bm.choose_model(dm.kw, types, sat, temp_day, static)
        pred = choice.predictions if choice.predictions is not None else \
            base_mod.fold_predictions(dm.kw, types, sat, FOLDS)[0]
        name = choice.spec.name
    # back from (days, 24) to the hourly series
    mid = (h0_ms + np.arange(kw_h.size, dtype=np.int64) * 3_600_000 + 1_800_000).astype("datetime64[ms]")
    lt = cal.local(mid)
    yhat = pred[lt.day - dm.first_day, lt.minute // 60]
    return yhat, time.perf_counter() - t, name


# ------------------------------------------------------------------ eemeter
def eemeter_cv(kw_h: np.ndarray, h0_ms: int, temp_c: np.ndarray, tz: str) -> tuple[np.ndarray, float]:
    import pandas as pd
    from eemeter.eemeter import HourlyCaltrackBaselineData, HourlyCaltrackModel, HourlyCaltrackReportingData

    idx = pd.date_range(pd.Timestamp(h0_ms, unit="ms", tz="UTC"), periods=kw_h.size, freq="h").tz_convert(tz)
    temp_f = pd.Series(temp_c * 9 / 5 + 32, index=idx)
    fold = (np.arange(kw_h.size) // (24 * 7)) % FOLDS
    yhat = np.full(kw_h.size, np.nan)
    t = time.perf_counter()
    for f in range(FOLDS):
        train = pd.Series(np.where(fold != f, kw_h, np.nan), index=idx).to_frame("observed")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            base = HourlyCaltrackBaselineData.from_series(train, temp_f, is_electricity_data=True)
            model = HourlyCaltrackModel().fit(base)
            rep = HourlyCaltrackReportingData.from_series(
                pd.Series(kw_h, index=idx).to_frame("observed"), temp_f, is_electricity_data=True)
            out = model.predict(rep)
        p = out["predicted"].reindex(idx).to_numpy()
        yhat[fold == f] = p[fold == f]
    return yhat, time.perf_counter() - t


# ------------------------------------------------------------------ data
def simulated(days: float):
    from mieruka.simulators.loads import day_phase, outdoor_temp_c
    from mieruka.simulators.recording import generate_channels
    from mieruka.simulators.scenario import parse_scenario

    week = {d: ["08:00-12:00", "13:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
    sc = parse_scenario({
        "scenario": {"name": "bench", "noise": 0.05},
        "calendar": {"holidays": "JP", "shifts": week,
                     "company_holidays": [{"name": "年末年始", "from": "12-29", "to": "01-03"},
                                          {"name": "お盆", "from": "08-13", "to": "08-16"}]},
        "main": {"channel": "main", "unmetered_production_kw": 15, "unmetered_standby_kw": 3},
        "loads": [{"channel": "press", "production_kw": 25, "standby_kw": 2.5},
                  {"channel": "hvac", "kind": "hvac", "production_kw": 12, "standby_kw": 1.5,
                   "hvac_kw_per_degc": 0.9}],
        "events": [{"kind": "left_on", "channel": "press", "count": 4}, {"kind": "holiday_run", "count": 2}],
    })
    sim = generate_channels(sc, "2025-04-01", days, 60.0, 3)
    cal = SiteCalendar.from_section(sc.calendar, sc.scenario.timezone)
    out = {}
    for cid in ("main", "press", "hvac"):
        t, v, _ = sim.data[cid]
        t_ms = t.astype(np.int64)
        h0 = int(t_ms[0]) // 3_600_000 * 3_600_000
        n = int(t_ms[-1] - h0) // 3_600_000 + 1
        kw_h = np.bincount((t_ms - h0) // 3_600_000, weights=v, minlength=n) / np.maximum(
            np.bincount((t_ms - h0) // 3_600_000, minlength=n), 1)
        out[cid] = (kw_h, h0)
    h0 = out["main"][1]
    mids = h0 + np.arange(out["main"][0].size, dtype=np.int64) * 3_600_000 + 1_800_000
    temp = outdoor_temp_c(day_phase(cal, mids), sc.scenario)
    return out, temp, cal


def steel():
    sys.path.insert(0, str(REPO / "tests"))
    from test_detect_real_plant import SHIFTS, load_steel

    t, p = load_steel(STEEL)
    kw_h = p.reshape(-1, 4).mean(axis=1)              # 15-min means -> hourly means
    h0 = int(t[0].astype(np.int64))
    hours = np.arange(kw_h.size)
    doy = (hours // 24) % 365
    hod = (hours + 9) % 24                             # local hour (KST)
    temp = 15 - 11 * np.cos(2 * np.pi * (doy - 15) / 365) - 4 * np.cos(2 * np.pi * (hod - 14) / 24)
    cal = SiteCalendar(timezone="Asia/Seoul", holidays_country="KR", shifts=parse_shift_spec(SHIFTS))
    return kw_h, h0, temp, cal


def eemeter_sample():
    """OpenEEmeter's own hourly sample meter (Illinois, electricity, heating and cooling)
    with its hourly temperature, read from the files the package ships."""
    try:
        import importlib.resources as ir

        import pandas as pd
        root = ir.files("eemeter.eemeter") / "samples"
        meter = pd.read_csv(root / "il-electricity-cdd-hdd-hourly.csv.gz")
        temp = pd.read_csv(root / "il-electricity-cdd-hdd-tempF.csv.gz")
    except (ImportError, FileNotFoundError, ValueError, KeyError):
        return None
    obs = pd.Series(meter["value"].to_numpy(np.float64), index=pd.to_datetime(meter["start"], utc=True))
    h = obs.resample("h").mean()
    tf = pd.Series(temp["tempF"].to_numpy(np.float64), index=pd.to_datetime(temp["dt"], utc=True)
                   ).resample("h").mean().reindex(h.index)
    h0 = int(h.index[0].value // 1_000_000)
    cal = SiteCalendar(timezone="America/Chicago", holidays_country="US",
                       shifts=parse_shift_spec("mon-fri 08:00-18:00"))
    return ("eemeter IL sample", h.to_numpy(np.float64), h0, (tf.to_numpy(np.float64) - 32) * 5 / 9, cal)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, default=365.0)
    ap.add_argument("--only", choices=("simulated", "steel", "sample"), action="append",
                    help="run only these series (repeatable); eemeter takes minutes per series")
    ap.add_argument("--no-eemeter", action="store_true", help="mieruka only (seconds)")
    a = ap.parse_args()
    want = set(a.only or ("simulated", "steel", "sample"))
    rows = []
    if "simulated" in want:
        series, temp, cal = simulated(a.days)
        for cid, (kw_h, h0) in series.items():
            rows.append((f"simulated {cid}", kw_h, h0, temp, cal, True))
    if "steel" in want and STEEL.exists():
        kw_h, h0, temp_s, cal_s = steel()
        # the temperature is synthetic: mieruka does not get it (eemeter cannot run without one)
        rows.append(("steel plant 2018", kw_h, h0, temp_s, cal_s, False))
    if "sample" in want:
        smp = eemeter_sample()
        if smp is None:
            print("eemeter ships no hourly sample with temperature in this version")
        else:
            name, kw_h, h0, temp_c, c = smp
            keep = int(a.days * 24)                 # --days: the sample's first days only
            rows.append((f"{name} ({min(keep, kw_h.size) // 24} d)", kw_h[:keep], h0, temp_c[:keep], c, True))
    print(f"{'series':22} {'model':8} {'CV(RMSE)':>9} {'NMBE':>8} {'fit s':>8}")
    for name, kw_h, h0, tmp, c, give_temp in rows:
        y_p, t_p, _ = mieruka_cv(kw_h, h0, c, plain=True)
        cv_p, nb_p, _ = metrics(kw_h, y_p)
        print(f"{name:22} {'plain':8} {cv_p:9.3f} {nb_p:+8.4f} {t_p:8.3f}   (day type x hour, issue 4)")
        y_m, t_m, model = mieruka_cv(kw_h, h0, c, tmp if give_temp else None)
        cv_m, nb_m, n = metrics(kw_h, y_m)
        print(f"{name:22} {'mieruka':8} {cv_m:9.3f} {nb_m:+8.4f} {t_m:8.3f}   ({model})")
        if a.no_eemeter:
            continue
        try:
            y_e, t_e = eemeter_cv(kw_h, h0, tmp, c.timezone)
        except Exception as e:  # report, do not hide, why eemeter could not run
            print(f"{name:22} {'eemeter':8} failed: {type(e).__name__}: {e}")
            continue
        both = np.isfinite(y_e) & np.isfinite(y_m)
        cv_e, nb_e, n_e = metrics(kw_h[both], y_e[both])
        cv_mb, nb_mb, _ = metrics(kw_h[both], y_m[both])
        print(f"{name:22} {'eemeter':8} {cv_e:9.3f} {nb_e:+8.4f} {t_e:8.3f}   "
              f"(on the {n_e} hours both predict: mieruka {cv_mb:.3f} / {nb_mb:+.4f}); "
              f"speed ratio {t_e / t_m:.0f}x")


if __name__ == "__main__":
    main()
