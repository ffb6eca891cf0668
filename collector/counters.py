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

A step is judged only once the next reading confirms it.  A reading that does not
follow the last one (it is lower, or higher than the counter can run in the time
between: `mieruka.quantities.counter_max_rate_per_s`, 1e6 kW = 278 kWh/s) is a
*candidate*:

- the next reading follows the last accepted one again: the candidate was a glitch
  (a meter answering 0 once, words read in the wrong order, garbage) and is stored
  again flagged `out_of_range` (`take_glitches`), the counter never moved;
- the next reading follows the candidate: the step was real: a wrap or a reset as
  above, or a rise faster than any meter (a meter replaced by one reading higher):
  offset -= the rise, so the continuous counter does not jump;
- neither: the candidate was a glitch, the new reading is the next candidate.

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
RATE_MARGIN = 10.0  # a rise over 10x the fastest seen so far waits for the next reading to confirm it


@dataclass
class CounterState:
    last_raw: float | None = None
    last_time: int | None = None     # ms UTC of the last reading taken into account
    offset: float = 0.0
    wraps: int = 0
    resets: int = 0
    jumps: int = 0                   # rises faster than the counter can run, confirmed (meter replaced)
    glitches: int = 0                # readings found not to follow the counter (flagged out_of_range)
    cand: tuple[int, float] | None = None    # (ms, raw) of a reading waiting for the next to judge it
    rate: float | None = None        # fastest rise accepted so far (unit per s)


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

    def __init__(self, counters: dict[str, float | None], max_rate: dict[str, float | None] | None = None) -> None:
        """`counters`: channel id -> wrap modulus in scaled units (None for float counters);
        `max_rate`: channel id -> the fastest it can run (its unit per second; None: no bound)."""
        self.modulus = dict(counters)
        self.max_rate = dict(max_rate or {})
        self.state: dict[str, CounterState] = {c: CounterState() for c in counters}
        self._glitched: list[tuple[str, int]] = []

    def restore(self, store: Store) -> None:
        """Last offset and last OK raw value per counter channel, from the store.  A last
        reading that does not follow the one before it (stopped before the next reading
        judged it) is a candidate again."""
        for ch, st in self.state.items():
            offs_t, offs = store.counter_offsets(ch)
            st.offset = float(offs[-1]) if len(offs) else 0.0
            last = store.latest_ok(ch)
            st.last_raw = None if last is None else float(last[1])
            st.last_time = None if last is None else int(np.datetime64(last[0], "ms").astype(np.int64))
            if last is None or (len(offs_t) and int(offs_t[-1].astype("datetime64[ms]").astype(np.int64))
                                >= st.last_time):
                continue
            t, v = store.read(ch, np.datetime64(st.last_time - 3_600_000, "ms"),
                              np.datetime64(st.last_time, "ms"))
            if len(t) and not self._follows(ch, float(v[-1]), int(t[-1].astype(np.int64)), st.last_raw,
                                            st.last_time):
                st.cand = (st.last_time, st.last_raw)
                st.last_raw, st.last_time = float(v[-1]), int(t[-1].astype(np.int64))

    def take_glitches(self) -> list[tuple[str, int]]:
        """(channel, time ms) of readings found to be glitches since the last call: to be
        stored again flagged `out_of_range`."""
        out, self._glitched = self._glitched, []
        return out

    def _follows(self, ch: str, prev: float, prev_ms: int, raw: float, t_ms: int, strict: bool = False) -> bool:
        """`raw` can come after `prev`: not lower (beyond rounding) and no faster than the counter
        can run; `strict`: nor over RATE_MARGIN x the fastest rise seen on it (after minutes
        of garbage the physical bound alone would let a wild value through)."""
        if step_kind(prev, raw, None) == "reset":
            return False
        if raw <= prev:
            return True
        rate = self.max_rate.get(ch)
        seen = self.state[ch].rate
        if strict and seen is not None:
            rate = RATE_MARGIN * seen if rate is None else min(rate, RATE_MARGIN * seen)
        return rate is None or raw - prev <= rate * max(t_ms - prev_ms, 1) / 1000 + JITTER_REL * abs(prev)

    def _glitch(self, ch: str, st: CounterState) -> None:
        t_ms, raw = st.cand
        st.cand = None
        st.glitches += 1
        self._glitched.append((ch, t_ms))
        log.warning("%s: counter reading %g at %s does not follow %g (a glitch: zero, garbage or words in the "
                    "wrong order); stored flagged out_of_range", ch, raw,
                    np.datetime64(t_ms, "ms"), st.last_raw)

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
            newest = st.cand[0] if st.cand else st.last_time
            if newest is not None and t_ms <= newest:
                continue            # a duplicate or older reading: no step to judge
            if st.last_raw is None:
                st.last_raw, st.last_time = raw, t_ms
                continue
            if self._follows(ch, st.last_raw, st.last_time, raw, t_ms, strict=True):
                if st.cand is not None:
                    self._glitch(ch, st)
                self._accept(ch, st, raw, t_ms)
                continue
            if st.cand is not None and self._follows(ch, st.cand[1], st.cand[0], raw, t_ms):
                c_ms, c_raw = st.cand
                st.cand = None
                kind = step_kind(st.last_raw, c_raw, self.modulus[ch])
                if kind == "wrap":
                    st.offset += self.modulus[ch]
                    st.wraps += 1
                elif kind == "reset":
                    st.offset += st.last_raw
                    st.resets += 1
                elif self._follows(ch, st.last_raw, st.last_time, c_raw, c_ms):
                    kind = "up"         # a real rise, faster than before (a load started): counted
                else:                   # up, faster than it can count: a meter replaced or set higher
                    st.offset -= c_raw - st.last_raw
                    st.jumps += 1
                    kind = "jump"
                if kind != "up":
                    word = {"wrap": "wrapped", "reset": "reset"}.get(kind, "jumped (faster than it can run)")
                    log.warning("%s: counter %s from %g to %g; continuous counter offset now %g",
                                ch, word, st.last_raw, c_raw, st.offset)
                    out.append((ch, np.datetime64(c_ms, "ms"), st.offset))
                    st.last_raw, st.last_time = c_raw, c_ms
                else:
                    self._accept(ch, st, c_raw, c_ms)
                self._accept(ch, st, raw, t_ms)
                continue
            if st.cand is not None:
                self._glitch(ch, st)
            st.cand = (t_ms, raw)
        return out

    @staticmethod
    def _accept(ch: str, st: CounterState, raw: float, t_ms: int) -> None:
        if raw > st.last_raw:
            rate = (raw - st.last_raw) / max(t_ms - st.last_time, 1) * 1000
            st.rate = rate if st.rate is None else max(st.rate, rate)
        st.last_time = t_ms
        if raw >= st.last_raw:
            st.last_raw = raw
        else:                           # rounding: keep the higher value
            log.debug("%s: counter stepped back by %g (rounding, not a reset)", ch, st.last_raw - raw)


def flag_glitches(batch: ReadingBatch, glitches: list[tuple[str, int]]) -> ReadingBatch:
    """The batch with the glitch readings flagged `out_of_range` (value NaN): those in it in
    place, earlier ones as extra rows (the store keeps the newest write of a channel and time)."""
    if not glitches:
        return batch
    t_ms = batch.time.astype("datetime64[ms]").astype(np.int64)
    where = {(c, t): i for i, (c, t) in enumerate(zip(batch.channel.tolist(), t_ms.tolist()))}
    extra = []
    for ch, t in glitches:
        i = where.get((ch, t))
        if i is None:
            extra.append((ch, t))
        else:
            batch.value[i] = np.nan
            batch.quality[i] = Quality.OUT_OF_RANGE
    if not extra:
        return batch
    n = len(extra)
    fix = ReadingBatch(np.array([t for _, t in extra], np.int64).astype(batch.time.dtype),
                       np.array([c for c, _ in extra], object), np.full(n, np.nan),
                       np.full(n, Quality.OUT_OF_RANGE, np.uint8))
    return ReadingBatch.concat([batch, fix])
