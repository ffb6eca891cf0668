"""Fleet analysis: N simulated site-months, serial (the naive baseline: one site
after the other in one process) vs a 2-worker dask.distributed LocalCluster.

    python bench/bench_fleet.py                       # 40 sites x 32 channels x 30 days at 1 min
    python bench/bench_fleet.py --sites 200 --workers 2
    python bench/bench_fleet.py --sites 8 --days 7    # a quick look

Each site is a "large" simulated factory (32 channels: incomer, 20 breakers, two
air systems with flow and pressure) recorded for `--days` at `--step-s`.  Only
`--distinct` different recordings are simulated (generating 200 site-months would
take longer than analysing them); site i reads recording i mod K.  Every site is
nevertheless read from its CSV and analysed in full on a worker, as a real fleet
would be, so the per-site work is real; the OS file cache serves the repeated
files, as it would serve a fleet's recordings on a local disk after the first read.

Prints: per-site wall and CPU seconds (serial baseline: one process, one thread,
as each Dask worker runs; `--threaded-serial` adds serial with Arrow's threads), site-months and readings per second, the
speed-up of the cluster over serial, peak RSS per worker against one site
analysed alone in a fresh process, the machine's load average, and whether the
two runs' JSON are byte-identical.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SITE_TOML = """[site]
name = "bench plant"
timezone = "Asia/Tokyo"
[calendar]
holidays = "JP"
[calendar.shifts]
mon = ["08:00-12:00", "13:00-17:00"]
tue = ["08:00-12:00", "13:00-17:00"]
wed = ["08:00-12:00", "13:00-17:00"]
thu = ["08:00-12:00", "13:00-17:00"]
fri = ["08:00-12:00", "13:00-17:00"]
[tariffs]
electricity_jpy_per_kwh = 27.0
"""


def generate(out: Path, distinct: int, days: float, step_s: float) -> list[Path]:
    from mieruka.simulators.factories import factory_scenario
    from mieruka.simulators.recording import generate_channels, write_simulated_recording

    paths = []
    for k in range(distinct):
        p = out / f"site{k}.csv"
        sim = generate_channels(factory_scenario("large", noise=0.03, leak_share=0.1 + 0.05 * k, layout_seed=k),
                                "2026-04-01", days, step_s, seed=k)
        write_simulated_recording(sim, p)
        paths.append(p)
    return paths


def worker_cpu_s() -> float:
    """CPU seconds (user + system) of this process so far."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def warm_up() -> None:
    """Import what a site's analysis imports (both runs are timed warm)."""
    import mieruka.analytics.co2  # noqa: F401
    import mieruka.analytics.pipeline  # noqa: F401
    import mieruka.recording  # noqa: F401
    import mieruka.service.fleet_co2  # noqa: F401
    import mieruka.site  # noqa: F401
    import pyarrow.csv  # noqa: F401


