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
    e = np.asarray(energy_kwh, dtype=np.float64)
    t = np.asarray(temp_c, dtype=np.float64)
    ok = np.isfinite(e) & np.isfinite(t)
    e, t = e[ok], t[ok]
    n = e.size
    if n == 0:
        return ChangePointModel("intercept", 0.0, n_days=0)
    sst = float(np.sum((e - e.mean()) ** 2))
    best = ChangePointModel("intercept", float(e.mean()), n_days=n)
    if n < MIN_DAYS_FOR_FIT or sst <= 0:
        return best

    def bic(sse: float, k: int) -> float:
        return n * np.log(max(sse, 1e-12 * sst) / n) + k * np.log(n)

    best_bic, best_sse = bic(sst, 1), sst

    def better(sse: float, k: int) -> bool:
        # lower BIC, and the extra terms explain at least MIN_GAIN of the variance
        return bic(sse, k) < best_bic and best_sse - sse >= MIN_GAIN * sst
    ts = np.sort(t)         # quantiles by index: np.quantile costs more than the fit here
    q = ts[np.round(BALANCE_QUANTILES * (n - 1)).astype(int)]        # sorted: unique = drop repeats
    cands = q[np.concatenate(([True], q[1:] != q[:-1]))]
    hdd = heating_degrees(t[None, :], cands[:, None])
    cdd = cooling_degrees(t[None, :], cands[:, None])
    # enough days on the far side of each balance point
    h_ok = (hdd > 0).sum(axis=1) >= MIN_DAYS_BEYOND
    c_ok = (cdd > 0).sum(axis=1) >= MIN_DAYS_BEYOND
    for form, x, okc in (("heating", hdd, h_ok), ("cooling", cdd, c_ok)):
        a, b, sse = _one_slope(e, x)
        valid = okc & (b > 0)
        if not valid.any():
            continue
        i = int(np.argmin(np.where(valid, sse, np.inf)))
        sse_i = _sse(e, a[i], b[i], x[i])
        if better(sse_i, 3) and (best.form == "intercept" or sse_i < best_sse):
            best_bic, best_sse = bic(sse_i, 3), sse_i
            best = ChangePointModel(form, float(a[i]), n_days=n, r2=1.0 - sse_i / sst)
            if form == "heating":
                best.heating_kwh_per_degc, best.heating_balance_c = float(b[i]), float(cands[i])
            else:
                best.cooling_kwh_per_degc, best.cooling_balance_c = float(b[i]), float(cands[i])
    # heating and cooling: every pair T_h <= T_c.  The 3 x 3 normal equations of all pairs
    # come from per-candidate sums and one (candidates x candidates) product of the degree
    # days, not from a (pairs, 3, days) design array; the same ridge as a direct solve
    ih, ic = np.nonzero((cands[:, None] <= cands[None, :]) & h_ok[:, None] & c_ok[None, :])
    if ih.size:
        sh, sc = hdd.sum(axis=1), cdd.sum(axis=1)
        A = np.empty((ih.size, 3, 3))
        A[:, 0, 0] = n
        A[:, 0, 1] = A[:, 1, 0] = sh[ih]
        A[:, 0, 2] = A[:, 2, 0] = sc[ic]
        A[:, 1, 1] = np.einsum("ij,ij->i", hdd, hdd)[ih]
        A[:, 2, 2] = np.einsum("ij,ij->i", cdd, cdd)[ic]
        A[:, 1, 2] = A[:, 2, 1] = (hdd @ cdd.T)[ih, ic]
        y = np.stack([np.full(ih.size, e.sum()), (hdd @ e)[ih], (cdd @ e)[ic]], axis=1)
        Ar = A + np.eye(3)[None] * 1e-9 * np.trace(A, axis1=1, axis2=2)[:, None, None]
        coef = np.linalg.solve(Ar, y[..., None])[..., 0]
        # residual sum of squares of every pair from the same sums (to rank them), with the
        # energies centred so that it cancels against the variance, not the mean square ...
        ec = e - e.mean()
        yc = np.stack([np.full(ih.size, ec.sum()), (hdd @ ec)[ih], (cdd @ ec)[ic]], axis=1)
        cc = coef.copy()
        cc[:, 0] -= e.mean()
        sse = float(ec @ ec) - 2.0 * np.einsum("pk,pk->p", cc, yc) + np.einsum("pk,pkl,pl->p", cc, A, cc)
        valid = (coef[:, 1] > 0) & (coef[:, 2] > 0)
        if valid.any():
            i = int(np.argmin(np.where(valid, sse, np.inf)))
            # ... and the chosen one's from its residuals (no cancellation in what is reported)
            r = e - (coef[i, 0] + coef[i, 1] * hdd[ih[i]] + coef[i, 2] * cdd[ic[i]])
            sse_i = float(r @ r)
            if better(sse_i, 5):
                best = ChangePointModel("heating_cooling", float(coef[i, 0]), float(coef[i, 1]), float(cands[ih[i]]),
                                        float(coef[i, 2]), float(cands[ic[i]]), n_days=n,
                                        r2=1.0 - sse_i / sst)
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
