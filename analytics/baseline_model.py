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

Every prediction is a weighted mean over training days: the weights carry the
day type (a type with fewer than `baseline.MIN_DAYS` training days borrows a
related type), the folds (out of sample) or leave-one-out (detection), and the
recency.  The exponential recency weights exp(-|i - j| / tau) form one (days, days)
kernel per site (`recency_kernel_cached`); each (group, source type) takes only its
block of predicted rows x training days and multiplies it with the training days'
sums (one small product: a year is at most 365 x 365 x 27).  `recency_sums` is the
same sums in O(days) by a forward and a backward recursive filter, for long inputs.

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
DRIFT_SIGNAL_RATIO = 2.0    # drift is tried when weekly levels vary this much more than chance (F ratio)
MIN_WEATHER_R2 = 0.3        # weather-driven: the change-point fit explains this share of the daily variance ...
MIN_WEATHER_SWING = 0.10    # ... and moves the day's expected energy by this share of its mean
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


def recency_sums(x: np.ndarray, tau_days: float | None) -> np.ndarray:
    """sum_j exp(-|i - j| / tau) x[j] for every day i (along axis 0), in O(days):
    a forward and a backward exponentially decaying running sum (the kernel is
    their sum, minus the day itself counted twice).  tau None: plain sums (weight 1)."""
    x = np.asarray(x, dtype=np.float64)
    a = 1.0 if tau_days is None else float(np.exp(-1.0 / tau_days))
    return _decaying_cumsum(x, a) + _decaying_cumsum(x[::-1], a)[::-1] - x


def _decaying_cumsum(x: np.ndarray, a: float) -> np.ndarray:
    """y[i] = sum_{j <= i} a^(i - j) x[j] along axis 0: cumulative sums of x scaled by
    a^-k inside blocks short enough that a^-k stays under 1e6 (no overflow, no
    precision loss), the running total carried from block to block."""
    if a >= 1.0:
        return np.cumsum(x, axis=0)
    if a <= 0.0:
        return x.copy()
    block = max(1, int(np.log(1e6) / -np.log(a)))
    out = np.empty_like(x)
    carry = np.zeros(x.shape[1:])
    shape = (-1,) + (1,) * (x.ndim - 1)
    for s0 in range(0, x.shape[0], block):
        seg = x[s0:s0 + block]
        k = np.arange(seg.shape[0], dtype=np.float64)
        up, down = a ** -k, a ** k
        out[s0:s0 + block] = np.cumsum(seg * up.reshape(shape), axis=0) * down.reshape(shape) \
            + carry * (a * down).reshape(shape)
        carry = out[s0 + seg.shape[0] - 1]
    return out


def recency_kernel(n_days: int, tau_days: float | None) -> np.ndarray:
    """(days, days) weights exp(-|i - j| / tau) (ones when tau is None): the explicit
    form of what `recency_sums` applies, for tests and small inputs."""
    if tau_days is None:
        return np.ones((n_days, n_days))
    d = np.arange(n_days, dtype=np.float64)
    return np.exp(-np.abs(d[:, None] - d[None, :]) / tau_days)


_KERNELS: dict[tuple[int, float], np.ndarray] = {}


def recency_kernel_cached(n_days: int, tau_days: float) -> np.ndarray:
    """`recency_kernel`, kept per (days, tau): every channel of a site and every fold
    shares it (a year is 1 MB; a few are kept, read-only)."""
    key = (int(n_days), float(tau_days))
    k = _KERNELS.get(key)
    if k is None:
        if len(_KERNELS) >= 8:
            _KERNELS.clear()
        k = recency_kernel(n_days, tau_days)
        k.flags.writeable = False
        _KERNELS[key] = k
    return k


