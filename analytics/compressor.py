"""Compressor load profiles from electrical power (and pressure where metered).

A load/unload screw compressor has three power levels: off (~0), unloaded
(typically 25-35% of full load, field notes / US DOE) and loaded (full load).
A VSD or modulating machine spreads between a floor and full load.  From
power alone we estimate, per sample:

- the state (OFF, UNLOAD, LOAD; or MODULATING for VSD/inlet modulation), and
- the loaded fraction `clip((P - P_unload) / (P_full - P_unload), 0, 1)`: 0 or 1
  for an instantaneous load/unload sample, the share of loaded time for a
  1-minute average, the speed fraction for a VSD (linear from the floor).

The loaded fraction times the compressor's capacity (free air delivery,
m3/min) is the air it delivers, which gives the leak load method (US DOE:
leakage = T_load / (T_load + T_unload) with no production demand) and the
system specific energy when no flow meter is installed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .resample import wsum

OFF, UNLOAD, LOAD, MODULATING = 0, 1, 2, 3
STATE_NAMES = ("off", "unload", "load", "modulating")
OFF_FRACTION = 0.10          # below 10% of full load the motor is stopped
MID_BAND = (0.45, 0.85)      # a load/unload machine spends little time here


@dataclass
class CompressorLevels:
    full_kw: float
    unload_kw: float
    off_threshold_kw: float
    load_threshold_kw: float
    control: str                 # "load_unload" or "vsd"


def _low_mode(run: np.ndarray, full: float) -> float | None:
    """The unloaded (or VSD floor) power level: the most common value among the
    lowest tenth of the running samples.  Interval means (1-min data) of a cycling
    machine mix load and unload, so the pure unloaded level only shows in the
    quietest minutes; mixes with "off" are spread thinly and do not form a mode."""
    lo = run[(run > OFF_FRACTION * full) & (run < 0.6 * full)]
    if lo.size < 10:
        return None
    lo = lo[lo <= np.percentile(lo, 10)]
    a, b = float(lo.min()), float(lo.max())
    if b - a < 1e-9:
        return a
    hist, edges = np.histogram(lo, bins=30, range=(a, b))
    k = int(np.argmax(hist))
    near = lo[(lo >= edges[k]) & (lo <= edges[k + 1])]
    return float(np.median(near))


def compressor_levels(power_kw: np.ndarray, rated_power_kw: float | None = None, step_s: float = 60.0
                      ) -> CompressorLevels:
    """Power levels of one compressor from the distribution of its samples.

    Full load: the 99.5th percentile (or the rated power).  Unloaded level: the
    mode between 10% and 60% of full load.  Control type: VSD when the floor is
    under 20% of full load (VSD no-load floors are ~10-15%, unloaded screw
    compressors 25-35%), or, for second-resolution data where a load/unload
    machine is seen in pure states, when it spends over 25% of its running time
    between 45% and 85% of full load.
    """
    k = max(1, power_kw.size // 200_000)       # levels need a sample of the distribution, not all of it
    p = power_kw[::k]
    p = p[np.isfinite(p)]
    top = float(np.percentile(p, 99.5)) if p.size else 0.0
    full = rated_power_kw if rated_power_kw and 0.5 * top < rated_power_kw < 1.5 * top else top
    off_thr = OFF_FRACTION * full
    run = p[p > off_thr]
    if run.size == 0 or full <= 0:
        return CompressorLevels(full, 0.0, off_thr, full, "load_unload")
    frac = run / full
    mid = float(np.mean((frac > MID_BAND[0]) & (frac < MID_BAND[1])))
    floor = _low_mode(run, full)
    vsd = (floor is not None and floor < 0.2 * full) or (step_s <= 5.0 and mid > 0.25)
    if vsd:
        floor = floor if floor is not None else float(np.percentile(run, 1))
        return CompressorLevels(full, floor, off_thr, full, "vsd")
    unload = floor if floor is not None else 0.3 * full
    return CompressorLevels(full, unload, off_thr, 0.5 * (unload + full), "load_unload")


def state_fractions(power_kw: np.ndarray, levels: CompressorLevels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Share of each sample spent (off, unloaded, loaded), assuming a sample mixes at
    most two neighbouring states: above the unloaded level it is unloaded/loaded in
    proportion, below it off/unloaded.  Exact for instantaneous samples (pure
    states) and for interval means (1-min, 15-min meters) of a load/unload machine.
    For a VSD "loaded" is the time running above its floor (modulating)."""
    full, unl = levels.full_kw, levels.unload_kw
    p = np.clip(power_kw, 0.0, None)
    if levels.control == "vsd":
        loaded = np.clip((p - unl) / max(0.1 * unl, 1e-9), 0.0, 1.0)   # any step above the floor
        above = p >= unl
        unloaded = np.where(above, 1.0 - loaded, np.clip(p / max(unl, 1e-9), 0.0, 1.0))
    else:
        above = p >= unl
        loaded = np.where(above, np.clip((p - unl) / max(full - unl, 1e-9), 0.0, 1.0), 0.0)
        unloaded = np.where(above, 1.0 - loaded, np.clip(p / max(unl, 1e-9), 0.0, 1.0))
    off = 1.0 - loaded - unloaded
    stopped = p <= levels.off_threshold_kw
    off[stopped], unloaded[stopped], loaded[stopped] = 1.0, 0.0, 0.0
    return off, unloaded, loaded


