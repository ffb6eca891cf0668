"""API latency and throughput under concurrent load, against a real `mieruka serve`.

    .venv/bin/python bench/bench_api.py [--days 30] [--rate 200] [--seconds 10]

Set-up: a temporary site with 1-minute data of 8 channels over `--days` days in
the embedded store; `mieruka serve` (uvicorn, one process) on a free loopback
port.  Load: `wrk` (Debian), paced at `--rate` requests/s over 40 connections
(each pauses a random 0..2 x 40/rate s between its requests, so the offered rate
is a little under `--rate`: the pause comes on top of each answer's time), then flat out over 16
connections for the most requests/s.  Server CPU per request is read from
/proc, so it holds even on a busy machine.  Queries:

- readings: one day of one channel at 1-minute resolution (1,440 points with
  mean/min/max/count), a different day per request;
- findings: the analysis of the last 30 days (cached after the first request).

Baselines printed beside: the same readings answer encoded the generic FastAPI
way (response model validation + jsonable_encoder), and the analysis recomputed
per request (no cache).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

TOKEN = "bench-token-0123456789"


def make_site(tmp: Path, days: int) -> Path:
    import hashlib

    from mieruka.models import ChannelInfo
    from mieruka.recording import read_recording, write_channels
    from mieruka.service.replay import load_recording
    from mieruka.site import load_site
    from mieruka.store.base import open_store
    cfg = tmp / "site.toml"
    cfg.write_text(f"""
[site]
name = "bench"
data_dir = "{tmp / 'data'}"
[api]
rate_limit = "100000/second"
[[api.tokens]]
name = "bench"
role = "read"
sha256 = "{hashlib.sha256(TOKEN.encode()).hexdigest()}"
""", encoding="utf-8")
    n = days * 1440
    t = np.datetime64("2026-04-05T15:00", "ms") + np.arange(n).astype("timedelta64[m]").astype("timedelta64[ms]")
    minute, wd = np.arange(n) % 1440, (np.arange(n) // 1440) % 7
    prod = (wd < 5) & (minute >= 480) & (minute < 1020)
    rng = np.random.default_rng(0)
    infos, data = [], {}
    for k in range(8):
        cid = f"p{k}_power"
        kind = "incomer" if k == 0 else ("compressor" if k == 1 else "machine")
        infos.append(ChannelInfo(cid, "power_kw", equipment_kind=kind, system="air1" if k == 1 else None))
        data[cid] = (t, np.where(prod, 30.0 + k, 2.0 + k / 2) + rng.normal(0, 0.3, n), None)
    rec = tmp / "rec.csv"
    write_channels(rec, data, infos, tz="Asia/Tokyo")
    site = load_site(cfg)
    store = open_store(site)
    load_recording(read_recording(rec), site, store, progress=False)
    store.close()
    return cfg


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its children (uvicorn workers) so far."""
    total = 0.0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(c) for c in children.read_text().split()]
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def pct(lat: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(lat) * 1000, q))


WRK_LUA = """
paths = {%s}
i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1], {["Authorization"] = "Bearer %s"})
end
math.randomseed(os.time())
delay = function() return math.random(0, 2 * %s) end
"""


def run_wrk(base: str, paths: list[str], connections: int, seconds: float, rate: float | None, tmp: Path) -> dict:
    """wrk (Debian) with a Lua script: rotating paths, the bearer header, and with
    `rate` a random per-connection pause (uniform, mean connections/rate s) between
    requests: a paced closed loop whose connections do not fire in step (a fixed
    pause keeps them in phase, and the load arrives in bursts of `connections`)."""
    delay_ms = 0 if rate is None else int(round(1000 * connections / rate))
    lua = tmp / "wrk.lua"
    lua.write_text(WRK_LUA % (", ".join(f'"{p}"' for p in paths), TOKEN, delay_ms), encoding="utf-8")
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--latency", "-s", str(lua), base],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    def ms(text: str) -> float:
        v, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
        return float(v) * {"us": 1e-3, "ms": 1.0, "s": 1000.0}[unit]
    res = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    for q in ("50", "99"):
        res[f"p{q}"] = ms(re.search(rf"^\s+{q}(?:\.000)?%\s+(\S+)", out, re.M).group(1))
    res["max"] = ms(re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", out).group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["errors"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: (.*)", out)
    res["errors"] += sum(int(x) for x in re.findall(r"\d+", m.group(1))) if m else 0
    res["requests"] = int(re.search(r"(\d+) requests in", out).group(1))
    return res


