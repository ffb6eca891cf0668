"""MQTT -> InfluxDB ingest and store-and-forward buffer throughput.

    .venv/bin/python bench/bench_ingest.py [--messages 20000] [--quick]

1. Buffer: append + forward (read, commit) of readings in batches, fsync per batch,
   against (a) the same buffer with one fsync per reading (a collector that makes
   each reading durable alone) and (b) a SQLite WAL table used as the queue
   (synchronous=FULL, insert per batch, delete once forwarded): the alternative design.
2. End to end with real servers: mosquitto + `mieruka collect` (a real subprocess) +
   influxd 1.6; messages published by mosquitto_pub as fast as it can, each carrying
   2 values; the clock runs from the first publish until InfluxQL counts every point.
   Baseline: one HTTP /write per message (what a naive bridge does).
"""
from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from helpers.net import wait_for  # noqa: E402
from helpers.servers import Collector, Influxd, Mosquitto  # noqa: E402

from mieruka.collector.buffer import DiskBuffer  # noqa: E402
from mieruka.models import ReadingBatch  # noqa: E402

T0_MS = 1_780_000_000_000


def batch(i0: int, n: int) -> ReadingBatch:
    t = (T0_MS + np.arange(i0, i0 + n)).astype("datetime64[ms]")
    return ReadingBatch(t, np.array([f"dev{i % 20}.power" for i in range(n)], object),
                        np.random.default_rng(i0).normal(5, 1, n), np.zeros(n, np.uint8))


