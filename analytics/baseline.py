"""Baseline per day type and hour of day, and the days that stray above it.

A factory's load follows its production calendar far more than the weather,
so the model borrows the CalTRACK hourly structure (one term per hour of
week) but indexes it by day type (workday, Saturday, Sunday/holiday, company
holiday) x hour of day: 4 x 24 = 96 terms.  Each term is the median of that
hour over the days of that type, so the model is not pulled up by the very
anomalies it must find (a holiday run, equipment left on); the spread is the
scaled median absolute deviation.

Fit quality is reported with the ASHRAE Guideline 14 metrics on hourly data,
computed out of sample: days are split into folds by week, each fold is
predicted by the model fitted on the other folds (so the metrics are what the
model achieves on days it has not seen, anomalies included).

    CV(RMSE) = sqrt(sum (y - yhat)^2 / (n - p)) / mean(y)
    NMBE     = sum (y - yhat) / ((n - p) * mean(y))

with p = the number of fitted terms.  Limits for hourly models: CV(RMSE) <=
30 %, |NMBE| <= 10 %.  The metrics score the mean of each cell (the expected
consumption, unbiased for totals); detection compares against the median and
MAD of the same cells.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from mieruka.calendar import COMPANY_HOLIDAY, SATURDAY, SUNDAY_HOLIDAY, WORKDAY

MIN_DAYS = 3            # fewer days of a type than this: borrow a related type's profile
N_FOLDS = 4
MAD_TO_SIGMA = 1.4826
HOUR_SIGMAS = 4.0       # an hour is high when above baseline by this many sigmas ...
HOUR_RELATIVE = 0.15    # ... and by this share of the baseline ...
HOUR_OF_PEAK = 0.03     # ... and by this share of the channel's typical peak hour
DAY_MIN_HOURS = 2       # a day needs this many high hours ...
DAY_OF_MEAN_DAY = 0.04  # ... and this much excess, relative to a mean day's energy


@dataclass
class DayMatrix:
    """Hourly mean kW of one channel as local days x 24 (NaN: not measured)."""

    kw: np.ndarray            # (days, 24)
    first_day: int            # local day number of row 0
    day_type: np.ndarray      # (days,) codes of mieruka.calendar.DAY_TYPES


def fallback_order(saturday_works: bool) -> dict[int, tuple[int, ...]]:
    """Which profiles a day type may borrow when it has too few days of its own."""
    sat = (SATURDAY, WORKDAY, SUNDAY_HOLIDAY) if saturday_works else (SATURDAY, SUNDAY_HOLIDAY, COMPANY_HOLIDAY)
    return {
        WORKDAY: (WORKDAY, SATURDAY, SUNDAY_HOLIDAY),
        SATURDAY: sat,
        SUNDAY_HOLIDAY: (SUNDAY_HOLIDAY, COMPANY_HOLIDAY, SATURDAY),
        COMPANY_HOLIDAY: (COMPANY_HOLIDAY, SUNDAY_HOLIDAY, SATURDAY),
    }


def _nanmedian(a: np.ndarray, axis: int = 0) -> np.ndarray:
    """Median ignoring NaN along `axis` of a 2-D array (NaN where a column is all NaN).
    One sort (NaN sorts last) and two gathers: numpy's nanmedian goes through masked
    arrays for small inputs and is ten times slower here."""
    a = np.asarray(a, dtype=np.float64)
    if axis == 1:
        return _nanmedian(a.T, 0)
    if a.shape[0] == 0:
        return np.full(a.shape[1:], np.nan)
    s = np.sort(a, axis=0)
    n = np.isfinite(a).sum(axis=0)
    lo = np.clip((n - 1) // 2, 0, None)
    hi = np.clip(n // 2, 0, None)
    out = 0.5 * (np.take_along_axis(s, lo[None, :], 0)[0] + np.take_along_axis(s, hi[None, :], 0)[0])
    out[n == 0] = np.nan
    return out


def _nanmean(a: np.ndarray, axis: int = 0) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(a, axis=axis)


def fit_profiles(kw: np.ndarray, day_type: np.ndarray, rows: np.ndarray, saturday_works: bool,
                 location: str = "median", with_sigma: bool = True) -> tuple[np.ndarray, np.ndarray, int]:
    """Profile (4, 24) and MAD sigma (4, 24) from the given day rows.
    `location`: "median" (robust: what detection compares against) or "mean"
    (the expected value: unbiased energy totals, what the fit metrics score).
    Returns also p, the number of profiles fitted from their own days x 24."""
    prof = np.full((4, 24), np.nan)
    sig = np.full((4, 24), np.nan)
    own = np.zeros(4, bool)
    for t in range(4):
        sel = rows[day_type[rows] == t]
        n_days = int(np.count_nonzero(np.isfinite(kw[sel]).any(axis=1))) if sel.size else 0
        if n_days >= MIN_DAYS:
            block = kw[sel]
            _fill(prof, sig, t, block, location, with_sigma)
            own[t] = True
    order = fallback_order(saturday_works)
    pooled = 0
    for t in range(4):
        if own[t]:
            continue
        for alt in order[t][1:]:
            if own[alt]:
                prof[t], sig[t] = prof[alt], sig[alt]
                break
        else:
            # no related type has enough days of its own (a short recording): pool them
            sel = rows[np.isin(day_type[rows], order[t])]
            if sel.size and np.count_nonzero(np.isfinite(kw[sel]).any(axis=1)) >= MIN_DAYS:
                _fill(prof, sig, t, kw[sel], location, with_sigma)
                pooled += 1
    return prof, sig, (int(own.sum()) + pooled) * 24


def _fill(prof: np.ndarray, sig: np.ndarray, t: int, block: np.ndarray, location: str, with_sigma: bool) -> None:
    if location == "mean" and not with_sigma:
        prof[t] = _nanmean(block)
        return
    med = _nanmedian(block)
    prof[t] = med if location == "median" else _nanmean(block)
    if with_sigma:
        sig[t] = MAD_TO_SIGMA * _nanmedian(np.abs(block - med))


def predict(prof: np.ndarray, day_type: np.ndarray) -> np.ndarray:
    """Baseline kW for each day row (days, 24)."""
    return prof[day_type]


def fold_predictions(kw: np.ndarray, day_type: np.ndarray, saturday_works: bool, folds: int = N_FOLDS,
                     location: str = "mean") -> tuple[np.ndarray, int]:
    """Out-of-sample predictions (days, 24): each fold of whole weeks (week mod
    `folds`) predicted by the profiles fitted on the other folds; and the largest
    number of fitted terms."""
    n_days = kw.shape[0]
    week = np.arange(n_days) // 7
    pred = np.full(kw.shape, np.nan)
    p_max = 0
    fold = week % folds
    if location == "mean":
        # sums and counts per (day type, fold) once; each fold's training profile is
        # then (all - fold) / (all - fold counts): no per-fold pass over the days
        fin = np.isfinite(kw)
        x = np.where(fin, kw, 0.0)
        has = fin.any(axis=1)
        onehot = np.zeros((n_days, 4 * folds))
        onehot[np.arange(n_days), day_type * folds + fold] = 1.0
        S = (onehot.T @ x).reshape(4, folds, 24)
        C = (onehot.T @ fin.astype(np.float64)).reshape(4, folds, 24)
        D = (onehot.T @ has.astype(np.float64)).reshape(4, folds)
        order = fallback_order(saturday_works)
        for f in range(folds):
            s_t, c_t, d_t = S.sum(1) - S[:, f], C.sum(1) - C[:, f], D.sum(1) - D[:, f]
            with np.errstate(invalid="ignore", divide="ignore"):
                own = s_t / c_t
            prof = np.full((4, 24), np.nan)
            p = 0
            for t in range(4):
                if d_t[t] >= MIN_DAYS:
                    prof[t], p = own[t], p + 24
                    continue
                alt = next((a for a in order[t][1:] if d_t[a] >= MIN_DAYS), None)
                if alt is not None:
                    prof[t] = own[alt]
                elif d_t[list(order[t])].sum() >= MIN_DAYS:
                    with np.errstate(invalid="ignore", divide="ignore"):
                        prof[t] = s_t[list(order[t])].sum(0) / c_t[list(order[t])].sum(0)
                    p += 24
            p_max = max(p_max, p)
            test = fold == f
            pred[test] = prof[day_type[test]]
    else:
        for f in range(folds):
            test = np.nonzero(fold == f)[0]
            train = np.nonzero(fold != f)[0]
            prof, _, p = fit_profiles(kw, day_type, train, saturday_works, location, with_sigma=False)
            p_max = max(p_max, p)
            pred[test] = predict(prof, day_type[test])
    return pred, p_max


def fit_metrics(kw: np.ndarray, day_type: np.ndarray, saturday_works: bool, n_folds: int = N_FOLDS,
                location: str = "mean") -> dict:
    """ASHRAE Guideline 14 CV(RMSE) and NMBE of the hourly model, out of sample
    (folds of whole weeks).  Fractions, e.g. 0.12 = 12 %.  Scored with the mean
    profile (the expected consumption; medians of skewed loads under-predict
    totals, which NMBE would show as bias)."""
    n_days = kw.shape[0]
    week = np.arange(n_days) // 7
    folds = min(n_folds, int(week.max()) + 1 if n_days else 0)
    if folds < 2:
        return {"cv_rmse": None, "nmbe": None, "n_hours": 0, "method": "insufficient data (< 2 weeks)"}
    pred, p_max = fold_predictions(kw, day_type, saturday_works, folds, location)
    return metrics_from_predictions(kw, pred, p_max,
                                    f"hourly, day type x hour-of-day {location}s, {folds}-fold by week, out of sample")


def metrics_from_predictions(kw: np.ndarray, pred: np.ndarray, p_max: int, method: str) -> dict:
    """Hourly CV(RMSE) and NMBE (dof = n - p) and the monthly ones (30-day blocks of
    the same predictions) of out-of-sample predictions (days, 24)."""
    n_days = kw.shape[0]
    ok = np.isfinite(kw) & np.isfinite(pred)
    n = int(ok.sum())
    y, r = kw[ok], kw[ok] - pred[ok]
    dof = max(n - p_max, 1)
    ybar = float(y.mean()) if n else 0.0
    if n == 0 or ybar <= 0:
        return {"cv_rmse": None, "nmbe": None, "n_hours": n, "method": "no positive load"}
    # the same predictions summed per month (ASHRAE monthly limits: 15 % / 5 %)
    full = ok.all(axis=1)
    month = (np.arange(n_days) // 30)[full]
    ym = np.bincount(month, weights=kw[full].sum(axis=1))
    pm = np.bincount(month, weights=pred[full].sum(axis=1))
    keep = ym > 0
    ym, pm = ym[keep], pm[keep]
    monthly = {}
    if ym.size >= 2:
        dof_m = max(ym.size - 1, 1)
        monthly = {"cv_rmse_monthly": float(np.sqrt(np.sum((ym - pm) ** 2) / dof_m) / ym.mean()),
                   "nmbe_monthly": float(np.sum(ym - pm) / (dof_m * ym.mean())), "n_months": int(ym.size)}
    return {
        "cv_rmse": float(np.sqrt(np.sum(r * r) / dof) / ybar),
        "nmbe": float(np.sum(r) / (dof * ybar)),
        **monthly,
        "n_hours": n, "n_parameters": p_max,
        "method": method,
    }


@dataclass
class GapDay:
    row: int                  # day row in the matrix
    excess_kwh: float
    hours: int
    first_hour: int
    last_hour: int            # inclusive
    actual_kwh: float
    baseline_kwh: float
    pattern: str              # left_on | holiday_run | night_high | high_day


def find_gap_days(kw: np.ndarray, day_type: np.ndarray, prof: np.ndarray, sig: np.ndarray,
                  production_hours: np.ndarray) -> list[GapDay]:
    """Days whose consumption rises clearly above the baseline of their day type.

    production_hours: (days, 24) bool, the hour is (mostly) in production.
    Only excess counts (waste); low days (an unknown company holiday) never are.
    """
    pooled = _nanmedian(sig, axis=1)[day_type]
    return gap_days(kw, day_type, prof[day_type], sig[day_type], pooled, prof[WORKDAY], production_hours)


def gap_days(kw: np.ndarray, day_type: np.ndarray, base: np.ndarray, s: np.ndarray, pooled: np.ndarray,
             work_prof: np.ndarray, production_hours: np.ndarray) -> list[GapDay]:
    """`find_gap_days` against any baseline: base and s (days, 24) the baseline kW and
    its robust spread per day and hour, pooled (days,) a floor for the spread (a
    cell's MAD over 3 holidays can be ~0), work_prof (24,) a workday's kW (tells a
    holiday run from equipment left on)."""
    typical_peak = float(np.nanpercentile(kw, 95)) if np.isfinite(kw).any() else 0.0
    thr = np.fmax(np.fmax(HOUR_SIGMAS * np.fmax(s, 0.5 * pooled[:, None]), HOUR_RELATIVE * base),
                  HOUR_OF_PEAK * typical_peak)
    excess = kw - base
    high = np.nan_to_num(excess > thr, nan=False) & np.isfinite(kw)
    mean_day_kwh = float(np.nanmean(np.nansum(kw, axis=1))) if kw.size else 0.0
    day_excess = np.where(high, excess, 0.0).sum(axis=1)
    n_high = high.sum(axis=1)
    hits = np.nonzero((n_high >= DAY_MIN_HOURS) & (day_excess >= DAY_OF_MEAN_DAY * mean_day_kwh))[0]
    out = []
    for r in hits:
        hrs = np.nonzero(high[r])[0]
        worked = production_hours[r].any()
        if not worked and day_type[r] != WORKDAY:
            # non-production day: near a workday's level = ran like a workday, else left on
            work_level = np.nanmean(work_prof[hrs]) if np.isfinite(work_prof[hrs]).any() else np.inf
            pattern = "holiday_run" if np.nanmean(kw[r, hrs]) >= 0.7 * work_level else "left_on"
        elif not production_hours[r, hrs].any():
            pattern = "night_high"
        else:
            pattern = "high_day"
        ok = np.isfinite(kw[r])
        out.append(GapDay(int(r), float(day_excess[r]), int(hrs.size), int(hrs[0]), int(hrs[-1]),
                          float(kw[r, ok].sum()), float(base[r, ok].sum()), pattern))
    return out


def day_matrix(t_ms: np.ndarray, power_kw: np.ndarray, dur_s: np.ndarray, calendar) -> tuple[DayMatrix, np.ndarray]:
    """Hourly mean kW arranged as local days x 24, with the day types and a
    (days, 24) mask of production hours (the hour's middle is in production)."""
    from .resample import MS_PER_HOUR, hourly_mean

    h0 = int(t_ms[0]) // MS_PER_HOUR * MS_PER_HOUR
    n = int(t_ms[-1] - h0) // MS_PER_HOUR + 1
    return day_matrix_from_hourly(hourly_mean(t_ms, power_kw, dur_s, h0, n), h0, calendar)


def day_matrix_from_hourly(kw_h: np.ndarray, h0_ms: int, calendar) -> tuple[DayMatrix, np.ndarray]:
    """`day_matrix` from hourly means already computed (UTC hours from `h0_ms`)."""
    from .resample import MS_PER_HOUR

    n = kw_h.size
    mid = (h0_ms + np.arange(n, dtype=np.int64) * MS_PER_HOUR + MS_PER_HOUR // 2).astype("datetime64[ms]")
    lt, _, prod = calendar.classify(mid)
    d0 = int(lt.day.min())
    n_days = int(lt.day.max()) - d0 + 1
    row, col = lt.day - d0, lt.minute // 60
    kw = np.full((n_days, 24), np.nan)
    kw[row, col] = kw_h
    prod_h = np.zeros((n_days, 24), bool)
    prod_h[row, col] = prod
    types = calendar.day_types(d0, d0 + n_days - 1).astype(np.int64)
    return DayMatrix(kw, d0, types), prod_h
