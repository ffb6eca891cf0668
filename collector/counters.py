"""Energy and volume counters: raw readings -> a continuous counter that never steps down.

A meter's running total (kWh, m3) is stored exactly as read (the raw counter), and
beside it a short list of *offsets*: from time t on, continuous = raw + offset.
Consumption over any interval is then the difference of the continuous counter,
never negative, without rewriting a single stored reading
(`EmbeddedStore.read_continuous`, and `mieruka export` writes continuous counters).

When a raw counter steps down between two OK readings:

- **wrap**: an integer counter rolled over at its modulus (`Field.wrap_raw` x scale,
  e.g. 2^32 Wh for a uint32 register).  It is a wrap when the step, taken across the
  modulus, is less than half the modulus: offset += modulus.
- **reset**: any other drop (meter replaced, counter cleared by a technician, float
  counters, which cannot wrap).  The counter is taken to have restarted from zero:
  offset += the last raw value before the drop, so the step counts the new raw value.

Not a step at all:

- a reading not newer than the last one seen on its channel (a duplicate, a resend
  after a crash, a reading out of order): it cannot tell where the counter went
  since, so it is skipped;
- a drop of at most `JITTER_REL` of the counter's value (float rounding, a meter
  that corrects its last digit): counters do not run backwards by a hair when they
  reset, so it is no reset; the tracker keeps the higher value, and the
  continuous counter only moves again once the raw counter passes it.

So the continuous counter only ever moves by what the raw counter moved, or by a
real wrap or reset.

The tracker's state (last raw value, its time and offset per channel) is rebuilt from the store
at start (`CounterTracker.restore`), so a reset that happens while the collector is
down is still seen at the first reading after the restart.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from mieruka.models import Quality, ReadingBatch
from mieruka.store import Store

log = logging.getLogger(__name__)


JITTER_REL = 1e-4   # drops up to 0.01 % of the value are rounding or a corrected digit, not resets


@dataclass
class CounterState:
    last_raw: float | None = None
    last_time: int | None = None     # ms UTC of the last reading taken into account
    offset: float = 0.0
    wraps: int = 0
    resets: int = 0


def step_kind(prev_raw: float, raw: float, modulus: float | None) -> str:
    """'up' (no drop), 'jitter' (a drop too small to be anything but rounding),
    'wrap' or 'reset' for one step of a raw counter."""
    if raw >= prev_raw:
        return "up"
    if prev_raw - raw <= JITTER_REL * abs(prev_raw):
        return "jitter"
    if modulus and (raw + modulus - prev_raw) < modulus / 2:
        return "wrap"
    return "reset"


class CounterTracker:
    """Watches the counter channels of a stream of batches and returns the offset
    changes to commit with each batch (channel, time, new offset)."""

    def __init__(self, counters: dict[str, float | None]) -> None:
        """`counters`: channel id -> wrap modulus in scaled units (None for float counters)."""
        self.modulus = dict(counters)
        self.state: dict[str, CounterState] = {c: CounterState() for c in counters}

    def restore(self, store: Store) -> None:
        """Last offset and last OK raw value per counter channel, from the store."""
        for ch, st in self.state.items():
            _, offs = store.counter_offsets(ch)
            st.offset = float(offs[-1]) if len(offs) else 0.0
            last = store.latest_ok(ch)
            st.last_raw = None if last is None else float(last[1])
            st.last_time = None if last is None else int(np.datetime64(last[0], "ms").astype(np.int64))

    def observe(self, batch: ReadingBatch) -> list[tuple[str, np.datetime64, float]]:
        """Offsets that change at readings of this batch (a batch may hold several steps)."""
        if not len(batch):
            return []
        m = np.isin(batch.channel, list(self.state)) & (batch.quality == Quality.OK)
        if not m.any():
            return []
        out = []
        idx = np.flatnonzero(m)
        idx = idx[np.argsort(batch.time[idx], kind="stable")]
        for i in idx:   # only counter channels, a handful per poll
            ch, raw, t = batch.channel[i], float(batch.value[i]), batch.time[i]
            st = self.state[ch]
            t_ms = int(t.astype("datetime64[ms]").astype(np.int64))
            if st.last_time is not None and t_ms <= st.last_time:
                continue            # a duplicate or older reading: no step to judge
            st.last_time = t_ms
            if st.last_raw is not None:
                kind = step_kind(st.last_raw, raw, self.modulus[ch])
                if kind == "jitter":
                    log.debug("%s: counter stepped back by %g (rounding, not a reset)", ch, st.last_raw - raw)
                    continue        # keep the higher value
                if kind == "wrap":
                    st.offset += self.modulus[ch]
                    st.wraps += 1
                elif kind == "reset":
                    st.offset += st.last_raw
                    st.resets += 1
                if kind != "up":
                    log.warning("%s: counter %s from %g to %g; continuous counter offset now %g",
                                ch, "wrapped" if kind == "wrap" else "reset", st.last_raw, raw, st.offset)
                    out.append((ch, t, st.offset))
            st.last_raw = raw
        return out
