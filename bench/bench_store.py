"""Embedded store throughput: batched writes and range reads into numpy, against a
naive row-per-point SQLite table (same WAL mode and synchronous setting).

    .venv/bin/python bench/bench_store.py [--channels 50] [--points 200000]

Prints points/s for: bulk writes (one batch per 10k points per channel, like a replay),
collector-style writes (every channel's 10 newest points per batch), full-range reads
and 1-day range reads, each against the row-per-point baseline.
"""
from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np

from mieruka.models import ReadingBatch
from mieruka.store.embedded import EmbeddedStore

T0 = np.datetime64("2026-04-01T00:00:00", "ms")


def batches(channels: int, points: int, per_batch: int):
    names = np.array([f"ch{i:03d}" for i in range(channels)], object)
    rng = np.random.default_rng(1)
    for s in range(0, points, per_batch):
        k = min(per_batch, points - s)
        t = T0 + (np.arange(s, s + k) * 1000).astype("timedelta64[ms]")
        yield ReadingBatch(np.tile(t, channels), np.repeat(names, k), rng.normal(10, 1, k * channels),
                           np.zeros(k * channels, np.uint8))


def naive_open(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE r (channel TEXT, t INTEGER, v REAL, q INTEGER, PRIMARY KEY (channel, t)) WITHOUT ROWID")
    return db


def naive_write(db: sqlite3.Connection, b: ReadingBatch) -> None:
    db.execute("BEGIN")
    db.executemany("INSERT OR REPLACE INTO r VALUES (?,?,?,?)",
                   zip(b.channel.tolist(), b.time.astype(np.int64).tolist(), b.value.tolist(), b.quality.tolist()))
    db.execute("COMMIT")


def naive_read(db: sqlite3.Connection, ch: str, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    rows = db.execute("SELECT t, v FROM r WHERE channel=? AND t>=? AND t<? ORDER BY t", (ch, lo, hi)).fetchall()
    a = np.array(rows, np.float64).reshape(-1, 2)
    return a[:, 0].astype(np.int64).astype("datetime64[ms]"), a[:, 1]


def rate(n: int, secs: float) -> str:
    return f"{n / secs / 1e6:7.2f} M points/s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--channels", type=int, default=50)
    ap.add_argument("--points", type=int, default=200_000, help="points per channel (1 s apart)")
    ap.add_argument("--naive-points", type=int, default=40_000, help="points per channel for the baseline")
    a = ap.parse_args()
    d = Path(tempfile.mkdtemp(prefix="bench-store-"))
    total = a.channels * a.points
    res = {}

    s = EmbeddedStore(d / "chunks.sqlite")
    t = time.perf_counter()
    for b in batches(a.channels, a.points, 10_000):
        s.write(b)
    res["bulk write"] = rate(total, time.perf_counter() - t)

    n_small = 3000
    t = time.perf_counter()
    for b in batches(a.channels, n_small, 10):
        s.write(ReadingBatch(b.time + np.timedelta64(10**9, "ms"), b.channel, b.value, b.quality))
    res["collector-style write (10 pts x channels per batch)"] = rate(a.channels * n_small, time.perf_counter() - t)
    s.flush()

    t = time.perf_counter()
    got = sum(len(s.read(f"ch{i:03d}", T0, T0 + np.timedelta64(a.points * 1000, "ms"))[0])
              for i in range(a.channels))
    res["full-range read"] = rate(got, time.perf_counter() - t)
    assert got == total, (got, total)
    t = time.perf_counter()
    day = np.timedelta64(86400_000, "ms")
    got = sum(len(s.read(f"ch{i:03d}", T0 + day, T0 + 2 * day)[0]) for i in range(a.channels))
    res["1-day read"] = rate(got, time.perf_counter() - t)
    s.close()

    nb = naive_open(d / "naive.sqlite")
    ntotal = a.channels * a.naive_points
    t = time.perf_counter()
    for b in batches(a.channels, a.naive_points, 10_000):
        naive_write(nb, b)
    base_w = ntotal / (time.perf_counter() - t)
    t = time.perf_counter()
    got = sum(len(naive_read(nb, f"ch{i:03d}", -(1 << 62), 1 << 62)[0]) for i in range(a.channels))
    base_r = got / (time.perf_counter() - t)
    nb.close()

    print(f"embedded store, {a.channels} channels x {a.points} points (1 s), {d}")
    for k, v in res.items():
        print(f"  {k:52s} {v}")
    print(f"naive row-per-point SQLite, {a.channels} x {a.naive_points} points")
    print(f"  {'bulk write':52s} {rate(ntotal, ntotal / base_w)}")
    print(f"  {'full-range read':52s} {rate(got, got / base_r)}")
    bw = float(res['bulk write'].split()[0]) * 1e6
    fr = float(res['full-range read'].split()[0]) * 1e6
    print(f"ratio chunks/naive: write x{bw / base_w:.1f}, read x{fr / base_r:.1f}")
    print(f"targets: write >= 0.5 M/s {'MET' if bw >= 5e5 else 'MISSED'}, "
          f"read >= 5 M/s {'MET' if fr >= 5e6 else 'MISSED'}")


if __name__ == "__main__":
    main()