def bench_buffer(tmp: Path, batches: int, per_batch: int, naive_readings: int) -> dict:
    out = {}
    # ours: one record + fsync per batch, forwarded in reads of 5000
    buf = DiskBuffer(tmp / "ours", max_mb=1024)
    data = [batch(k * per_batch, per_batch) for k in range(batches)]
    t0 = time.perf_counter()
    for b in data:
        buf.append(b)
    t_append = time.perf_counter() - t0
    t0 = time.perf_counter()
    n = 0
    while True:
        b, pos = buf.read(5000)
        if not len(b):
            break
        n += len(b)
        buf.commit(pos, len(b))
    t_fwd = time.perf_counter() - t0
    total = batches * per_batch
    assert n == total
    out["ours_append_pps"] = total / t_append
    out["ours_forward_pps"] = total / t_fwd
    out["ours_pps"] = total / (t_append + t_fwd)
    # naive: one fsync per reading (batches of one)
    nb = DiskBuffer(tmp / "naive", max_mb=1024)
    one = [batch(i, 1) for i in range(naive_readings)]
    t0 = time.perf_counter()
    for b in one:
        nb.append(b)
    out["naive_fsync_per_reading_pps"] = naive_readings / (time.perf_counter() - t0)
    # alternative design: SQLite WAL queue, one transaction per batch, delete after forwarding
    db = sqlite3.connect(tmp / "queue.sqlite", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE q (id INTEGER PRIMARY KEY, t INTEGER, channel TEXT, v REAL, quality INTEGER)")
    t0 = time.perf_counter()
    for b in data:
        rows = list(zip(b.time.astype(np.int64).tolist(), b.channel.tolist(), b.value.tolist(), b.quality.tolist()))
        db.execute("BEGIN")
        db.executemany("INSERT INTO q (t, channel, v, quality) VALUES (?, ?, ?, ?)", rows)
        db.execute("COMMIT")
    while True:
        rows = db.execute("SELECT id, t, channel, v, quality FROM q ORDER BY id LIMIT 5000").fetchall()
        if not rows:
            break
        np.array([r[1] for r in rows]), np.array([r[3] for r in rows])
        db.execute("DELETE FROM q WHERE id <= ?", (rows[-1][0],))
    out["sqlite_queue_pps"] = total / (time.perf_counter() - t0)
    return out


SITE = """
[site]
name = "bench"
data_dir = "{data}"
[storage]
backend = "influxdb"
[storage.influxdb]
url = "{influx}"
database = "energy"
[collector]
metrics_port = 0
[mqtt]
[[mqtt.brokers]]
url = "{mqtt}"
client_id = "mieruka-bench"
[[mqtt.subscriptions]]
topic = "meters/+/data"
decoder = "json"
time_path = "ts"
time_format = "unix_ms"
[[mqtt.subscriptions.mapping]]
path = "p"
channel = "{{device}}.power"
quantity = "power_kw"
scale = 0.001
[[mqtt.subscriptions.mapping]]
path = "e"
channel = "{{device}}.energy"
quantity = "energy_kwh"
"""


def messages(n: int, devices: int = 20) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for i in range(n):
        out.setdefault(f"meters/dev{i % devices}/data", []).append(
            json.dumps({"ts": T0_MS + 1000 * (i // devices), "p": 1000 + i % 97, "e": 5.0 + i / 1000}))
    return out


def bench_e2e(tmp: Path, n: int, naive_n: int) -> dict:
    ix = Influxd(tmp).start()
    mq = Mosquitto(tmp).start()
    cfg = tmp / "site.toml"
    cfg.write_text(SITE.format(data=tmp / "data", influx=ix.url, mqtt=mq.url))
    col = Collector(cfg, tmp / "collect.log").start()
    out = {}
    try:
        wait_for(lambda: "MQTT connected" in (tmp / "collect.log").read_text(), 20, what="collector")
        msgs = messages(n)
        t0 = time.perf_counter()
        pubs = [subprocess.Popen(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(mq.port), "-q", "1", "-t", topic,
                                  "-l"], stdin=subprocess.PIPE, text=True) for topic in msgs]
        for p, lines in zip(pubs, msgs.values()):
            p.stdin.write("\n".join(lines) + "\n")
            p.stdin.close()
        for p in pubs:
            p.wait()
        t_pub = time.perf_counter() - t0
        wait_for(lambda: ix.count() >= 2 * n, 300, every_s=0.25, what="all points")
        dt = time.perf_counter() - t0
        out.update(e2e_messages=n, e2e_seconds=dt, e2e_msgs_per_s=n / dt, e2e_points_per_s=2 * n / dt,
                   publish_seconds=t_pub)
        col.stop()
        # naive bridge: one HTTP write per message
        http = httpx.Client(base_url=ix.url)
        lines = [(f"energy,channel=n{i % 20}.power value={1.0 + i}\n"
                  f"energy,channel=n{i % 20}.energy value={5.0 + i} {T0_MS + i}") for i in range(naive_n)]
        http.post("/query", params={"q": "CREATE DATABASE naive"}).raise_for_status()
        t0 = time.perf_counter()
        for body in lines:
            http.post("/write", params={"db": "naive", "precision": "ms"}, content=body).raise_for_status()
        out["naive_http_per_message_msgs_per_s"] = naive_n / (time.perf_counter() - t0)
    finally:
        col.stop()
        mq.stop()
        ix.stop()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    a = ap.parse_args()
    n = 2000 if a.quick else a.messages
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        b = bench_buffer(tmp, batches=200 if a.quick else 2000, per_batch=100, naive_readings=300 if a.quick else 2000)
        print(f"buffer, batches of 100 readings, fsync per batch: append {b['ours_append_pps']:,.0f} readings/s, "
              f"forward {b['ours_forward_pps']:,.0f} readings/s, together {b['ours_pps']:,.0f} readings/s")
        print(f"  naive, fsync per reading: {b['naive_fsync_per_reading_pps']:,.0f} readings/s "
              f"(ours x{b['ours_append_pps'] / b['naive_fsync_per_reading_pps']:,.0f} on append)")
        print(f"  SQLite WAL queue (insert per batch, delete after forward): {b['sqlite_queue_pps']:,.0f} readings/s "
              f"(ours x{b['ours_pps'] / b['sqlite_queue_pps']:.1f})")
        e = bench_e2e(tmp / "e2e", n, naive_n=500 if a.quick else 2000)
        print(f"MQTT -> InfluxDB end to end: {e['e2e_messages']} messages in {e['e2e_seconds']:.1f} s: "
              f"{e['e2e_msgs_per_s']:,.0f} messages/s, {e['e2e_points_per_s']:,.0f} points/s "
              f"(publishing took {e['publish_seconds']:.1f} s)")
        print(f"  naive bridge, one HTTP write per message: {e['naive_http_per_message_msgs_per_s']:,.0f} messages/s "
              f"(ours x{e['e2e_msgs_per_s'] / e['naive_http_per_message_msgs_per_s']:.1f})")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