def source_types(day_type: np.ndarray, counts: np.ndarray, saturday_works: bool) -> np.ndarray:
    """For each row the day type whose days predict it: its own type when `counts`
    (rows, 4: training days of each type available to the row) holds at least
    MIN_DAYS of it, else the first related type that does (fallback_order), else its own."""
    order = fallback_order(saturday_works)
    src = day_type.copy()
    for t in range(4):
        rows = np.nonzero(day_type == t)[0]
        if rows.size == 0:
            continue
        chosen = np.full(rows.size, -1)
        for alt in order[t]:
            chosen[(chosen < 0) & (counts[rows, alt] >= MIN_DAYS)] = alt
        chosen[chosen < 0] = t
        src[rows] = chosen
    return src


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
    return fit_weather_sets(e_day, temp_day, day_type, [rows])[0]


def fit_weather_sets(e_day: np.ndarray, temp_day: np.ndarray, day_type: np.ndarray, row_sets: list
                     ) -> list[dict[int, wx.ChangePointModel]]:
    """`fit_weather` of several sets of day rows (e.g. the folds' training days), all
    their day types fitted in one batch (`weather.fit_change_points`)."""
    keys, series = [], []
    usable = np.isfinite(e_day) & np.isfinite(temp_day)
    for k, rows in enumerate(row_sets):
        for t in range(4):
            sel = rows & (day_type == t)
            if np.count_nonzero(sel & usable) >= wx.MIN_DAYS_FOR_FIT:
                keys.append((k, t))
                series.append((e_day[sel], temp_day[sel]))
    out: list[dict[int, wx.ChangePointModel]] = [{} for _ in row_sets]
    for (k, t), m in zip(keys, wx.fit_change_points(series)):
        out[k][t] = m
    return out


@dataclass
class ModelSpec:
    name: str
    tau_days: float | None
    weather: bool


SPECS = (ModelSpec("day_type", None, False), ModelSpec("day_type+drift", DRIFT_TAU_DAYS, False),
         ModelSpec("day_type+weather", None, True), ModelSpec("day_type+weather+drift", DRIFT_TAU_DAYS, True))


def predict_group(kw: np.ndarray, day_type: np.ndarray, rows: np.ndarray, cols: np.ndarray, exclude_self: bool,
                  spec: ModelSpec, saturday_works: bool, temp_day: np.ndarray | None = None,
                  shapes: np.ndarray | None = None, out: np.ndarray | None = None,
                  models: dict[int, wx.ChangePointModel] | None = None
                  ) -> tuple[np.ndarray, dict[int, wx.ChangePointModel]]:
    """Predict the `rows` (bool, days) from the training days `cols` (bool, days; a row
    never learns from itself when `exclude_self`).  Writes into and returns `out`
    (days, 24), with the change-point models fitted on `cols` (weather specs)."""
    out, fitted = predict_groups(kw, day_type, [(rows, cols, models)], exclude_self, spec, saturday_works,
                                 temp_day, shapes, out)
    return out, fitted[0]


