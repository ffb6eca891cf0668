"""Air compressor with a receiver, vectorised.

Load/unload cycling is not scripted: it follows from air demand (production +
leaks) against capacity and the receiver's pressure band.  With demand D and
capacity C (free air, m3/min), receiver volume V and band ΔP, the receiver
fills in ΔP·V/(Pa·(C−D)) minutes and empties in ΔP·V/(Pa·D) minutes, so the
loaded share of a cycle is D/C, the quantity the leak-load method measures.
Instead of stepping a hysteresis state machine sample by sample, the cycle
count N(t) = ∫ dt / T_cycle(D(t)) is a cumulative sum, and a sample's loaded,
unloaded and stopped shares are differences of closed-form functions of N.
After `unload_run_on_s` unloaded the motor stops until pressure reaches the low
limit (off share).  A VSD machine modulates speed (power linear from its
no-load floor) and cycles at minimum speed when demand is below it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .scenario import CompressorSpec

P_ATM_MPA = 0.1013


@dataclass
class CompressorState:
    cycles: float = 0.0                 # cycle counter N
    stopped_since_ms: int | None = None  # scheduled stop began here


@dataclass
class CompressorOut:
    power_kw: np.ndarray
    pressure_mpa: np.ndarray
    loaded: np.ndarray       # share of each sample spent loaded (VSD: modulating or loaded at min speed)
    unloaded: np.ndarray
    off: np.ndarray
    delivered_m3min: np.ndarray   # mean free-air delivery
    extra: dict = field(default_factory=dict)


def _phase_mass(n: np.ndarray, width: np.ndarray, start: np.ndarray) -> np.ndarray:
    """∫0^n of the indicator 'frac(x) in [start, start+width)' dx (per-sample width/start)."""
    fl = np.floor(n)
    fr = n - fl
    return fl * width + np.clip(fr - start, 0.0, width)


def run_compressor(spec: CompressorSpec, demand_m3min: np.ndarray, running: np.ndarray, t_ms: np.ndarray,
                   step_s: float, state: CompressorState) -> CompressorOut:
    """Mean power and shares per sample interval [t, t+step) and the receiver pressure.

    demand_m3min: air drawn from the receiver (production + leaks), mean per sample.
    running: False where the compressor is switched off by schedule.
    """
    n = len(demand_m3min)
    lo, hi = spec.pressure_band_mpa
    band = hi - lo
    k = P_ATM_MPA / spec.receiver_m3                   # MPa per m3 of free air
    cap = spec.capacity_m3_per_min
    if spec.control == "vsd":
        speed = np.clip(demand_m3min / cap, spec.vsd_min_speed, 1.0)
        cyc_cap = np.where(demand_m3min < spec.vsd_min_speed * cap, spec.vsd_min_speed * cap, np.inf)
        loaded_kw = spec.unload_kw + (spec.full_load_power_kw - spec.unload_kw) * speed
    else:
        cyc_cap = np.full(n, cap)
        loaded_kw = np.full(n, spec.full_load_power_kw)
    d = np.maximum(demand_m3min, 1e-6)
    cycling = running & (d < cyc_cap)
    u = np.where(cycling, d / np.where(np.isfinite(cyc_cap), cyc_cap, 1.0), 1.0)          # loaded share
    t_cycle_min = np.where(cycling, band / k * (1.0 / np.maximum(cyc_cap - d, 1e-9) + 1.0 / d), np.inf)
    dn = np.where(cycling, (step_s / 60.0) / t_cycle_min, 0.0)
    n_end = state.cycles + np.cumsum(dn)
    n_start = n_end - dn
    run_on = np.where(cycling, (spec.unload_run_on_s / 60.0) / t_cycle_min, 1.0)
    off_w = np.clip(1.0 - u - run_on, 0.0, None)                                              # stopped share
    safe = np.where(dn > 0, dn, 1.0)
    loaded = np.where(cycling, (_phase_mass(n_end, u, 0.0) - _phase_mass(n_start, u, 0.0)) / safe, 1.0)
    off = np.where(cycling, (_phase_mass(n_end, off_w, 1.0 - off_w) - _phase_mass(n_start, off_w, 1.0 - off_w))
                   / safe, 0.0)
    loaded = np.where(running, np.clip(loaded, 0.0, 1.0), 0.0)
    off = np.where(running, np.clip(off, 0.0, 1.0 - loaded), 1.0)
    unloaded = np.clip(1.0 - loaded - off, 0.0, 1.0)
    power = loaded * loaded_kw + unloaded * spec.unload_kw

    # receiver pressure: saw-tooth inside the band at the middle of the sample
    phi = np.mod(n_start + dn / 2, 1.0)
    saw = np.where(phi < u, lo + band * phi / np.maximum(u, 1e-9), hi - band * (phi - u) / np.maximum(1 - u, 1e-9))
    if spec.control == "vsd":
        pressure = np.where(cycling, saw, (lo + hi) / 2)           # the drive holds its setpoint
    else:
        pressure = np.where(cycling, saw, lo - 0.02 * np.clip(d / cap - 1.0, 0.0, 5.0))  # overloaded: sags
    # scheduled stop: the receiver drains through the leaks from the low limit, starting
    # when the last running sample ended (carried across chunks)
    run_end = np.where(running, t_ms + int(step_s * 1000), -1)
    prev = -1 if state.stopped_since_ms is None else state.stopped_since_ms
    since = np.maximum.accumulate(np.concatenate([[prev], run_end]))[1:]
    since = np.where(since < 0, t_ms, since)
    minutes = np.maximum(t_ms - since, 0) / 60000.0
    pressure = np.where(running, pressure, np.clip(lo - k * d * minutes, 0.0, None))
    delivered = np.where(np.isfinite(cyc_cap), loaded * np.where(np.isfinite(cyc_cap), cyc_cap, 0), 0.0) + \
        np.where(~np.isfinite(cyc_cap) & running, np.minimum(d, cap), 0.0)

    state.cycles = float(n_end[-1]) if n else state.cycles
    if n:
        state.stopped_since_ms = int(since[-1])
    return CompressorOut(power, pressure, loaded, unloaded, off, delivered)
