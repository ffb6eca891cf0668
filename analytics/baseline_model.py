"""Baselines that follow the weather and slow drift, chosen by out-of-sample fit.

The day-type x hour profile of `baseline.py` is the simplest model.  Two
extensions, each kept only when it predicts days it has not seen clearly
better (hourly CV(RMSE), 4 folds of whole weeks; the simpler model wins
ties, i.e. unless the CV(RMSE) falls by more than `TIE_MARGIN`):

- **drift**: a factory's level moves with the season, its order book, a new
  line.  The profile of day d is the mean of the days of its type weighted by
  recency, w = exp(-|d - j| / tau) with tau = `DRIFT_TAU_DAYS`, instead of the
  plain mean over the whole period.
- **weather**: per day type, a change-point model of daily energy on the day's
  mean outdoor temperature (`weather.fit_change_point`); the day's profile is
  moved by the model's expected energy at its temperature against the
  weighted mean of what the model expects on the days it was built from,
  spread over the hours in the shape of the day type's mean profile:

      yhat[d, h] = P_d[h] + shape_t[h] * (f_t(T_d) - sum_j w_dj f_t(T_j) / sum_j w_dj)

All predictions are one matrix product of a (days x days) weight matrix with
the (days x 24) hourly matrix: the weights carry the day type (a type with
fewer than `baseline.MIN_DAYS` training days borrows a related type), the
folds (out of sample) or leave-one-out (detection), and the recency.

`infer_days_off` recognises workdays on which the whole site ran at its
day-off level (company holidays nobody configured: 年末年始, summer break,
bridge days) so that they are not scored as workdays.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mieruka.calendar import COMPANY_HOLIDAY, SATURDAY, SUNDAY_HOLIDAY, WORKDAY

from . import weather as wx
from .baseline import MAD_TO_SIGMA, MIN_DAYS, N_FOLDS, _nanmedian, fallback_order

DRIFT_TAU_DAYS = 30.0       # recency weights: e-folding distance in days
TIE_MARGIN = 0.02           # a richer model must cut CV(RMSE) by more than 2 % (relative) to be chosen
OFF_LEVEL = 0.4             # a working day below day-off level + 40 % of (working - day-off) level was a day off
WORKS_SHARE = 0.4           # ... only where working days use clearly more than days off (40 %)
MODELS = ("day_type", "day_type+drift", "day_type+weather", "day_type+weather+drift")


def infer_days_off(energy_kwh_day: np.ndarray, day_type: np.ndarray) -> np.ndarray:
    """Working days (workday, Saturday) whose site energy is at the day-off level.

    energy_kwh_day: (days,) site energy per local day (NaN: not measured).
    Only where the site clearly idles on Sundays and holidays (their median is under
    60 % of the working type's median) and there are at least 3 such days: a
    24/7 site gets no inferred days off.  Returns a (days,) bool mask."""
    e = np.asarray(energy_kwh_day, dtype=np.float64)
    off = np.zeros(e.shape, bool)
    rest = e[(day_type == SUNDAY_HOLIDAY) & np.isfinite(e)]
    if rest.size < MIN_DAYS:
        return off
    ms = float(np.median(rest))
    for t in (WORKDAY, SATURDAY):
        sel = (day_type == t) & np.isfinite(e)
        if np.count_nonzero(sel) < MIN_DAYS:
            continue
        mt = float(np.median(e[sel]))
        if mt <= 0 or mt - ms < WORKS_SHARE * mt:
            continue
        off |= sel & (e < ms + OFF_LEVEL * (mt - ms))
    return off


def recency_kernel(n_days: int, tau_days: float | None) -> np.ndarray:
    """(days, days) weights exp(-|i - j| / tau); all ones when tau is None."""
    if tau_days is None:
        return np.ones((n_days, n_days))
    d = np.arange(n_days, dtype=np.float64)
    return np.exp(-np.abs(d[:, None] - d[None, :]) / tau_days)


def source_types(day_type: np.ndarray, allowed: np.ndarray, has: np.ndarray, saturday_works: bool) -> np.ndarray:
    """For each day (row) the day type whose days it is predicted from: its own type
    when the allowed training days hold at least MIN_DAYS of it, else the first
    related type that does (fallback_order), else its own."""
    n_types = 4
    onehot = (day_type[:, None] == np.arange(n_types)[None, :]) & has[:, None]      # (days, types)
    counts = allowed.astype(np.float64) @ onehot.astype(np.float64)               # (days, types)
    order = fallback_order(saturday_works)
    src = day_type.copy()
    for t in range(n_types):
        rows = day_type == t
        if not rows.any():
            continue
        chosen = np.full(rows.sum(), -1)
        for alt in order[t]:
            ok = (chosen < 0) & (counts[rows, alt] >= MIN_DAYS)
            chosen[ok] = alt
        chosen[chosen < 0] = t
        src[rows] = chosen
    return src


def weight_matrix(day_type: np.ndarray, allowed: np.ndarray, kernel: np.ndarray, has: np.ndarray,
                  saturday_works: bool) -> tuple[np.ndarray, np.ndarray]:
    """(W, src): W[i, j] = kernel[i, j] when day j may train day i's prediction and
    has j's source type; src: the type each row is predicted from."""
    src = source_types(day_type, allowed, has, saturday_works)
    W = kernel * allowed * (day_type[None, :] == src[:, None]) * has[None, :]
    return W, src


def weighted_profiles(kw: np.ndarray, W: np.ndarray) -> np.ndarray:
    """(days, 24) weighted mean of the training days' hours (NaN hours left out)."""
    fin = np.isfinite(kw)
    num = W @ np.where(fin, kw, 0.0)
    den = W @ fin.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def daily_energy(kw: np.ndarray, min_hours: int = 20) -> np.ndarray:
    """kWh per day from hourly mean kW (days, 24); a day with missing hours is
    scaled from its measured hours, NaN under `min_hours`."""
    fin = np.isfinite(kw)
    cnt = fin.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        e = np.where(fin, kw, 0.0).sum(axis=1) * 24.0 / cnt
    e[cnt < min_hours] = np.nan
    return e


def type_shapes(kw: np.ndarray, day_type: np.ndarray) -> np.ndarray:
    """(4, 24) share of each hour in the day type's mean day (flat where unknown)."""
    shapes = np.full((4, 24), 1.0 / 24.0)
    for t in range(4):
        rows = kw[day_type == t]
        if rows.size and np.isfinite(rows).any():
            with np.errstate(invalid="ignore"):
                m = np.nan_to_num(np.nanmean(rows, axis=0) if np.isfinite(rows).all(axis=0).any() else
                                  np.zeros(24), nan=0.0)
            m = np.clip(m, 0.0, None)
            if m.sum() > 0:
                shapes[t] = m / m.sum()
    return shapes


def fit_weather(e_day: np.ndarray, temp_day: np.ndarray, day_type: np.ndarray, rows: np.ndarray
                ) -> dict[int, wx.ChangePointModel]:
    """A change-point model per day type from the given day rows (bool mask)."""
    out = {}
    for t in range(4):
        sel = rows & (day_type == t)
        if np.count_nonzero(sel & np.isfinite(e_day) & np.isfinite(temp_day)) >= wx.MIN_DAYS_FOR_FIT:
            out[t] = wx.fit_change_point(e_day[sel], temp_day[sel])
    return out


def weather_adjustment(models: dict[int, wx.ChangePointModel], temp_day: np.ndarray, day_type: np.ndarray,
                       src: np.ndarray, W: np.ndarray) -> np.ndarray:
    """(days,) kWh to add to each day's profile: f_src(T_d) - weighted mean of f(T_j)
    over its training days.  0 where the type has no temperature model or T is unknown."""
    n = temp_day.size
    g = np.zeros(n)           # each day's expected energy under its own type's model
    g_self = np.zeros(n)      # each row's expected energy under its source type's model
    known = np.isfinite(temp_day)
    tt = np.where(known, temp_day, 0.0)
    modelled = np.zeros(n, bool)
    for t, m in models.items():
        if m.form == "intercept":
            continue
        g[day_type == t] = wx.predict_change_point(m, tt[day_type == t])
        g_self[src == t] = wx.predict_change_point(m, tt[src == t])
        modelled[src == t] = True
    Wk = W * known[None, :]
    den = Wk.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_g = np.where(den > 0, (Wk @ g) / den, 0.0)
    adj = np.where(modelled & known & (den > 0), g_self - mean_g, 0.0)
    return adj


@dataclass
class ModelSpec:
    name: str
    tau_days: float | None
    weather: bool


SPECS = (ModelSpec("day_type", None, False), ModelSpec("day_type+drift", DRIFT_TAU_DAYS, False),
         ModelSpec("day_type+weather", None, True), ModelSpec("day_type+weather+drift", DRIFT_TAU_DAYS, True))


def predict(kw: np.ndarray, day_type: np.ndarray, allowed: np.ndarray, spec: ModelSpec, saturday_works: bool,
            temp_day: np.ndarray | None = None, weather_rows: np.ndarray | None = None,
            kernels: dict | None = None) -> tuple[np.ndarray, dict[int, wx.ChangePointModel]]:
    """Predictions (days, 24) where row i learns only from the days allowed[i, :].
    With weather, the change-point models are fitted on `weather_rows` (bool, days)."""
    n = kw.shape[0]
    kernels = {} if kernels is None else kernels
    if spec.tau_days not in kernels:
        kernels[spec.tau_days] = recency_kernel(n, spec.tau_days)
    has = np.isfinite(kw).any(axis=1)
    W, src = weight_matrix(day_type, allowed, kernels[spec.tau_days], has, saturday_works)
    P = weighted_profiles(kw, W)
    models: dict[int, wx.ChangePointModel] = {}
    if spec.weather and temp_day is not None:
        e = daily_energy(kw)
        rows = weather_rows if weather_rows is not None else has
        models = fit_weather(e, temp_day, day_type, rows)
        adj = weather_adjustment(models, temp_day, day_type, src, W)
        P = np.clip(P + type_shapes(kw, day_type)[src] * adj[:, None], 0.0, None)
    return P, models


def fold_ids(n_days: int, folds: int = N_FOLDS) -> np.ndarray:
    return (np.arange(n_days) // 7) % folds


def out_of_sample(kw: np.ndarray, day_type: np.ndarray, spec: ModelSpec, saturday_works: bool,
                  temp_day: np.ndarray | None = None, folds: int = N_FOLDS, kernels: dict | None = None
                  ) -> np.ndarray:
    """Each fold of whole weeks predicted from the other folds (days, 24)."""
    n = kw.shape[0]
    fold = fold_ids(n, folds)
    if not spec.weather or temp_day is None:
        allowed = fold[:, None] != fold[None, :]
        return predict(kw, day_type, allowed, spec, saturday_works, kernels=kernels)[0]
    pred = np.full(kw.shape, np.nan)
    for f in range(folds):          # the temperature models are refitted per fold (4 small fits)
        test = fold == f
        allowed = np.broadcast_to(~test[None, :], (n, n))
        p, _ = predict(kw, day_type, allowed, spec, saturday_works, temp_day, ~test, kernels)
        pred[test] = p[test]
    return pred


def cv_rmse(kw: np.ndarray, pred: np.ndarray, n_params: int) -> tuple[float | None, float | None]:
    ok = np.isfinite(kw) & np.isfinite(pred)
    n = int(ok.sum())
    if n == 0:
        return None, None
    y, r = kw[ok], kw[ok] - pred[ok]
    ybar = float(y.mean())
    if ybar <= 0:
        return None, None
    dof = max(n - n_params, 1)
    return float(np.sqrt(np.sum(r * r) / dof) / ybar), float(np.sum(r) / (dof * ybar))


@dataclass
class Choice:
    spec: ModelSpec
    cv_rmse: dict[str, float | None] = field(default_factory=dict)     # per candidate model
    weather_adjusted: bool = False
    weather_reason: str = ""
    predictions: np.ndarray | None = None                               # out of sample, of the chosen model
    n_params: int = 96


def choose_model(kw: np.ndarray, day_type: np.ndarray, saturday_works: bool, temp_day: np.ndarray | None,
                 static_cv: float | None, kernels: dict | None = None, allow_drift: bool = True) -> Choice:
    """The simplest model whose out-of-sample CV(RMSE) no richer one beats by TIE_MARGIN.
    `static_cv`: CV(RMSE) of the plain day-type model, already computed by the caller."""
    n = kw.shape[0]
    cvs: dict[str, float | None] = {"day_type": static_cv}
    preds: dict[str, np.ndarray] = {}
    best, best_cv = SPECS[0], static_cv
    if n < 14 or static_cv is None:
        return Choice(best, cvs, False, "too few days to compare models" if temp_day is not None
                      else "no outdoor temperature")
    candidates = [SPECS[1]] if allow_drift and n >= 8 * 7 else []
    reason = "no outdoor temperature"
    weather_signal = False
    if temp_day is not None and np.count_nonzero(np.isfinite(temp_day)) >= 14:
        # screen: does any day type's daily energy follow the temperature at all?
        e = daily_energy(kw)
        models = fit_weather(e, temp_day, day_type, np.isfinite(kw).any(axis=1))
        weather_signal = any(m.form != "intercept" for m in models.values())
        if weather_signal:
            candidates += [SPECS[2]] + ([SPECS[3]] if allow_drift and n >= 8 * 7 else [])
        else:
            reason = "daily energy does not follow the outdoor temperature (change-point fit: intercept only)"
    elif temp_day is not None:
        reason = "too few days with outdoor temperature"
    for spec in candidates:
        p = out_of_sample(kw, day_type, spec, saturday_works, temp_day, kernels=kernels)
        cv, _ = cv_rmse(kw, p, 96 + (8 if spec.weather else 0))
        cvs[spec.name] = cv
        preds[spec.name] = p
        if cv is not None and best_cv is not None and cv < best_cv * (1.0 - TIE_MARGIN):
            best, best_cv = spec, cv
    adjusted = best.weather
    if weather_signal:
        wcv = min((cvs[s.name] for s in SPECS if s.weather and cvs.get(s.name) is not None), default=None)
        ref = cvs.get("day_type+drift") if best.tau_days is not None and not best.weather else static_cv
        if adjusted:
            base_cv = cvs["day_type+drift"] if best.tau_days is not None else static_cv
            reason = (f"temperature model improved out-of-sample CV(RMSE) {_pct(base_cv)} -> {_pct(best_cv)}")
        else:
            reason = (f"temperature model did not improve out-of-sample CV(RMSE) enough "
                      f"({_pct(wcv)} vs {_pct(ref)})")
    return Choice(best, cvs, adjusted, reason, preds.get(best.name), 96 + (8 if best.weather else 0))


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100.0 * x:.1f} %"


def detection_baseline(kw: np.ndarray, day_type: np.ndarray, spec: ModelSpec, saturday_works: bool,
                       temp_day: np.ndarray | None, exclude: np.ndarray | None = None, kernels: dict | None = None
                       ) -> tuple[np.ndarray, np.ndarray, dict[int, wx.ChangePointModel]]:
    """Baseline (days, 24) each day compared with, learnt from every other day
    (leave-one-out) except the `exclude` days (non-routine days found on a first
    pass), and the robust spread (days, 24): scaled MAD of the residuals per
    (day type, hour)."""
    n = kw.shape[0]
    keep = np.ones(n, bool) if exclude is None else ~exclude
    allowed = (~np.eye(n, dtype=bool)) & keep[None, :]
    base, models = predict(kw, day_type, allowed, spec, saturday_works, temp_day, keep, kernels)
    r = kw - base
    sig = np.full(kw.shape, np.nan)
    for t in range(4):
        rows = (day_type == t) & keep
        if np.count_nonzero(rows) >= MIN_DAYS:
            sig[day_type == t] = MAD_TO_SIGMA * _nanmedian(np.abs(r[rows]))
    fill = _nanmedian(sig[np.isfinite(sig).any(axis=1)]) if np.isfinite(sig).any() else np.zeros(24)
    sig = np.where(np.isfinite(sig), sig, fill[None, :])
    return base, sig, models


def off_days_as_company_holidays(day_type: np.ndarray, off: np.ndarray) -> np.ndarray:
    return np.where(off, COMPANY_HOLIDAY, day_type)
