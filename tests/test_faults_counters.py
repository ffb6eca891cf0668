"""Counter glitches: a meter that answers 0 once, a reading with its words swapped,
garbage, must not move the continuous counter (before, each one added the last value
or the garbage to it for good: a counter that jumped by MWh)."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest

from mieruka.collector.counters import CounterTracker, flag_glitches
from mieruka.models import Quality, ReadingBatch
from mieruka.quantities import counter_max_rate_per_s
from mieruka.store.base import continuous_counter
from mieruka.store.embedded import EmbeddedStore
from test_collector_counters import ENERGY_WH, CounterMeter, run_once, site  # noqa: F401  (the wire harness)

RATE = counter_max_rate_per_s("energy_kwh")        # 1e6 kW: 278 kWh/s


def readings(values, t0_s: int = 1_780_000_000, channel: str = "e") -> ReadingBatch:
    n = len(values)
    t = ((t0_s + np.arange(n)) * 1000).astype("datetime64[ms]")
    return ReadingBatch(t, np.full(n, channel, object), np.array(values, float), np.zeros(n, np.uint8))


def run(values, modulus=None, chunk: int = 3):
    """Feed the tracker in batches as a forwarder would: (batch written, offsets, tracker)."""
    tr = CounterTracker({"e": modulus}, {"e": RATE})
    b = readings(values)
    written, offsets = [], []
    for a in range(0, len(b), chunk):
        part = ReadingBatch(b.time[a:a + chunk], b.channel[a:a + chunk], b.value[a:a + chunk].copy(),
                            b.quality[a:a + chunk].copy())
        offsets += tr.observe(part)
        written.append(flag_glitches(part, tr.take_glitches()))
    return written, offsets, tr


def stored(written, offsets):
    """What the store holds: the newest write of each time wins; continuous counter of OK readings."""
    last = {}
    for b in written:
        for t, v, q in zip(b.time.astype(np.int64).tolist(), b.value.tolist(), b.quality.tolist()):
            last[t] = (v, q)
    t = np.array(sorted(last), np.int64)
    v = np.array([last[x][0] for x in t])
    q = np.array([last[x][1] for x in t])
    ok = q == Quality.OK
    ot = np.array([o[1] for o in offsets], "datetime64[ms]")
    ov = np.array([o[2] for o in offsets])
    return v, q, continuous_counter(t[ok].astype("datetime64[ms]"), v[ok], ot, ov)


def test_a_single_zero_is_a_glitch_not_a_reset():
    written, offsets, tr = run([1000.0, 1000.1, 0.0, 1000.3, 1000.4, 1000.5])
    v, q, cont = stored(written, offsets)
    assert offsets == [] and tr.state["e"].glitches == 1 and tr.state["e"].resets == 0
    assert q.tolist() == [0, 0, Quality.OUT_OF_RANGE, 0, 0, 0]
    assert cont[-1] - cont[0] == pytest.approx(0.5) and (np.diff(cont) >= 0).all()


def test_words_in_the_wrong_order_once_is_a_glitch_not_a_jump():
    swapped = float(((1_000_200 & 0xFFFF) << 16 | 1_000_200 >> 16) / 1000)     # 1000.2 kWh as Wh, words swapped
    written, offsets, tr = run([1000.0, 1000.1, swapped, 1000.3, 1000.4])
    v, q, cont = stored(written, offsets)
    assert offsets == [] and tr.state["e"].glitches == 1
    assert cont[-1] - cont[0] == pytest.approx(0.4)


def test_minutes_of_garbage_move_the_counter_by_nothing():
    rng = np.random.default_rng(7)
    garbage = (rng.integers(0, 2 ** 32, 120) / 1000).tolist()          # uint32 Wh of random words
    values = [5000.0 + 0.01 * i for i in range(10)] + garbage + [5001.3 + 0.01 * i for i in range(10)]
    written, offsets, tr = run(values)
    v, q, cont = stored(written, offsets)
    assert (np.diff(cont) >= -1e-9).all()
    assert cont[-1] - cont[0] == pytest.approx(1.39, abs=1e-6)          # what the meter really counted


def test_real_resets_wraps_and_replacements_still_count_from_the_reading_that_changed():
    written, offsets, tr = run([1000.0, 1000.5, 2.0, 2.5, 3.0], chunk=2)
    assert tr.state["e"].resets == 1 and offsets[0][1] == np.datetime64((1_780_000_002) * 1000, "ms")
    v, q, cont = stored(written, offsets)
    assert (q == 0).all() and cont[-1] - cont[0] == pytest.approx(0.5 + 2.0 + 1.0)
    m = 2 ** 32 / 1000
    written, offsets, tr = run([m - 0.4, m - 0.2, 0.1, 0.3], modulus=m)
    assert tr.state["e"].wraps == 1 and stored(written, offsets)[2][-1] - stored(written, offsets)[2][0] \
        == pytest.approx(0.7)
    # a meter replaced by one that reads 90 MWh higher: no jump of 90 MWh
    written, offsets, tr = run([1000.0, 1000.5, 91000.0, 91000.5, 91001.0])
    v, q, cont = stored(written, offsets)
    assert tr.state["e"].jumps == 1 and cont[-1] - cont[0] == pytest.approx(1.5)


def test_a_candidate_left_at_a_stop_is_judged_after_the_restart(tmp_path):
    s = EmbeddedStore(tmp_path / "s.sqlite")
    s.write(readings([1000.0, 1000.1, 0.0]))                    # stopped right after a zero
    tr = CounterTracker({"e": None}, {"e": RATE})
    tr.restore(s)
    assert tr.observe(readings([1000.3, 1000.4], t0_s=1_780_000_003)) == []
    assert tr.take_glitches() == [("e", 1_780_000_002_000)]
    s.close()


@pytest.mark.slow
def test_over_the_wire_a_zero_and_a_swapped_reading_leave_the_counter_true(port, data_dir):
    swapped = (1400 & 0xFFFF) << 16 | 1400 >> 16
    script = [1000, 1100, 0, 1200, 1300, swapped, 1500, 1600]
    cfg = site(port, data_dir)
    asyncio.run(run_once(cfg, CounterMeter(script), port, 2.4))
    s = EmbeddedStore.from_site(cfg, readonly=True)
    try:
        t, raw, q = s.read_quality("e")
        _, cont = s.read_continuous("e")
    finally:
        s.close()
    ok_wh = np.round(raw[q == Quality.OK] * 1000).astype(np.int64)
    assert 0 not in ok_wh.tolist() and swapped not in ok_wh.tolist()
    assert (q == Quality.OUT_OF_RANGE).sum() == 2
    assert (np.diff(cont) >= -1e-9).all()
    assert cont[-1] - cont[0] == pytest.approx(0.6, abs=1e-9)           # 1000 -> 1600 Wh


def test_status_says_counter_glitches_and_clock_steps_in_words(tmp_path):
    import io
    import time
    import zoneinfo

    from rich.console import Console

    from mieruka.commands.status import _show
    snap = {"time": time.time(), "pid": 1, "site": "s", "started": time.time() - 10, "interval_s": 2, "inputs": {},
            "devices": [{"input": "modbus", "device": "pm", "latency_s": 0.1, "last_success": time.time(),
                         "problem": None, "errors": {}, "missed_slots": 0, "clock_steps": 2}],
            "brokers": [], "errors": {}, "counters": {"main_energy": {"wraps": 0, "resets": 1, "jumps": 0,
                                                                     "glitches": 2}}}
    con = Console(file=io.StringIO(), width=300)
    assert _show(snap, con, zoneinfo.ZoneInfo("Asia/Tokyo"), tmp_path) == 1
    out = con.file.getvalue()
    assert "counter steps since start: main_energy: 1 resets, 2 glitches" in out
    assert "the system clock stepped 2 times since start" in out
    assert "counter main_energy: 1 resets, 2 glitches (glitch readings are stored flagged out_of_range" in out
