"""The disk buffer's files damaged while the collector was down (power cut on a bad SD
card, a person editing files): every reading the files still hold is forwarded, and
nothing stops the collector from starting."""
from __future__ import annotations

import os

import numpy as np
import pytest

from mieruka.collector.buffer import DiskBuffer
from mieruka.collector.forward import Forwarder
from mieruka.models import ReadingBatch
from mieruka.store.embedded import EmbeddedStore


def batch(i: int, n: int = 5) -> ReadingBatch:
    return ReadingBatch((np.arange(n) + i * n).astype("datetime64[ms]"), np.array(["c"] * n, object),
                        np.arange(n) + i * n + 0.0, np.zeros(n, np.uint8))


def filled(d, records: int = 20, confirm: int = 30) -> DiskBuffer:
    """A buffer of `records` batches of 5 readings, the first `confirm` readings confirmed."""
    buf = DiskBuffer(d, max_mb=1)
    for i in range(records):
        buf.append(batch(i))
    if confirm:
        r, pos = buf.read(confirm)
        buf.commit(pos, len(r))
    buf.close()
    return buf


def drain(d) -> np.ndarray:
    buf = DiskBuffer(d, max_mb=1)
    got = []
    while True:
        r, pos = buf.read(1000)
        if not len(r):
            break
        got.append(r.value)
        buf.commit(pos, len(r))
    assert buf.recount() == 0
    buf.close()
    return np.concatenate(got) if got else np.empty(0)


@pytest.mark.parametrize("committed", ["1 1", "1 18 3", "999 0 999", "7 -5 2", "\x00\x8a\xff", "1 0 99999"])
def test_a_damaged_committed_file_sends_everything_again_never_skips(tmp_path, committed):
    """Before: a committed position inside a record (a truncated file) or past the files
    made the buffer skip every reading it held, for good."""
    filled(tmp_path)
    (tmp_path / "committed").write_bytes(committed.encode("latin-1"))
    got = drain(tmp_path)
    assert set(np.arange(30.0, 100.0)) <= set(got.tolist())     # every unconfirmed reading, maybe more


def test_damage_in_the_middle_of_a_segment_costs_only_the_damaged_record(tmp_path):
    """Before: the buffer cut the segment at the damage, dropping every record after it."""
    filled(tmp_path, confirm=0)
    seg = sorted(tmp_path.glob("seg-*.log"))[0]
    size = seg.stat().st_size
    with open(seg, "r+b") as f:
        f.seek(size // 2)
        f.write(b"\xff" * 16)
    got = drain(tmp_path)
    assert 90 <= len(got) < 100 and got[-1] == 99.0
    assert seg.stat().st_size == size                         # nothing cut: the end was good


def test_a_garbage_tail_is_cut_and_new_appends_follow_the_good_records(tmp_path):
    filled(tmp_path, confirm=0)
    seg = sorted(tmp_path.glob("seg-*.log"))[0]
    with open(seg, "ab") as f:
        f.write(os.urandom(3000))
    buf = DiskBuffer(tmp_path, max_mb=1)
    buf.append(batch(20))
    buf.close()
    assert drain(tmp_path).tolist() == list(np.arange(105.0))


def test_stray_files_and_damaged_channel_metadata_do_not_stop_a_start(tmp_path):
    filled(tmp_path)
    (tmp_path / "seg-copy.log").write_text("x")
    (tmp_path / "seg-000000000099.log").mkdir()
    (tmp_path / "channels.json").write_text('[{"id": "c", "quan')
    buf = DiskBuffer(tmp_path, max_mb=1)
    store = EmbeddedStore(tmp_path / "s.sqlite")
    try:
        fwd = Forwarder(buf, store)
        assert fwd._infos == {} and buf.pending == 70
    finally:
        store.close()
        buf.close()
    assert (tmp_path / "seg-copy.log").exists()               # not ours: left alone
