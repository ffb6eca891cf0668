"""One large site, whole vs split by channel groups (mieruka fleet analyze).

    python bench/bench_fleet_split.py                          # 30 days x 33 channels at 10 s
    python bench/bench_fleet_split.py --days 7 --step-s 60     # a quick look

The site (the simulator's "large" factory: incomer, 20 breakers, two air systems,
outdoor temperature) is recorded and loaded into an embedded store, the source
where a split task reads only its own channels.  Then:

1. each task in a fresh process, as a worker runs it: the whole site in one task,
   and the split site's plan, group and combine tasks; wall and CPU seconds and the
   peak RSS of each above the process's RSS after its imports (what bounds a
   worker's memory);
2. serial whole vs serial split, and a 2-worker LocalCluster whole vs split:
   wall seconds, and whether every JSON is byte-identical.
"""
from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SITE_TOML = """[site]
name = "bench plant"
timezone = "Asia/Tokyo"
data_dir = "{data}"
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

# one task in a fresh process: argv = manifest, split_readings, stage, in-pickle, out-pickle, [group index]
TASK = """
import pickle, sys, time
from mieruka.service.fleet import combine_task, group_task, site_task
from mieruka.service.fleet_manifest import load_manifest
man, limit, stage, src, dst = sys.argv[1:6]
spec = load_manifest(man, split_readings=int(limit)).sites[0]
arg = pickle.load(open(src, "rb")) if src != "-" else None
import mieruka.analytics.pipeline, mieruka.service.fleet_co2, mieruka.store.embedded, pyarrow.csv   # imports counted before
status = lambda k: next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith(k)) / 1024
rss0 = status("VmRSS")
open("/proc/self/clear_refs", "w").write("5")       # resets the peak (VmHWM) to the current RSS
t, c = time.perf_counter(), time.process_time()
if stage == "site":
    out = site_task(spec)
elif stage == "group":
    out = group_task(spec, arg, arg["groups"][int(sys.argv[6])])
else:
    out = combine_task(spec, arg["plan"], *arg["groups"])
wall, cpu = time.perf_counter() - t, time.process_time() - c
assert not out.get("error"), out
pickle.dump(out, open(dst, "wb"))
print(wall, cpu, status("VmHWM") - rss0)
"""


def task(manifest: Path, limit: int, stage: str, src: Path | None, dst: Path, *extra: str) -> tuple[float, ...]:
    out = subprocess.run([sys.executable, "-c", TASK, str(manifest), str(limit), stage, str(src or "-"), str(dst),
                          *extra], capture_output=True, text=True, check=True)
    return tuple(map(float, out.stdout.split()[-3:]))


def build(d: Path, days: float, step_s: float) -> tuple[Path, int, int]:
    from mieruka.recording import read_recording
    from mieruka.simulators.factories import factory_scenario
    from mieruka.simulators.recording import generate_channels, write_simulated_recording
    from mieruka.store.embedded import EmbeddedStore

    rec = d / "site.csv"
    sc = factory_scenario("large", noise=0.03, leak_share=0.15, layout_seed=1)
    sc.scenario.outdoor_temp_channel = "outdoor_temp"
    write_simulated_recording(generate_channels(sc, "2026-04-01", days, step_s, seed=1), rec)
    r = read_recording(rec)
    store = EmbeddedStore(d / "data" / "mieruka.sqlite")
    store.set_channels(r.infos())
    store.write(r.to_batch())
    store.close()
    (d / "site.toml").write_text(SITE_TOML.format(data=d / "data"), "utf-8")
    (d / "fleet.toml").write_text('[[sites]]\nid = "big"\nconfig = "site.toml"\nstore = "data"\n', "utf-8")
    return d / "fleet.toml", r.rows, len(r.channels)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=float, default=30.0)
    ap.add_argument("--step-s", type=float, default=10.0)
    ap.add_argument("--groups", type=int, default=4, help="split into about this many breaker groups")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    from mieruka.service.fleet import fleet_client, run_fleet
    from mieruka.service.fleet_manifest import load_manifest

    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    with tempfile.TemporaryDirectory(prefix="bench-split-") as tmp:
        d = Path(tmp)
        t = time.perf_counter()
        manifest, rows, n_ch = build(d, args.days, args.step_s)
        print(f"site: {n_ch} channels x {args.days:g} days at {args.step_s:g} s = {rows:,} readings "
              f"(built in {time.perf_counter() - t:.0f} s)")
        limit = max(1, rows // args.groups)

        w, c, rss_whole = task(manifest, 0, "site", None, d / "whole.pkl")
        print(f"whole site, one task   : {w:6.2f} s wall {c:6.2f} s CPU  peak RSS +{rss_whole:4.0f} MB")
        w, c, rss = task(manifest, limit, "site", None, d / "plan.pkl")
        plan = pickle.load(open(d / "plan.pkl", "rb"))["split"]
        print(f"split: plan + context  : {w:6.2f} s wall {c:6.2f} s CPU  peak RSS +{rss:4.0f} MB  "
              f"({len(plan['groups'])} groups of {', '.join(str(len(g)) for g in plan['groups'])} breakers; "
              f"{len(plan['site'])} site channels)")
        pickle.dump(plan, open(d / "plan-only.pkl", "wb"))
        groups, peak, cpu_sum = [], rss, c
        for i in range(len(plan["groups"])):
            w, c, rss = task(manifest, limit, "group", d / "plan-only.pkl", d / f"g{i}.pkl", str(i))
            groups.append(pickle.load(open(d / f"g{i}.pkl", "rb")))
            peak, cpu_sum = max(peak, rss), cpu_sum + c
            print(f"split: group {i}         : {w:6.2f} s wall {c:6.2f} s CPU  peak RSS +{rss:4.0f} MB")
        pickle.dump({"plan": plan, "groups": groups}, open(d / "comb.pkl", "wb"))
        w, c, rss = task(manifest, limit, "combine", d / "comb.pkl", d / "final.pkl")
        peak, cpu_sum = max(peak, rss), cpu_sum + c
        print(f"split: combine         : {w:6.2f} s wall {c:6.2f} s CPU  peak RSS +{rss:4.0f} MB")
        print(f"split: largest task {peak:.0f} MB vs whole {rss_whole:.0f} MB (ratio {peak / rss_whole:.2f}); "
              f"CPU of all split tasks {cpu_sum:.2f} s")
        same_task = pickle.load(open(d / "final.pkl", "rb"))["analysis_sha256"] == \
            pickle.load(open(d / "whole.pkl", "rb"))["analysis_sha256"]

        whole_f, split_f = load_manifest(manifest, split_readings=0), load_manifest(manifest, split_readings=limit)
        t = time.perf_counter()
        ref = run_fleet(whole_f, None).to_json()
        print(f"serial whole: {time.perf_counter() - t:6.2f} s", end="   ")
        t = time.perf_counter()
        same = [run_fleet(split_f, None).to_json() == ref]
        print(f"serial split: {time.perf_counter() - t:6.2f} s")
        with fleet_client(workers=args.workers) as client:
            for name, f in (("whole", whole_f), ("split", split_f)) * 2:      # the second round is warm
                t = time.perf_counter()
                same.append(run_fleet(f, client).to_json() == ref)
                print(f"dask x{args.workers} {name}: {time.perf_counter() - t:6.2f} s", end="   ")
        print()
        ok = same_task and all(same)
        print(f"byte-identical (per-task analysis, serial and dask, whole and split): {ok}")
        print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
