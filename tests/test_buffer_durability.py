"""The durable disk buffer: order, restart, torn writes, kill -9, bounded size."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mieruka.collector.buffer import DiskBuffer
from mieruka.models import ReadingBatch


def batch(i0: int, n: int, channel: str = "c") -> ReadingBatch:
    """Readings valued i0..i0+n-1 (the value tells which reading it is)."""
    v = np.arange(i0, i0 + n, dtype=np.float64)
    return ReadingBatch(v.astype(np.int64).astype("datetime64[ms]"), np.array([f"{channel}{i % 3}" for i in range(n)], object),
                        v, np.zeros(n, np.uint8))


def drain(buf: DiskBuffer, step: int = 37) -> np.ndarray:
    out = []
    while True:
        b, pos = buf.read(step)
        if not len(b):
            return np.concatenate(out) if out else np.empty(0)
        out.append(b.value)
        buf.commit(pos, len(b))


def test_in_order_across_segments_and_restarts(tmp_path):
    buf = DiskBuffer(tmp_path, max_mb=10, segment_mb=0.002)         # 4 KB segments (the least): several
    for k in range(50):
        assert buf.append(batch(10 * k, 10))
    assert len(buf.segments) > 3 and buf.pending == 500
    b, pos = buf.read(120)
    assert b.value.tolist() == list(range(120)) and b.channel[:3].tolist() == ["c0", "c1", "c2"]
    buf.commit(pos, len(b))
    b, _ = buf.read(40)                                             # read but not committed: comes again
    buf.close()
    buf = DiskBuffer(tmp_path, max_mb=10, segment_mb=0.002)
    assert buf.pending == 380
    assert drain(buf).tolist() == list(range(120, 500))
    assert buf.pending == 0 and len(buf.segments) <= 2              # confirmed segments deleted
    buf.append(batch(500, 5))
    assert drain(buf).tolist() == [500, 501, 502, 503, 504]


def test_a_torn_record_is_cut_and_everything_before_kept(tmp_path):
    buf = DiskBuffer(tmp_path)
    for k in range(3):
        buf.append(batch(10 * k, 10))
    seg = buf._seg_path(buf.segments[-1].seq)
    buf.close()
    size = seg.stat().st_size
    with open(seg, "ab") as f:                     # a crash half-way through the 4th record
        f.write(open(seg, "rb").read()[: size // 5])
    buf = DiskBuffer(tmp_path)
    assert seg.stat().st_size == size and buf.pending == 30
    buf.append(batch(30, 10))
    assert drain(buf).tolist() == list(range(40))


CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    from mieruka.collector.buffer import DiskBuffer
    from mieruka.models import ReadingBatch
    buf = DiskBuffer(sys.argv[1], segment_mb=0.05)
    i = 0
    while True:
        v = np.arange(i, i + 7, dtype=np.float64)
        buf.append(ReadingBatch(v.astype(np.int64).astype("datetime64[ms]"), np.full(7, "ch", object), v,
                                np.zeros(7, np.uint8)))
        i += 7
        print(i, flush=True)          # acknowledged: everything below i is on disk
""")


@pytest.mark.slow
def test_kill_9_while_appending_loses_nothing_acknowledged(tmp_path):
    for round_ in range(3):
        p = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
        acked = 0
        for line in p.stdout:
            acked = int(line)
            if acked >= 1400 * (round_ + 1):
                break
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        # acknowledgements the child printed between our last read and the kill are still in
        # the pipe: read them, so `acked` is the true last acknowledgement (a loaded machine
        # lets the child run several batches ahead of the parent)
        for line in p.stdout:
            if line.strip():
                acked = int(line)
        buf = DiskBuffer(tmp_path, segment_mb=0.05)
        got = drain(buf, 500)
        buf.close()
        # every acknowledged reading is there once, in order; at most the batch in flight is extra
        assert got[:acked].tolist() == list(range(acked)), round_
        assert len(got) - acked in (0, 7)
        for f in tmp_path.glob("seg-*"):
            f.unlink()
        (tmp_path / "committed").unlink(missing_ok=True)


@pytest.mark.parametrize("policy", ["drop_oldest", "drop_newest"])
def test_bounded_size_and_every_drop_counted(tmp_path, policy, caplog):
    max_mb = 0.05
    buf = DiskBuffer(tmp_path, max_mb=max_mb, when_full=policy)
    accepted = sum(buf.append(batch(100 * k, 100)) for k in range(60))    # ~1.9 KB a batch, 60 batches
    on_disk = sum(f.stat().st_size for f in tmp_path.glob("seg-*"))
    assert on_disk <= max_mb * 2**20
    assert buf.dropped > 0 and buf.appended == 6000 - (0 if policy == "drop_oldest" else 100 * (60 - accepted))
    kept = drain(buf, 10_000)
    assert len(kept) + buf.dropped == 6000                               # nothing vanishes uncounted
    if policy == "drop_oldest":
        assert kept[-1] == 5999 and kept[0] > 0                          # the newest kept
    else:
        assert kept[0] == 0 and kept[-1] < 5999                          # the oldest kept
    assert "buffer full" in caplog.text and policy in caplog.text
