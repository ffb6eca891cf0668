"""Outdoor temperature and the energy that follows it: change-point models.

A chiller, an air conditioner or a heater uses energy in proportion to how far
the day's mean outdoor temperature lies beyond a balance point (ASHRAE
Guideline 14 / CalTRACK daily "change-point" models):

    E_day = a                                   intercept only
          + b_h * max(T_h - T_day, 0)           heating below balance point T_h
          + b_c * max(T_day - T_c, 0)           cooling above balance point T_c

`fit_change_point` tries the four forms (intercept, heating, cooling, heating
and cooling), each with balance points on a grid of the observed temperatures,
by least squares in one vectorised pass per form, and keeps the form with the
lowest BIC (balance points count as parameters) among those whose extra terms
explain at least another `MIN_GAIN` of the variance, so a simpler form wins
unless the extra terms explain clearly more.  Slopes must be positive (energy rises
away from the balance point); a form whose best fit has a negative slope is
not a candidate.

Temperatures in degrees Celsius, energies in kWh per day.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_DAYS_FOR_FIT = 10        # fewer days of a type than this: intercept only
BALANCE_QUANTILES = np.linspace(0.1, 0.9, 13)    # balance point candidates: quantiles of the days' temperatures
MIN_DAYS_BEYOND = 5          # a balance point needs this many days beyond it
MIN_GAIN = 0.02              # a richer form must explain another 2 % of the daily variance


@dataclass
class ChangePointModel:
    form: str                          # intercept | heating | cooling | heating_cooling
    intercept_kwh: float
    heating_kwh_per_degc: float = 0.0
    heating_balance_c: float | None = None
    cooling_kwh_per_degc: float = 0.0
    cooling_balance_c: float | None = None
    n_days: int = 0
    r2: float = 0.0

    def describe(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def heating_degrees(temp_c: np.ndarray, balance_c: float | np.ndarray) -> np.ndarray:
    """max(balance - T, 0): heating degree-days of a day mean temperature."""
    return np.maximum(np.asarray(balance_c, dtype=np.float64) - temp_c, 0.0)


def cooling_degrees(temp_c: np.ndarray, balance_c: float | np.ndarray) -> np.ndarray:
    """max(T - balance, 0): cooling degree-days of a day mean temperature."""
    return np.maximum(temp_c - np.asarray(balance_c, dtype=np.float64), 0.0)


def predict_change_point(model: ChangePointModel, temp_c: np.ndarray) -> np.ndarray:
    """Daily energy (kWh) the model expects at these day mean temperatures."""
    t = np.asarray(temp_c, dtype=np.float64)
    e = np.full(t.shape, model.intercept_kwh)
    if model.heating_balance_c is not None:
        e = e + model.heating_kwh_per_degc * heating_degrees(t, model.heating_balance_c)
    if model.cooling_balance_c is not None:
        e = e + model.cooling_kwh_per_degc * cooling_degrees(t, model.cooling_balance_c)
    return e


def _one_slope(e: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least squares e = a + b x for each row of x (candidates, days): (a, b, sse).
    The sse comes from the sums (sum of squares of e about its mean minus the part
    the slope explains): good to rank candidates; recompute the chosen one's from
    its residuals (`_sse`)."""
    n = e.size
    xm = x.sum(axis=1, keepdims=True) / n          # = mean (same sum), without its per-call overhead
    em = e.sum() / n
    ec = e - em
    dx = x - xm
    sxx = np.einsum("ij,ij->i", dx, dx)
    sxe = dx @ ec
    pos = sxx > 0
    b = np.where(pos, sxe / np.where(pos, sxx, 1.0), 0.0)
    a = em - b * xm[:, 0]
    return a, b, float(ec @ ec) - b * sxe


def _sse(e: np.ndarray, a: float, b: float, x: np.ndarray) -> float:
    r = e - a - b * x
    return float(r @ r)


def fit_change_point(energy_kwh: np.ndarray, temp_c: np.ndarray) -> ChangePointModel:
    """The best change-point model of daily energy on daily mean temperature
    (NaN days are ignored).  See the module docstring."""
    return fit_change_points([(energy_kwh, temp_c)])[0]