def baselines(cfg_path: Path, days: int) -> dict[str, float]:
    """In-process: fast JSON vs FastAPI's generic encoding of one readings answer;
    one analysis run (what every findings request would cost without the cache)."""
    from fastapi.encoders import jsonable_encoder

    from mieruka.api.routes_data import fast_json
    from mieruka.api.schemas import Readings
    from mieruka.service.context import Context
    from mieruka.api.params import parse_param
    from mieruka.site import load_site
    from mieruka.store.base import open_store
    site = load_site(cfg_path)
    store = open_store(site, readonly=True)
    ctx = Context(site, store)
    t0, t1 = parse_param("s", "2026-04-07", ctx.tz), parse_param("e", "2026-04-08", ctx.tz)
    out = {}
    k = 50
    s = time.perf_counter()
    for _ in range(k):
        fast_json(ctx.readings("p0_power", t0, t1, 2000))
    out["readings_fast_ms"] = (time.perf_counter() - s) / k * 1000
    s = time.perf_counter()
    for _ in range(k):
        d = ctx.readings("p0_power", t0, t1, 2000)
        d.update({k: d[k].tolist() for k in ("mean", "min", "max", "count")})     # what a route would hold
        json.dumps(jsonable_encoder(Readings.model_validate(d)))
    out["readings_generic_ms"] = (time.perf_counter() - s) / k * 1000
    s = time.perf_counter()
    ctx.analysis()
    out["analysis_uncached_ms"] = (time.perf_counter() - s) * 1000
    store.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=1, help="mieruka serve --workers")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="mieruka-bench-api-") as d:
        tmp = Path(d)
        cfg = make_site(tmp, a.days)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        srv = subprocess.Popen([sys.executable, "-m", "mieruka.cli", "serve", "--config", str(cfg), "--port", str(port),
                                "--no-access-log", "--workers", str(a.workers)], stdout=open(tmp / "serve.log", "wb"), stderr=subprocess.STDOUT,
                               env=dict(os.environ))
        try:
            for _ in range(300):
                try:
                    if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            h = {"Authorization": f"Bearer {TOKEN}"}
            s = time.perf_counter()
            r = httpx.get(base + "/api/v1/findings", headers=h, timeout=120)
            first = time.perf_counter() - s
            assert r.status_code == 200, r.text
            day_list = [np.datetime_as_string(np.datetime64("2026-04-06") + np.timedelta64(i, "D")) for i in range(a.days - 1)]

            def readings(i: int) -> str:
                d0 = np.datetime64(day_list[i % len(day_list)])
                return (f"/api/v1/channels/p{i % 8}_power/readings?start={d0}T00:00:00%2B09:00"
                        f"&end={d0 + np.timedelta64(1, 'D')}T00:00:00%2B09:00")

            pts = httpx.get(base + readings(0), headers=h).json()["points"]
            print(f"site: 8 channels x {a.days} days of 1-minute data; server: mieruka serve (uvicorn, "
                  f"{a.workers} worker process{'es' if a.workers > 1 else ''}); load: wrk (1 thread)")
            print(f"machine load average before the run: {os.getloadavg()[0]:.1f} (2 cores)")
            print(f"findings, first request (analysis of 30 days, then cached): {first * 1000:.0f} ms")
            print(f"readings answer: {pts} points (1 day at 1 min, mean/min/max/count)\n")
            print(f"{'query':<10} {'load':<30} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>7} "
                  f"{'server CPU ms/req':>18}")
            for name, paths in (("readings", [readings(i) for i in range(64)]), ("findings", ["/api/v1/findings"])):
                run_wrk(base, paths, 4, 2, None, tmp)                       # warm-up
                for label, conns, rate in ((f"paced {a.rate:.0f}/s, 40 connections", 40, a.rate),
                                           ("flat out, 16 connections", 16, None)):
                    c0 = cpu_s(srv.pid)
                    r = run_wrk(base, paths, conns, a.seconds, rate, tmp)
                    cpu = (cpu_s(srv.pid) - c0) / max(1, r["requests"]) * 1000
                    print(f"{name:<10} {label:<30} {r['rps']:8.0f} {r['p50']:8.1f} {r['p99']:8.1f} {r['max']:8.1f} "
                          f"{r['errors']:7d} {cpu:18.2f}")
        except BaseException:
            print((tmp / "serve.log").read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            srv.terminate()
            srv.wait(10)
        b = baselines(cfg, a.days)
        print(f"\nreadings encode, in process: fast path {b['readings_fast_ms']:.2f} ms vs generic FastAPI "
              f"(model validation + jsonable_encoder) {b['readings_generic_ms']:.2f} ms: "
              f"{b['readings_generic_ms'] / b['readings_fast_ms']:.1f}x")
        print(f"findings without the cache: {b['analysis_uncached_ms']:.0f} ms per request "
              f"(so at most {1000 / b['analysis_uncached_ms']:.1f} req/s)")


if __name__ == "__main__":
    main()