def compressor_states(power_kw: np.ndarray, levels: CompressorLevels) -> tuple[np.ndarray, np.ndarray]:
    """(state code per sample: the state it spent most of its time in, and the
    delivered-air fraction 0..1 per sample: loaded share, or VSD speed above floor)."""
    off, unloaded, loaded = state_fractions(power_kw, levels)
    state = np.argmax(np.stack([off, unloaded, loaded]), axis=0).astype(np.int8)
    if levels.control == "vsd":
        air = np.clip((power_kw - levels.unload_kw) / max(levels.full_kw - levels.unload_kw, 1e-9), 0.0, 1.0)
        air[power_kw <= levels.off_threshold_kw] = 0.0
        return state, air
    return state, loaded


def cycles_per_hour(state: np.ndarray, dur_s: np.ndarray) -> float:
    """Unload -> load transitions per running hour (load/unload machines)."""
    if state.size < 2:
        return 0.0
    starts = int(np.count_nonzero((state[1:] == LOAD) & (state[:-1] == UNLOAD)))
    run_h = float(dur_s[state != OFF].sum()) / 3600.0
    return starts / run_h if run_h > 0 else 0.0


@dataclass
class CompressorProfile:
    control: str
    load_share: float
    unload_share: float
    off_share: float
    modulating_share: float
    cycles_per_hour: float
    full_load_kw: float
    unload_power_kw: float
    loaded_power_kw: float
    mean_loaded_fraction: float      # average delivered air / capacity (all measured time)
    energy_kwh: float
    hours: float
    energy_outside_production_kwh: float
    running_hours_outside_production: float
    speed_band_shares: dict[str, float]


def compressor_profile(power_kw: np.ndarray, dur_s: np.ndarray, production: np.ndarray,
                       rated_power_kw: float | None = None, idle: np.ndarray | None = None
                       ) -> tuple[CompressorProfile, np.ndarray, np.ndarray]:
    """Profile of one compressor; also returns the per-sample state and loaded fraction.
    `idle`: samples where no air should be needed (default: outside production)."""
    step_s = float(np.median(dur_s)) if dur_s.size else 60.0
    levels = compressor_levels(power_kw, rated_power_kw, step_s)
    state, loaded = compressor_states(power_kw, levels)
    f_off, f_unl, f_load = state_fractions(power_kw, levels)
    total_s = float(dur_s.sum())
    share = np.zeros(4)
    share[OFF], share[UNLOAD], share[LOAD] = (wsum(x, dur_s) / max(total_s, 1e-9) for x in (f_off, f_unl, f_load))
    w_load = dur_s * (state == LOAD)
    out = ~production if idle is None else idle
    w_out = dur_s * out
    bands = {}
    if levels.control == "vsd":
        frac = np.clip(power_kw / max(levels.full_kw, 1e-9), 0, 1)
        hist = np.histogram(frac, bins=[0, 0.25, 0.5, 0.75, 1.0001], weights=dur_s * (state != OFF))[0]
        bands = {f"speed_{a}_{b}_pct_share": float(h) / max(total_s, 1e-9)
                 for (a, b), h in zip(((0, 25), (25, 50), (50, 75), (75, 100)), hist)}
    prof = CompressorProfile(
        control=levels.control,
        load_share=float(share[LOAD]), unload_share=float(share[UNLOAD]), off_share=float(share[OFF]),
        modulating_share=float(share[LOAD]) if levels.control == "vsd" else 0.0,
        cycles_per_hour=cycles_per_hour(state, dur_s) if levels.control == "load_unload" else 0.0,
        full_load_kw=levels.full_kw,
        unload_power_kw=levels.unload_kw,
        loaded_power_kw=levels.full_kw if levels.control == "load_unload" or w_load.sum() <= 0
        else wsum(power_kw, w_load) / float(w_load.sum()),
        mean_loaded_fraction=wsum(loaded, dur_s) / max(total_s, 1e-9),
        energy_kwh=wsum(power_kw, dur_s) / 3600.0,
        hours=total_s / 3600.0,
        energy_outside_production_kwh=wsum(power_kw, w_out) / 3600.0,
        running_hours_outside_production=wsum(w_out, (state != OFF).astype(np.float64)) / 3600.0,
        speed_band_shares=bands,
    )
    return prof, state, loaded