def predict_groups(kw: np.ndarray, day_type: np.ndarray, groups: list, exclude_self: bool, spec: ModelSpec,
                   saturday_works: bool, temp_day: np.ndarray | None = None, shapes: np.ndarray | None = None,
                   out: np.ndarray | None = None) -> tuple[np.ndarray, list[dict[int, wx.ChangePointModel]]]:
    """`predict_group` for several (rows, cols, models or None) groups (e.g. the folds),
    sharing the day sums, temperatures and the recency kernel."""
    n = kw.shape[0]
    out = np.full(kw.shape, np.nan) if out is None else out
    fin = np.isfinite(kw)
    has = fin.any(axis=1)
    x0 = np.where(fin, kw, 0.0)
    # hours measured: with no hole the count of each hour is the count of its days (one column)
    finf = np.ones((n, 1)) if fin.all() else fin.astype(np.float64)
    wd = finf.shape[1]
    weather = spec.weather and temp_day is not None
    known = np.isfinite(temp_day) if weather else None
    if weather and shapes is None:
        shapes = type_shapes(kw, day_type)
    e_day = daily_energy(kw) if weather else None
    tkw = np.where(known, temp_day, 0.0) if weather else None
    kernel = None if spec.tau_days is None else recency_kernel_cached(n, spec.tau_days)
    base = np.concatenate([x0, finf], axis=1)            # (days, 24 + wd): kW sums and hours measured
    type_rows = [day_type == t for t in range(4)]
    fitted = []
    for rows, cols, models in groups:
        cols = cols & has
        type_cols = [cols & type_rows[t] for t in range(4)]
        # a row's source type depends only on its type and whether it is one of the training
        # days (exclude_self takes it out of its type's count): 8 cases, looked up
        src = _source_table(tuple(np.count_nonzero(c) for c in type_cols), exclude_self,
                            saturday_works)[day_type + 4 * cols]
        if not weather:
            models = {}
        elif models is None:
            models = fit_weather(e_day, temp_day, day_type, cols)
        fitted.append(models)
        if weather:
            g = np.zeros(n)
            for t, m in models.items():
                g[type_rows[t]] = wx.predict_change_point(m, tkw[type_rows[t]])
        for t in range(4):
            r = rows & (src == t)
            if not r.any():
                continue
            m = models.get(t) if weather else None
            use_w = m is not None and m.form != "intercept"
            ri, ci = np.nonzero(r)[0], np.nonzero(type_cols[t])[0]
            x = base[ci]
            if use_w:
                kc = known[ci].astype(np.float64)
                x = np.concatenate([x, (g[ci] * kc)[:, None], kc[:, None]], axis=1)
            # the training days' sums weighted by recency: only the (rows, training days) block
            # of the kernel, one matrix product (a whole year is 365 x 365: cheaper than a filter)
            if kernel is None:
                sums = np.repeat(x.sum(axis=0)[None, :], ri.size, axis=0)
            else:
                sums = _kernel_product(kernel, ri, ci, x)
            if exclude_self:
                # a row never learns from itself: take its own term (weight 1) out again
                own = type_cols[t][ri]
                if own.any():
                    xs = base[ri[own]]
                    if use_w:
                        ks = known[ri[own]].astype(np.float64)
                        xs = np.concatenate([xs, (g[ri[own]] * ks)[:, None], ks[:, None]], axis=1)
                    sums[own] -= xs
            num, den = sums[:, :24], sums[:, 24:24 + wd]
            with np.errstate(invalid="ignore", divide="ignore"):
                p = np.where(den > 0, num / den, np.nan)
                if use_w:
                    g_self = wx.predict_change_point(m, tkw[r])
                    gw, kw_ = sums[:, 24 + wd], sums[:, 25 + wd]
                    mean_g = np.where(kw_ > 0, gw / kw_, np.nan)
                    adj = np.where(known[r] & np.isfinite(mean_g), g_self - mean_g, 0.0)
                    p = np.clip(p + shapes[t][None, :] * adj[:, None], 0.0, None)
            out[r] = p
    return out, fitted


_SOURCE_TABLES: dict[tuple, np.ndarray] = {}


def _source_table(type_counts: tuple[int, ...], exclude_self: bool, saturday_works: bool) -> np.ndarray:
    """`source_types` of the 8 cases (day type, is a training day): index type + 4 * is_training.
    Folds of whole weeks give the same counts channel after channel: kept per key."""
    key = (type_counts, exclude_self, saturday_works)
    table = _SOURCE_TABLES.get(key)
    if table is None:
        counts = np.tile(np.array(type_counts, dtype=np.float64), (8, 1))
        if exclude_self:
            counts[np.arange(4, 8), np.arange(4)] -= 1.0
        table = source_types(np.tile(np.arange(4), 2), counts, saturday_works)
        if len(_SOURCE_TABLES) > 4096:
            _SOURCE_TABLES.clear()
        _SOURCE_TABLES[key] = table
    return table


# OpenBLAS splits a product over its threads above m*n*k = 4 * 65536; for these small
# products the second thread costs more CPU (spin-waiting) than it saves
_SINGLE_THREAD_MNK = 4 * 65536