def fit_change_points(series: list[tuple[np.ndarray, np.ndarray]]) -> list[ChangePointModel]:
    """`fit_change_point` of several (energy_kwh, temp_c) series at once (e.g. the day
    types of a channel, or its folds): the candidate fits of all of them are one
    vectorised pass over a (series, candidates, days) array padded with empty days,
    so a channel's 4 or 16 fits cost about one."""
    out: list[ChangePointModel | None] = [None] * len(series)
    todo = []
    for k, (energy_kwh, temp_c) in enumerate(series):
        e = np.asarray(energy_kwh, dtype=np.float64)
        t = np.asarray(temp_c, dtype=np.float64)
        ok = np.isfinite(e) & np.isfinite(t)
        e, t = e[ok], t[ok]
        n = e.size
        if n == 0:
            out[k] = ChangePointModel("intercept", 0.0, n_days=0)
            continue
        sst = float(np.sum((e - e.mean()) ** 2))
        out[k] = ChangePointModel("intercept", float(e.mean()), n_days=n)
        if n >= MIN_DAYS_FOR_FIT and sst > 0:
            todo.append((k, e, t, sst))
    if not todo:
        return out      # type: ignore[return-value]
    g_n = len(todo)
    width = max(e.size for _, e, _, _ in todo)
    E = np.zeros((g_n, width))
    T = np.zeros((g_n, width))
    M = np.zeros((g_n, width))
    cands = np.empty((g_n, BALANCE_QUANTILES.size))
    ns = np.empty(g_n)
    for g, (_, e, t, _) in enumerate(todo):
        n = e.size
        E[g, :n], T[g, :n], M[g, :n], ns[g] = e, t, 1.0, n
        # quantiles by index (np.quantile costs more than the fit); repeated values stay:
        # they are the same candidate twice, and the first of equal fits is kept
        cands[g] = np.sort(t)[np.round(BALANCE_QUANTILES * (n - 1)).astype(int)]
    hdd = np.maximum(cands[:, :, None] - T[:, None, :], 0.0) * M[:, None, :]       # (series, cands, days)
    cdd = np.maximum(T[:, None, :] - cands[:, :, None], 0.0) * M[:, None, :]
    # enough days on the far side of each balance point
    h_ok = (hdd > 0).sum(axis=2) >= MIN_DAYS_BEYOND
    c_ok = (cdd > 0).sum(axis=2) >= MIN_DAYS_BEYOND
    em = E.sum(axis=1) / ns
    ec = (E - em[:, None]) * M
    see = np.einsum("gn,gn->g", ec, ec)
    one = {}
    for form, x in (("heating", hdd), ("cooling", cdd)):
        xm = x.sum(axis=2) / ns[:, None]
        dx = (x - xm[:, :, None]) * M[:, None, :]
        sxx = np.einsum("gcn,gcn->gc", dx, dx)
        sxe = np.einsum("gcn,gn->gc", dx, ec)
        pos = sxx > 0
        slope = np.where(pos, sxe / np.where(pos, sxx, 1.0), 0.0)
        one[form] = (em[:, None] - slope * xm, slope, see[:, None] - slope * sxe)
    # heating and cooling: every pair of candidates T_h <= T_c.  The 3 x 3 normal equations
    # of all pairs come from per-candidate sums and one (candidates x candidates) product
    # of the degree days; the same small ridge as a direct solve
    nc = BALANCE_QUANTILES.size
    ih, ic = np.triu_indices(nc)
    sh, sc = hdd.sum(axis=2), cdd.sum(axis=2)
    A = np.empty((g_n, ih.size, 3, 3))
    A[:, :, 0, 0] = ns[:, None]
    A[:, :, 0, 1] = A[:, :, 1, 0] = sh[:, ih]
    A[:, :, 0, 2] = A[:, :, 2, 0] = sc[:, ic]
    A[:, :, 1, 1] = np.einsum("gcn,gcn->gc", hdd, hdd)[:, ih]
    A[:, :, 2, 2] = np.einsum("gcn,gcn->gc", cdd, cdd)[:, ic]
    A[:, :, 1, 2] = A[:, :, 2, 1] = np.einsum("gin,gjn->gij", hdd, cdd)[:, ih, ic]
    y = np.stack([np.repeat(E.sum(axis=1)[:, None], ih.size, axis=1), np.einsum("gcn,gn->gc", hdd, E)[:, ih],
                  np.einsum("gcn,gn->gc", cdd, E)[:, ic]], axis=2)
    Ar = A + np.eye(3) * (1e-9 * np.trace(A, axis1=2, axis2=3))[:, :, None, None]
    coef = np.linalg.solve(Ar, y[..., None])[..., 0]
    # residual sum of squares of every pair from the same sums (to rank them), with the
    # energies centred so that it cancels against the variance, not the mean square
    yc = np.stack([ec.sum(axis=1)[:, None].repeat(ih.size, axis=1), np.einsum("gcn,gn->gc", hdd, ec)[:, ih],
                   np.einsum("gcn,gn->gc", cdd, ec)[:, ic]], axis=2)
    cc = coef.copy()
    cc[:, :, 0] -= em[:, None]
    sse2 = see[:, None] - 2.0 * np.einsum("gpk,gpk->gp", cc, yc) + np.einsum("gpk,gpkl,gpl->gp", cc, A, cc)
    valid2 = (coef[:, :, 1] > 0) & (coef[:, :, 2] > 0) & h_ok[:, ih] & c_ok[:, ic]
    for g, (k, e, t, sst) in enumerate(todo):
        out[k] = _choose_form(e, t, sst, cands[g], h_ok[g], c_ok[g], {f: (a[g], b[g], s[g]) for f, (a, b, s) in
                                                                       one.items()},
                              coef[g], sse2[g], valid2[g], ih, ic, out[k])
    return out      # type: ignore[return-value]


