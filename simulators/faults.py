"""Meter faults in recordings: how a fault window shows up in recorded data.

- timeout / exception: the reading is there with quality `timeout` / `exception`, no value
- garbage: quality `out_of_range`, no value (a collector flags decoded nonsense)
- stuck: the value freezes at the window's first sample; later samples are `stale`
- gap: no rows at all (collector down, buffer lost)
- reset: counters of the meter restart from 0 at the window start (values stay `ok`)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mieruka.models import Quality

from .live import to_ms
from .scenario import FaultSpec

QUALITY = {"timeout": Quality.TIMEOUT, "exception": Quality.EXCEPTION, "garbage": Quality.OUT_OF_RANGE}


@dataclass
class FaultWindow:
    meter: str
    channel: str | None
    kind: str
    start_ms: int
    end_ms: int


def resolve_faults(faults: list[FaultSpec], tz, start_ms: int, end_ms: int, seed: int) -> list[FaultWindow]:
    """Fault windows inside [start, end): explicit ones are clipped, `count` ones are
    drawn by seed (whole minutes), and ones without a window last the whole span."""
    rng = np.random.default_rng(seed + 104729)
    out: list[FaultWindow] = []
    for f in faults:
        if f.count:
            dur = int(f.duration_min * 60_000)
            span = max(end_ms - start_ms - dur, 1)
            for s in np.sort(rng.integers(0, span // 60_000 + 1, f.count)) * 60_000 + start_ms:
                out.append(FaultWindow(f.meter, f.channel, f.kind, int(s), int(min(s + dur, end_ms))))
            continue
        a = to_ms(f.start, tz) if f.start else start_ms
        b = to_ms(f.end, tz) if f.end else end_ms
        if f.kind == "reset":
            b = max(b, a + 1)
        a, b = max(a, start_ms), min(b, end_ms)
        if b > a:
            out.append(FaultWindow(f.meter, f.channel, f.kind, a, b))
    return out


def apply_faults(t_ms: np.ndarray, value: np.ndarray, quality: np.ndarray, keep: np.ndarray,
                 windows: list[FaultWindow], counter: bool) -> None:
    """Apply the windows of one channel in place (value, quality, keep mask)."""
    for w in windows:
        i0, i1 = np.searchsorted(t_ms, [w.start_ms, w.end_ms])
        if i1 <= i0:
            continue
        if w.kind in QUALITY:
            quality[i0:i1] = QUALITY[w.kind]
            value[i0:i1] = np.nan
        elif w.kind == "stuck":
            value[i0:i1] = value[i0]
            quality[i0 + 1:i1] = Quality.STALE
        elif w.kind == "gap":
            keep[i0:i1] = False
        elif w.kind == "reset" and counter:
            value[i0:] = value[i0:] - value[i0]
