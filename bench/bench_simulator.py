"""Simulator speed: recording generation (points/s) against a naive per-sample
Python loop of the same model, recording write speed, and the live Modbus
server's answer rate.

    .venv/bin/python bench/bench_simulator.py [--quick]
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from mieruka.calendar import SiteCalendar
from mieruka.simulators.factories import factory_scenario
from mieruka.simulators.recording import generate_channels, write_simulated_recording


def naive_points_per_s(days: float, step_s: float) -> float:
    """The small factory's 11 channels (loads, counters, incomer, compressor, air meter), one
    sample at a time: a Python loop with a calendar lookup per sample and a hysteresis
    state machine for the receiver (no truth, no faults: it does less than the real one)."""
    sc = factory_scenario("small", events=False)
    cal = SiteCalendar.from_section(sc.calendar)
    tz = cal.tz
    holidays = cal.holiday_names(dt.date(2026, 4, 1), dt.date(2026, 4, 30))
    comp = sc.compressors[0]
    rng = np.random.default_rng(0)
    n = int(days * 86400 / step_s)
    t0 = dt.datetime(2026, 4, 6, tzinfo=tz)
    pressure, loaded, unloaded_for = 0.66, False, 0.0
    k = 0.1013 / comp.receiver_m3
    lo, hi = comp.pressure_band_mpa
    points = 0
    counters: dict[str, float] = {}
    start = time.perf_counter()
    for i in range(n):
        t = t0 + dt.timedelta(seconds=i * step_s)
        minute = t.hour * 60 + t.minute
        works = t.weekday() < 5 and t.date() not in holidays
        prod = works and (480 <= minute < 720 or 780 <= minute < 1020)
        lunch = works and 720 <= minute < 780
        total = 0.0
        for ld in sc.loads:
            level = ld.production_kw if prod else (ld.lunch_kw or 0.0) if lunch else ld.standby_kw
            p = max(0.0, level * (1 + 0.03 * rng.standard_normal()))
            total += p
            if ld.energy_channel:
                counters[ld.energy_channel] = counters.get(ld.energy_channel, 0.0) + p * step_s / 3600
                points += 1
            points += 1
        demand = (comp.demand_production_m3min if prod else 0.6 if lunch else 0.0) + comp.leak_m3min
        supply = comp.capacity_m3_per_min if loaded else 0.0
        pressure += (supply - demand) * k * step_s / 60
        if pressure >= hi:
            loaded = False
        elif pressure <= lo:
            loaded = True
        unloaded_for = 0.0 if loaded else unloaded_for + step_s
        pc = comp.full_load_power_kw if loaded else (comp.unload_kw if unloaded_for < comp.unload_run_on_s else 0.0)
        flow = demand * (1 + 0.01 * rng.standard_normal())
        counters["air_volume"] = counters.get("air_volume", 0.0) + flow * step_s / 60
        main = total + pc + (12.0 if prod else 2.5) * (1 + 0.03 * rng.standard_normal())
        counters["main_energy"] = counters.get("main_energy", 0.0) + main * step_s / 3600
        points += 6   # compressor power, flow, volume, pressure, main power, main energy
    return points / (time.perf_counter() - start)


def vectorised(size: str, days: float, step_s: float, write: bool) -> tuple[int, float, float]:
    sc = factory_scenario(size, faults=True)
    t = time.perf_counter()
    sim = generate_channels(sc, "2026-04-01", days, step_s, seed=1)
    gen = time.perf_counter() - t
    wr = math.nan
    if write:
        with tempfile.TemporaryDirectory() as d:
            t = time.perf_counter()
            write_simulated_recording(sim, Path(d) / "rec.csv")
            wr = time.perf_counter() - t
    return sim.rows, gen, wr


def live_server_rate(n_requests: int = 2000) -> float:
    """Sequential FC04 reads of 76 registers from the demo site's unit 1 (round trips/s)."""
    from pymodbus.client import AsyncModbusTcpClient

    from mieruka.config import EXAMPLES_DIR
    from mieruka.simulators.modbus_server import ModbusSimulator

    async def run(port):
        c = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
        await c.connect()
        t = time.perf_counter()
        for i in range(n_requests):
            await c.read_input_registers(0, count=76, device_id=1 + i % 2)
        dt_ = time.perf_counter() - t
        c.close()
        return n_requests / dt_

    with ModbusSimulator(str(EXAMPLES_DIR / "demo-site.toml"), port=0) as sim:
        return asyncio.run(run(sim.port))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smaller runs")
    a = ap.parse_args()
    naive = naive_points_per_s(0.25 if a.quick else 1.0, 1.0)
    print(f"naive per-sample loop (small factory, 1 s):   {naive / 1e3:8.0f} k points/s")
    cases = [("small", 28, 60.0), ("large", 28, 60.0), ("small", 7 if not a.quick else 1, 1.0),
             ("large", 7 if not a.quick else 1, 1.0)]
    for size, days, step in cases:
        rows, gen, wr = vectorised(size, days, step, write=True)
        print(f"{size:5s} {days:3d} d at {step:4.0f} s: {rows / 1e6:7.2f} M points, generate {gen:6.2f} s "
              f"({rows / gen / 1e6:6.2f} M points/s, x{rows / gen / naive:5.0f} naive), "
              f"write {wr:6.2f} s ({rows / wr / 1e6:5.2f} M rows/s)")
    print(f"live Modbus TCP server: {live_server_rate(500 if a.quick else 2000):.0f} sequential reads/s (76 registers)")


if __name__ == "__main__":
    main()
