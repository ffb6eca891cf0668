"""Collector CPU at 100 simulated meters x 30 registers polled every second.

    .venv/bin/python bench/bench_collector.py [--meters 100] [--seconds 30] [--no-collectd]

Starts `mieruka simulate` (its own process) serving 100 SDM630s (15 float32 fields =
30 registers each) behind one port, then runs, one after the other, as processes:

1. `mieruka collect` with coalesced reads (the default, fill_holes = 8: 3 reads a meter),
2. the same with fill_holes = 32 (one read of 76 registers a meter),
3. `mieruka collect` with one request per field (`request_per_field`, fussy-device mode),
4. collectd 5 (C, Debian `collectd-core`) with its modbus plugin reading the same
   registers (it sends one request per <Data> block), when installed.

For each: CPU % of one core over the steady-state window (from /proc/PID/stat, after
a warm-up), requests per poll cycle, and for ours the readings stored vs expected.
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIELDS = [("voltage_l1", "voltage_v"), ("voltage_l2", "voltage_v"), ("voltage_l3", "voltage_v"),
          ("current_l1", "current_a"), ("current_l2", "current_a"), ("current_l3", "current_a"),
          ("power_l1", "power_kw"), ("power_l2", "power_kw"), ("power_l3", "power_kw"),
          ("power_factor_l1", "power_factor"), ("total_power", "power_kw"), ("total_power_factor", "power_factor"),
          ("frequency", "frequency_hz"), ("import_energy", "energy_kwh"), ("export_energy", "energy_kwh")]
ADDR = {"voltage_l1": 0x00, "voltage_l2": 0x02, "voltage_l3": 0x04, "current_l1": 0x06, "current_l2": 0x08,
        "current_l3": 0x0A, "power_l1": 0x0C, "power_l2": 0x0E, "power_l3": 0x10, "power_factor_l1": 0x1E,
        "total_power": 0x34, "total_power_factor": 0x3E, "frequency": 0x46, "import_energy": 0x48,
        "export_energy": 0x4A}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def site_toml(n: int, port: int, data_dir: Path, per_field: bool, fill_holes: int = 8) -> str:
    ids = ", ".join(f'"m{i}"' for i in range(1, n + 1)) if per_field else ""
    out = [f'[site]\nname = "bench"\ndata_dir = "{data_dir}"\n', f"[collector]\nrequest_per_field = [{ids}]\n"]
    for i in range(1, n + 1):
        out.append(f'[[meters]]\nid = "m{i}"\nmodel = "sdm630"\nport = {port}\nunit_id = {i}\npoll_interval_s = 1.0\n'
                   f'fill_holes = {fill_holes}\n')
        for name, q in FIELDS:
            kind = 'equipment_kind = "incomer"\n' if (i == 1 and name == "total_power") else ""
            out.append(f'[[meters.channels]]\nid = "m{i}_{name}"\nregister = "{name}"\nquantity = "{q}"\n{kind}')
    return "\n".join(out)


def collectd_conf(n: int, port: int, interval: float) -> str:
    data = "".join(f'<Data "{name}">\n RegisterBase {ADDR[name]}\n RegisterType Float\n RegisterCmd ReadInput\n'
                   f' Type gauge\n Instance "{name}"\n</Data>\n' for name, _ in FIELDS)
    slaves = "".join(f'<Slave {i}>\n Instance "m{i}"\n' + "".join(f' Collect "{name}"\n' for name, _ in FIELDS)
                     + "</Slave>\n" for i in range(1, n + 1))
    return (f'Interval {interval}\nTypesDB "/usr/share/collectd/types.db"\nLoadPlugin modbus\n<Plugin modbus>\n{data}'
            f'<Host "gw">\n Address "127.0.0.1"\n Port "{port}"\n Interval {interval}\n{slaves}</Host>\n</Plugin>\n')


def cpu_s(pid: int) -> float:
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def measure(cmd: list[str], env: dict, warmup: float, seconds: float) -> float:
    """CPU % of one core of a process over `seconds` after `warmup`."""
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(warmup)
        if p.poll() is not None:
            raise RuntimeError(f"{cmd[0]} exited: {p.stderr.read()[-2000:]}")
        c0, t0 = cpu_s(p.pid), time.monotonic()
        time.sleep(seconds)
        c1, t1 = cpu_s(p.pid), time.monotonic()
    finally:
        p.terminate()
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
    return 100 * (c1 - c0) / (t1 - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--meters", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--warmup", type=float, default=8)
    ap.add_argument("--no-collectd", action="store_true")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-collector-"))
    port = free_port()
    env = dict(os.environ)
    cfgs = {}
    modes = {"coalesced": 8, "coalesced_fill32": 32, "per_field": 0}     # mode -> fill_holes
    for mode, fill in modes.items():
        (tmp / mode).mkdir()
        cfgs[mode] = tmp / f"{mode}.toml"
        cfgs[mode].write_text(site_toml(a.meters, port, tmp / mode, mode == "per_field", fill))

    from mieruka.collector.modbus_plan import plan_reads
    from mieruka.collector.registers import load_register_map
    rm = load_register_map("sdm630")
    fields = [rm.fields[n] for n, _ in FIELDS]
    req = {"coalesced": len(plan_reads(fields, rm.max_registers_per_read, 8)) * a.meters,
           "coalesced_fill32": len(plan_reads(fields, rm.max_registers_per_read, 32)) * a.meters,
           "per_field": len(fields) * a.meters, "per_register": sum(f.count for f in fields) * a.meters}

    sim = subprocess.Popen([sys.executable, "-m", "mieruka.cli", "simulate", "--config", str(cfgs["coalesced"]),
                            "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        res = {}
        for mode in modes:
            cmd = [sys.executable, "-m", "mieruka.cli", "collect", "--config", str(cfgs[mode]), "-q"]
            sim_c0 = cpu_s(sim.pid)
            res[mode] = measure(cmd, env, a.warmup, a.seconds)
            res[f"sim_{mode}"] = 100 * (cpu_s(sim.pid) - sim_c0) / (a.warmup + a.seconds)
            from mieruka.store.embedded import EmbeddedStore
            s = EmbeddedStore(tmp / mode / "mieruka.sqlite", readonly=True)
            t, v, q = s.read_quality("m50_total_power" if a.meters >= 50 else "m1_total_power")
            ok = int((q == 0).sum())
            span = (t[-1] - t[0]).astype(int) / 1000 + 1 if len(t) else 0
            res[f"ok_{mode}"] = f"{ok} OK readings of one channel over {span:.0f} s of slots"
            s.close()
        collectd = shutil.which("collectd") or ("/usr/sbin/collectd" if Path("/usr/sbin/collectd").exists() else None)
        if collectd and not a.no_collectd:
            conf = tmp / "collectd.conf"
            # its csv writer stands in for our store, and lets us count what it really read
            conf.write_text(collectd_conf(a.meters, port, 1) +
                            f'LoadPlugin csv\n<Plugin csv>\n DataDir "{tmp}/csv"\n</Plugin>\n')
            res["collectd"] = measure([collectd, "-f", "-C", str(conf)], env, a.warmup, a.seconds)
            m = min(50, a.meters)
            files = list((tmp / "csv").glob(f"*/modbus-m{m}/gauge-total_power-*"))
            lines = files[0].read_text().splitlines()[1:] if files else []
            res["ok_collectd"] = (f"{len(lines)} readings of one channel over {a.warmup + a.seconds:.0f} s"
                                  if lines else "NO readings: check the config")
    finally:
        sim.terminate()
        sim.wait(20)

    print(f"{a.meters} meters x {len(fields)} float32 fields ({sum(f.count for f in fields)} registers) every 1 s")
    print(f"requests per cycle: coalesced {req['coalesced']} (fill_holes 8, the default), "
          f"{req['coalesced_fill32']} (fill_holes 32), one per field {req['per_field']}, "
          f"one per register {req['per_register']} (x{req['per_register'] / req['coalesced']:.0f} and "
          f"x{req['per_register'] / req['coalesced_fill32']:.0f} fewer)")
    print(f"mieruka collect, coalesced:      {res['coalesced']:5.1f} % of one core  ({res['ok_coalesced']})")
    print(f"mieruka collect, fill_holes 32:  {res['coalesced_fill32']:5.1f} % of one core  "
          f"({res['ok_coalesced_fill32']})")
    print(f"mieruka collect, one per field:  {res['per_field']:5.1f} % of one core  ({res['ok_per_field']})")
    print(f"(simulator process: {res['sim_coalesced']:.0f} % / {res['sim_coalesced_fill32']:.0f} % / "
          f"{res['sim_per_field']:.0f} %)")
    if "collectd" in res:
        print(f"collectd modbus plugin (C), one request per field: {res['collectd']:5.1f} % of one core "
              f"({res['ok_collectd']})")
        print(f"ratio mieruka coalesced / collectd: {res['coalesced'] / max(res['collectd'], 1e-9):.2f}; "
              f"mieruka per field / collectd: {res['per_field'] / max(res['collectd'], 1e-9):.2f}")
    print(f"target < 10 % of one core: {'MET' if res['coalesced'] < 10 else 'MISSED'}")


if __name__ == "__main__":
    main()