def one_site_alone(manifest: Path) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MB) of the first site analysed in a fresh process."""
    code = ("import resource,time,sys; from mieruka.service.fleet_manifest import load_manifest; "
            "from mieruka.service.fleet import analyze_site; f=load_manifest(sys.argv[1]); "
            "t=time.perf_counter(); c=time.process_time(); r=analyze_site(f.sites[0]); assert not r.get('error'), r; "
            "print(time.perf_counter()-t, time.process_time()-c, "
            "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024)")
    out = subprocess.run([sys.executable, "-c", code, str(manifest)], capture_output=True, text=True, check=True)
    wall, cpu, rss = map(float, out.stdout.split())
    return wall, cpu, rss


def serial_one_thread(manifest: Path, out_json: Path) -> tuple[float, float]:
    """The naive baseline: every site one after the other in one process on one
    thread, the environment a Dask worker gets (distributed sets OMP_NUM_THREADS=1,
    which also sizes Arrow's CSV thread pool).  Returns (wall s, CPU s)."""
    code = ("import sys,time,json; import bench_fleet as b; b.warm_up(); "
            "from mieruka.service.fleet_manifest import load_manifest; from mieruka.service.fleet import run_fleet; "
            "f=load_manifest(sys.argv[1]); t=time.perf_counter(); c=time.process_time(); r=run_fleet(f, None); "
            "w=time.perf_counter()-t; cpu=time.process_time()-c; open(sys.argv[2],'w').write(r.to_json()); "
            "print(w, cpu)")
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               PYTHONPATH=str(Path(__file__).parent))
    out = subprocess.run([sys.executable, "-c", code, str(manifest), str(out_json)], capture_output=True,
                         text=True, check=True, env=env)
    wall, cpu = map(float, out.stdout.split()[-2:])
    return wall, cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sites", type=int, default=40)
    ap.add_argument("--distinct", type=int, default=8, help="different simulated recordings (site i uses i mod K)")
    ap.add_argument("--days", type=float, default=30.0)
    ap.add_argument("--step-s", type=float, default=60.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threaded-serial", action="store_true",
                    help="also time serial in this process with the libraries' own threads")
    ap.add_argument("--dir", type=Path, help="keep the recordings here (default: a temp dir)")
    args = ap.parse_args()

    from mieruka.service.fleet import fleet_client, run_fleet
    from mieruka.service.fleet_manifest import load_manifest

    tmp = tempfile.TemporaryDirectory(prefix="bench-fleet-") if args.dir is None else None
    d = Path(tmp.name) if tmp else args.dir
    d.mkdir(parents=True, exist_ok=True)
    print(f"load average at start: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} "
          f"({os.cpu_count()} CPUs)")
    t = time.perf_counter()
    k = min(args.distinct, args.sites)
    paths = sorted(d.glob("site*.csv"))[:k]
    if len(paths) < k:
        paths = generate(d, k, args.days, args.step_s)
    print(f"recordings: {k} distinct x {args.days:g} days at {args.step_s:g} s "
          f"({sum(p.stat().st_size for p in paths) / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s")
    (d / "site.toml").write_text(SITE_TOML, "utf-8")
    lines = ["[company]", 'name = "bench"', ""]
    for i in range(args.sites):
        lines += ["[[sites]]", f'id = "site{i:04d}"', 'config = "site.toml"', f'recordings = "{paths[i % k].name}"', ""]
    manifest = d / "fleet.toml"
    manifest.write_text("\n".join(lines), "utf-8")
    fleet = load_manifest(manifest)

    wall1, cpu1, rss1 = one_site_alone(manifest)
    from mieruka.recording import read_recording
    rec = read_recording(paths[0])
    n_ch, n_read = len(rec.channels), rec.rows
    del rec
    print(f"one site alone: {n_ch} channels, {n_read:,} readings; {wall1:.2f} s wall, {cpu1:.2f} s CPU, "
          f"peak RSS {rss1:.0f} MB")

    ts, cs = serial_one_thread(manifest, d / "serial.json")
    serial_json = (d / "serial.json").read_text("utf-8")
    assert '"sites_failed": 0' in serial_json
    print(f"serial, 1 thread (baseline): {args.sites} sites in {ts:7.1f} s  ({ts / args.sites:.2f} s/site wall, "
          f"{cs / args.sites:.2f} s/site CPU; {args.sites / ts:.2f} site-months/s, "
          f"{args.sites * n_read / ts / 1e6:.2f} M readings/s)  load {os.getloadavg()[0]:.2f}")
    if args.threaded_serial:
        warm_up()
        t, c = time.perf_counter(), time.process_time()
        threaded = run_fleet(fleet, None)
        tt, ct = time.perf_counter() - t, time.process_time() - c
        print(f"serial, library threads (Arrow's CSV reader on every core): {tt:7.1f} s  "
              f"({tt / args.sites:.2f} s/site wall, {ct / args.sites:.2f} s/site CPU)  load {os.getloadavg()[0]:.2f}")
        assert threaded.to_json() == serial_json

    t = time.perf_counter()
    with fleet_client(workers=args.workers) as client:
        startup = time.perf_counter() - t
        client.run(warm_up)
        cpu0 = client.run(worker_cpu_s)
        t = time.perf_counter()
        dist = run_fleet(fleet, client)
        td = time.perf_counter() - t
        cpu1 = client.run(worker_cpu_s)
        cpu_dask = sum(cpu1[w] - cpu0.get(w, 0.0) for w in cpu1)
        rss = client.run(lambda: __import__("resource").getrusage(__import__("resource").RUSAGE_SELF).ru_maxrss / 1024)
    print(f"dask x{args.workers}    : {args.sites} sites in {td:7.1f} s  ({args.sites / td:.2f} site-months/s, "
          f"{args.sites * n_read / td / 1e6:.2f} M readings/s; cluster start {startup:.1f} s not counted)  "
          f"load {os.getloadavg()[0]:.2f}")
    print(f"speed-up   : {ts / td:.2f}x serial 1-thread  (incl. cluster start: {ts / (td + startup):.2f}x)"
          + (f"; {tt / td:.2f}x serial with library threads" if args.threaded_serial else ""))
    print("peak RSS per worker: " + ", ".join(f"{v:.0f} MB" for v in rss.values())
          + f"  (one site alone: {rss1:.0f} MB; ratio max/alone {max(rss.values()) / rss1:.2f})")
    # Linux groups a session's processes for CPU fairness (autogroup): on a machine other
    # people load, our two workers share one session's slice and the wall-clock speed-up
    # says little.  CPU accounting does not depend on that: the workers' CPU seconds
    # against serial's give the parallel efficiency and the speed-up on idle cores.
    eff = cs / cpu_dask if cpu_dask else float("nan")
    print(f"CPU seconds: serial {cs:.1f}, dask workers {cpu_dask:.1f} (efficiency {eff:.2f}); "
          f"speed-up on {args.workers} idle cores = {args.workers * eff:.2f}x; CPU share this session got: "
          f"serial {cs / ts:.2f} cores, dask {cpu_dask / td:.2f} cores")
    same = dist.to_json() == serial_json
    print(f"JSON byte-identical serial vs dask: {same}")
    print(f"load average at end: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
