"""Embedded store: round trips, idempotent writes, staged/chunk merging, aggregates,
retention, continuous counters, and a reader in another process during writes."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mieruka.models import ChannelInfo, Quality, ReadingBatch
from mieruka.store.embedded import CHUNK_POINTS, EmbeddedStore

STAGE = 64

T0 = np.datetime64("2026-04-01T00:00:00", "ms")


def secs(a, b=None):
    r = np.arange(a) if b is None else np.arange(a, b)
    return T0 + (r * 1000).astype("timedelta64[ms]")


def test_bulk_round_trip_and_replay_twice_doubles_nothing(tmp_path):
    n = 3 * CHUNK_POINTS + 17
    rng = np.random.default_rng(0)
    v = rng.normal(size=n)
    b = ReadingBatch.concat([ReadingBatch.single_channel("a", secs(n), v),
                             ReadingBatch.single_channel("b", secs(n), -v)])
    with EmbeddedStore(tmp_path / "s.sqlite") as s:
        s.write(b)
        s.write(b)                      # the same recording replayed
        t, got = s.read("a")
        assert len(t) == n and s.count() == 2 * n
        np.testing.assert_array_equal(got, v)
        np.testing.assert_array_equal(t, secs(n))
        t, got = s.read("b", secs(10, 11)[0], secs(20, 21)[0])
        np.testing.assert_array_equal(got, -v[10:20])
        assert s.integrity_check() == "ok"


def test_small_writes_overlaps_and_newest_write_wins(tmp_path):
    with EmbeddedStore(tmp_path / "s.sqlite", stage_rows=STAGE) as s:
        for k in range(STAGE * 5 + 10):          # collector-style: one reading per flush
            s.write(ReadingBatch.single_channel("p", secs(k, k + 1), np.array([float(k)])))
        assert s.count("p") == STAGE * 5 + 10
        s.flush()
        n_chunks = s.db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        t0, v0 = s.read("p")
        assert n_chunks > 1 and s.compact() == n_chunks - 1       # small folded chunks merged into one
        t1, v1 = s.read("p")
        np.testing.assert_array_equal(v1, v0)
        np.testing.assert_array_equal(t1, t0)
        # rewrite an old stretch (now in chunks) and a recent one (still staged) with new values
        s.write(ReadingBatch.single_channel("p", secs(5, 8), np.array([-1.0, -2.0, -3.0])))
        s.write(ReadingBatch.single_channel("p", secs(STAGE * 5 + 8, STAGE * 5 + 11),
                                            np.array([7.0, 8.0, 9.0])))
        t, v = s.read("p")
        assert len(t) == STAGE * 5 + 11 and (np.diff(t.astype(np.int64)) > 0).all()
        assert v[5:8].tolist() == [-1.0, -2.0, -3.0]
        assert v[-3:].tolist() == [7.0, 8.0, 9.0]
        assert s.latest("p")[1] == 9.0
        s.flush()
        t2, v2 = s.read("p")
        np.testing.assert_array_equal(v2, v)


def test_quality_kept_and_ok_only_reads(tmp_path):
    q = np.array([0, 1, 0, 3, 0], np.uint8)
    v = np.array([1.0, np.nan, 3.0, np.nan, 5.0])
    with EmbeddedStore(tmp_path / "s.sqlite") as s:
        s.write(ReadingBatch.single_channel("x", secs(5), v, q))
        t, got = s.read("x")
        assert got.tolist() == [1.0, 3.0, 5.0]
        _, vq, qq = s.read_quality("x")
        assert qq.tolist() == q.tolist() and np.isnan(vq[1])
        assert s.latest_ok("x")[1] == 5.0


def test_aggregate_matches_numpy(tmp_path):
    n = 3600
    v = np.random.default_rng(2).uniform(0, 100, n)
    with EmbeddedStore(tmp_path / "s.sqlite") as s:
        s.write(ReadingBatch.single_channel("x", secs(n), v))
        ag = s.aggregate("x", T0, secs(n + 1)[-1], 600)
    assert len(ag.time) == 6 and ag.time[1] == T0 + np.timedelta64(600_000, "ms")
    blocks = v.reshape(6, 600)
    np.testing.assert_allclose(ag.mean, blocks.mean(1))
    np.testing.assert_array_equal(ag.min, blocks.min(1))
    np.testing.assert_array_equal(ag.max, blocks.max(1))
    assert ag.count.tolist() == [600] * 6


def test_retention_deletes_only_old_data(tmp_path):
    day = 86400
    n = 3 * day // 60                               # three days of 1-minute data
    t = T0 + (np.arange(n) * 60_000).astype("timedelta64[ms]")
    with EmbeddedStore(tmp_path / "s.sqlite", retention_days=1) as s:
        s.write(ReadingBatch.single_channel("x", t, np.arange(n, dtype=float)))
        s.write(ReadingBatch.single_channel("y", t[-3:], np.ones(3)))   # staged rows, recent
        deleted = s.apply_retention()
        cut = t[-1] - np.timedelta64(day * 1000, "ms")
        kept, _ = s.read("x")
        assert deleted == int((t < cut).sum())
        assert kept[0] >= cut and len(kept) == int((t >= cut).sum())
        assert s.count("y") == 3


def test_channels_metadata_and_time_range(tmp_path):
    infos = [ChannelInfo(id="main_power", quantity="power_kw", unit="kW", equipment_kind="incomer", meter="pm-main"),
             ChannelInfo(id="air_volume", quantity="air_volume_m3", unit="m3", system="air1")]
    with EmbeddedStore(tmp_path / "s.sqlite") as s:
        s.set_channels(infos)
        s.write(ReadingBatch.single_channel("main_power", secs(10), np.ones(10)))
        got = {c.id: c for c in s.channels()}
        assert got["main_power"].equipment_kind == "incomer" and got["air_volume"].system == "air1"
        assert s.time_range() == (T0, secs(10)[-1])
        assert s.time_range("air_volume") is None


def test_continuous_counter_from_offsets(tmp_path):
    raw = np.array([10.0, 11.0, 1.0, 2.0, 3.0])       # a reset after 11
    with EmbeddedStore(tmp_path / "s.sqlite") as s:
        s.write(ReadingBatch.single_channel("e", secs(5), raw), counter_offsets=[("e", secs(3)[2], 11.0)])
        t, cont = s.read_continuous("e")
        assert cont.tolist() == [10.0, 11.0, 12.0, 13.0, 14.0]
        assert s.read("e")[1].tolist() == raw.tolist()   # the raw readings are kept as read


def test_reader_process_reads_while_writer_writes(tmp_path):
    path = tmp_path / "s.sqlite"
    s = EmbeddedStore(path)
    s.write(ReadingBatch.single_channel("x", secs(1000), np.arange(1000.0)))
    reader = textwrap.dedent(f"""
        import time
        from mieruka.store.embedded import EmbeddedStore
        r = EmbeddedStore({str(path)!r}, readonly=True)
        seen = []
        t_end = time.time() + 60
        while time.time() < t_end:
            t, v = r.read("x")
            assert (v == range(len(v))).all(), "torn read"
            if not seen:
                print("reading", flush=True)      # the writer starts now, however slowly we started
            seen.append(len(t))
            if len(t) >= 101000:
                break
        assert seen == sorted(seen), "count went backwards"
        print(seen[0], seen[-1], len(seen))
    """)
    p = subprocess.Popen([sys.executable, "-c", reader], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        import time
        assert p.stdout.readline().strip() == "reading", p.stderr.read()
        for k in range(1, 101):                    # the writer keeps committing meanwhile
            time.sleep(0.02)
            s.write(ReadingBatch.single_channel("x", secs(k * 1000, (k + 1) * 1000),
                                                np.arange(k * 1000, (k + 1) * 1000, dtype=float)))
        out, err = p.communicate(timeout=90)
    finally:
        p.kill()
        s.close()
    assert p.returncode == 0, err
    first, last, reads = map(int, out.split())
    assert reads > 1 and first < last == 101000   # saw the store grow, and the end of it


def test_readonly_store_refuses_writes_and_missing_file(tmp_path):
    from mieruka.errors import ConfigError
    with pytest.raises(ConfigError, match="no embedded store"):
        EmbeddedStore(tmp_path / "none.sqlite", readonly=True)
    EmbeddedStore(tmp_path / "s.sqlite").close()
    r = EmbeddedStore(tmp_path / "s.sqlite", readonly=True)
    with pytest.raises(RuntimeError):
        r.write(ReadingBatch.single_channel("x", secs(1), np.ones(1)))
    assert Quality.OK == 0