def _kernel_product(kernel: np.ndarray, ri: np.ndarray, ci: np.ndarray, x: np.ndarray) -> np.ndarray:
    """kernel[ri][:, ci] @ x in row chunks small enough for one BLAS thread."""
    step = max(1, _SINGLE_THREAD_MNK // max(ci.size * x.shape[1], 1))
    if ri.size <= step:
        return kernel[np.ix_(ri, ci)] @ x
    out = np.empty((ri.size, x.shape[1]))
    for s0 in range(0, ri.size, step):
        out[s0:s0 + step] = kernel[np.ix_(ri[s0:s0 + step], ci)] @ x
    return out


def fold_ids(n_days: int, folds: int = N_FOLDS) -> np.ndarray:
    return (np.arange(n_days) // 7) % folds


def out_of_sample(kw: np.ndarray, day_type: np.ndarray, spec: ModelSpec, saturday_works: bool,
                  temp_day: np.ndarray | None = None, folds: int = N_FOLDS, fold_models: list | None = None,
                  shapes: np.ndarray | None = None) -> np.ndarray:
    """Each fold of whole weeks predicted from the other folds (days, 24); the
    temperature models are refitted on each fold's training days (or given:
    `fold_models`, one dict per fold, shared by the weather specs)."""
    fold = fold_ids(kw.shape[0], folds)
    groups = [(fold == f, fold != f, fold_models[f] if fold_models is not None and spec.weather else None)
              for f in range(folds)]
    return predict_groups(kw, day_type, groups, False, spec, saturday_works, temp_day, shapes)[0]


def fold_weather_models(kw: np.ndarray, day_type: np.ndarray, temp_day: np.ndarray, folds: int = N_FOLDS
                        ) -> list[dict[int, wx.ChangePointModel]]:
    """The change-point models of each fold's training days (fitted once, used by
    every weather spec)."""
    fold = fold_ids(kw.shape[0], folds)
    e = daily_energy(kw)
    has = np.isfinite(kw).any(axis=1)
    return fit_weather_sets(e, temp_day, day_type, [has & (fold != f) for f in range(folds)])


def drifts(kw: np.ndarray, day_type: np.ndarray, min_ratio: float = DRIFT_SIGNAL_RATIO) -> bool:
    """Does the level move from week to week more than the days within a week scatter?
    Weekly means of the daily energy of the most common day type: their variance
    against the within-week variance / days per week (an F ratio).  A load without
    drift (ratio near 1) is not worth the drift model's cost; the out-of-sample test
    still decides for the others."""
    e = daily_energy(kw)
    t = int(np.bincount(day_type[np.isfinite(e)], minlength=4).argmax()) if np.isfinite(e).any() else WORKDAY
    sel = np.isfinite(e) & (day_type == t)
    if np.count_nonzero(sel) < 21:
        return False
    week = (np.arange(kw.shape[0]) // 7)[sel]
    x = e[sel]
    cnt = np.bincount(week)
    ok = cnt >= 2
    if np.count_nonzero(ok) < 4:
        return False
    mean_w = np.bincount(week, weights=x)[ok] / cnt[ok]
    within = (np.bincount(week, weights=x * x)[ok] - cnt[ok] * mean_w ** 2).sum() / max(int((cnt[ok] - 1).sum()), 1)
    between = float(np.var(mean_w, ddof=1))
    if within <= 0:
        return between > 0
    return between / (within / float(cnt[ok].mean())) >= min_ratio


def weather_driven(models: dict[int, wx.ChangePointModel], temp_day: np.ndarray) -> bool:
    """Does any day type's daily energy clearly follow the temperature: a change-point
    form that explains at least MIN_WEATHER_R2 of the daily variance and moves the
    expected energy by at least MIN_WEATHER_SWING of its mean over the observed
    temperatures.  (A drifting load whose drift happens to correlate with the
    season passes the form test but rarely both thresholds.)"""
    t = temp_day[np.isfinite(temp_day)]
    if t.size == 0:
        return False
    grid = np.linspace(float(t.min()), float(t.max()), 25)
    for m in models.values():
        if m.form == "intercept" or m.r2 < MIN_WEATHER_R2:
            continue
        e = wx.predict_change_point(m, grid)
        mean = float(np.mean(wx.predict_change_point(m, t)))
        if mean > 0 and (float(e.max()) - float(e.min())) >= MIN_WEATHER_SWING * mean:
            return True
    return False


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
    fold_models: list | None = None                                     # the folds' temperature models
    all_day_models: dict | None = None                                  # the temperature models of all days
    shapes: np.ndarray | None = None                                    # type_shapes of the channel (weather)


def choose_model(kw: np.ndarray, day_type: np.ndarray, saturday_works: bool, temp_day: np.ndarray | None,
                 static_cv: float | None, allow_drift: bool = True) -> Choice:
    """The simplest model whose out-of-sample CV(RMSE) no richer one beats by TIE_MARGIN.
    `static_cv`: CV(RMSE) of the plain day-type model, already computed by the caller."""
    n = kw.shape[0]
    cvs: dict[str, float | None] = {"day_type": static_cv}
    preds: dict[str, np.ndarray] = {}
    best, best_cv = SPECS[0], static_cv
    if n < 14 or static_cv is None:
        return Choice(best, cvs, False, "too few days to compare models" if temp_day is not None
                      else "no outdoor temperature")
    allow_drift = allow_drift and n >= 8 * 7 and drifts(kw, day_type)
    candidates = [SPECS[1]] if allow_drift else []
    reason = "no outdoor temperature"
    weather_signal = False
    fold_models = models = shapes = None
    if temp_day is not None and np.count_nonzero(np.isfinite(temp_day)) >= 14:
        # screen: does any day type's daily energy follow the temperature at all?
        e = daily_energy(kw)
        models = fit_weather(e, temp_day, day_type, np.isfinite(kw).any(axis=1))
        weather_signal = weather_driven(models, temp_day)
        if weather_signal:
            candidates += [SPECS[2]] + ([SPECS[3]] if allow_drift else [])
            fold_models = fold_weather_models(kw, day_type, temp_day)
            shapes = type_shapes(kw, day_type)          # the same for every weather candidate
        else:
            best_r2 = max((m.r2 for m in models.values()), default=0.0)
            reason = (f"daily energy does not follow the outdoor temperature (best change-point fit R2 "
                      f"{best_r2:.2f}, needs {MIN_WEATHER_R2:.2f} and a {MIN_WEATHER_SWING:.0%} swing)")
    elif temp_day is not None:
        reason = "too few days with outdoor temperature"
    for spec in candidates:
        p = out_of_sample(kw, day_type, spec, saturday_works, temp_day, fold_models=fold_models, shapes=shapes)
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
    return Choice(best, cvs, adjusted, reason, preds.get(best.name), 96 + (8 if best.weather else 0), fold_models,
                  models, shapes)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100.0 * x:.1f} %"


def detection_baseline(kw: np.ndarray, day_type: np.ndarray, spec: ModelSpec, saturday_works: bool,
                       temp_day: np.ndarray | None, exclude: np.ndarray | None = None,
                       models: dict[int, wx.ChangePointModel] | None = None, shapes: np.ndarray | None = None
                       ) -> tuple[np.ndarray, np.ndarray, dict[int, wx.ChangePointModel]]:
    """Baseline (days, 24) each day is compared with, learnt from every other day
    (leave-one-out) except the `exclude` days (non-routine days found on a first
    pass), and the robust spread (days, 24): scaled MAD of the residuals per
    (day type, hour).  `models`: the temperature models of the training days when
    already fitted (`Choice.all_day_models` when nothing is excluded)."""
    n = kw.shape[0]
    keep = np.ones(n, bool) if exclude is None else ~exclude
    base, models = predict_group(kw, day_type, np.ones(n, bool), keep, True, spec, saturday_works, temp_day,
                                 shapes, models=models)
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