def _choose_form(e: np.ndarray, t: np.ndarray, sst: float, cands: np.ndarray, h_ok: np.ndarray, c_ok: np.ndarray,
                 one: dict, coef: np.ndarray, sse2: np.ndarray, valid2: np.ndarray, ih: np.ndarray, ic: np.ndarray,
                 best: ChangePointModel) -> ChangePointModel:
    """The form kept for one series from its candidate fits (see the module docstring)."""
    n = e.size

    def bic(sse: float, k: int) -> float:
        return n * np.log(max(sse, 1e-12 * sst) / n) + k * np.log(n)

    best_bic, best_sse = bic(sst, 1), sst

    def better(sse: float, k: int) -> bool:
        # lower BIC, and the extra terms explain at least MIN_GAIN of the variance
        return bic(sse, k) < best_bic and best_sse - sse >= MIN_GAIN * sst
    for form, okc in (("heating", h_ok), ("cooling", c_ok)):
        a, b, sse = one[form]
        valid = okc & (b > 0)
        if not valid.any():
            continue
        i = int(np.argmin(np.where(valid, sse, np.inf)))
        x = heating_degrees(t, cands[i]) if form == "heating" else cooling_degrees(t, cands[i])
        sse_i = _sse(e, a[i], b[i], x)           # the chosen one's from its residuals
        if better(sse_i, 3) and (best.form == "intercept" or sse_i < best_sse):
            best_bic, best_sse = bic(sse_i, 3), sse_i
            best = ChangePointModel(form, float(a[i]), n_days=n, r2=1.0 - sse_i / sst)
            if form == "heating":
                best.heating_kwh_per_degc, best.heating_balance_c = float(b[i]), float(cands[i])
            else:
                best.cooling_kwh_per_degc, best.cooling_balance_c = float(b[i]), float(cands[i])
    if valid2.any():
        i = int(np.argmin(np.where(valid2, sse2, np.inf)))
        r = e - (coef[i, 0] + coef[i, 1] * heating_degrees(t, cands[ih[i]]) + coef[i, 2] * cooling_degrees(t, cands[ic[i]]))
        sse_i = float(r @ r)
        if better(sse_i, 5):
            best = ChangePointModel("heating_cooling", float(coef[i, 0]), float(coef[i, 1]), float(cands[ih[i]]),
                                    float(coef[i, 2]), float(cands[ic[i]]), n_days=n, r2=1.0 - sse_i / sst)
    return best


def daily_mean_temperature(temp_day_hour_c: np.ndarray, min_hours: int = 12) -> np.ndarray:
    """Mean of each day's hourly temperatures (days, 24) -> (days,); NaN where fewer
    than `min_hours` hours were measured."""
    fin = np.isfinite(temp_day_hour_c)
    cnt = fin.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.where(fin, temp_day_hour_c, 0.0).sum(axis=1) / cnt
    m[cnt < min_hours] = np.nan
    return m


def is_outdoor_temperature(quantity: str, equipment_kind: str | None) -> bool:
    """A channel is the site's outdoor temperature when it measures temperature and
    its equipment kind says outdoor air (English or Japanese)."""
    return quantity == "temperature_c" and (equipment_kind or "").strip().lower() in OUTDOOR_KINDS


OUTDOOR_KINDS = {"outdoor_air", "outdoor", "outside_air", "weather", "外気", "外気温"}
