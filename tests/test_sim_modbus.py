"""The simulator as a real Modbus TCP server: mbpoll (Debian) and pymodbus clients over sockets."""
from __future__ import annotations

import asyncio
import math
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.demo import REPO
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusIOException

from mieruka.collector.registers import load_register_map
from mieruka.config import EXAMPLES_DIR
from mieruka.simulators.modbus_server import ModbusSimulator
from mieruka.simulators.scenario import FaultSpec

DEMO = EXAMPLES_DIR / "demo-site.toml"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("mbpoll") is None, reason="mbpoll (Debian package) not installed")
def test_mbpoll_reads_l1_voltage_from_mieruka_simulate(port, tmp_path, spawn):
    log = tmp_path / "simulate.log"
    sim = spawn([sys.executable, "-m", "mieruka.cli", "simulate", "--config", DEMO, "--port", str(port),
                 "--fault", "pm-lighting:exception:6"], port=port, log=log, cwd=REPO)
    out = subprocess.run(["mbpoll", "-m", "tcp", "-p", str(port), "-a", "1", "-t", "3:float", "-B", "-r", "1",
                          "-c", "1", "-1", "127.0.0.1"], capture_output=True, text=True, timeout=20)
    m = re.search(r"\[1\]:\s+([-\d.]+)", out.stdout)
    assert m, out.stdout + out.stderr
    volts = float(m.group(1))
    assert 110 <= volts <= 121, volts       # 200 V delta plant: about 115 V line-to-neutral
    out = subprocess.run(["mbpoll", "-m", "tcp", "-p", str(port), "-a", "4", "-t", "3:float", "-B", "-r", "1",
                          "-c", "1", "-1", "127.0.0.1"], capture_output=True, text=True, timeout=20)
    assert "busy" in (out.stdout + out.stderr).lower()     # exception 6 as mbpoll words it
    proc = sim.proc
    sim.stop()                              # SIGTERM: a clean exit (on failure the fixture stops it)
    assert proc.returncode == 0, log.read_text()


def _decode(regmap, name, regs, start):
    f = regmap.field(name)
    return f.decode(regs[f.address - start:f.address - start + f.count])


def test_pymodbus_reads_each_meter_model_through_the_register_maps():
    async def main(port):
        c = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
        await c.connect()
        try:
            sdm = load_register_map("sdm630")
            r = await c.read_input_registers(0, count=76, device_id=1)
            assert not r.isError()
            v1 = _decode(sdm, "voltage_l1", r.registers, 0)
            p = _decode(sdm, "total_power", r.registers, 0)
            pl = sum(_decode(sdm, f"power_l{k}", r.registers, 0) for k in (1, 2, 3))
            i1 = _decode(sdm, "current_l1", r.registers, 0)
            assert 110 < v1 < 121 and p > 0 and math.isclose(pl, p, rel_tol=1e-5)
            assert math.isclose(i1, p * 1000 / (3 * v1 * 0.92), rel_tol=0.02)
            assert _decode(sdm, "frequency", r.registers, 0) == pytest.approx(50, abs=0.2)
            assert _decode(sdm, "import_energy", r.registers, 0) >= 0
            omron = load_register_map("omron_km_n1")
            r = await c.read_holding_registers(0, count=0x14, device_id=3)
            assert not r.isError()
            assert 110 < _decode(omron, "voltage", r.registers, 0) < 121
            assert _decode(omron, "active_power", r.registers, 0) > 0
            suto = load_register_map("suto_s4xx")
            r = await c.read_holding_registers(0, count=10, device_id=7)
            assert not r.isError()
            pressure = _decode(suto, "pressure", r.registers, 0)
            flow = _decode(suto, "flow", r.registers, 0)
            assert 0.45 < pressure < 0.8 and flow > 0
            # wrong table for the model: illegal function; outside the map: illegal address
            r = await c.read_holding_registers(0, count=2, device_id=1)
            assert r.isError() and r.exception_code == 1
            r = await c.read_input_registers(0x0400, count=2, device_id=1)
            assert r.isError() and r.exception_code == 2
            r = await c.read_input_registers(0, count=100, device_id=1)   # SDM630 refuses > 80 registers
            assert r.isError() and r.exception_code == 3
        finally:
            c.close()

    with ModbusSimulator(str(DEMO), port=0) as sim:
        asyncio.run(main(sim.port))


def test_faults_are_visible_over_the_wire():
    faults = [FaultSpec(meter="pm-hvac", kind="timeout"),
              FaultSpec(meter="pm-lighting", kind="exception", exception_code=6),
              FaultSpec(meter="pm-press", kind="garbage"),
              FaultSpec(meter="pm-machining", kind="timeout", delay_s=0.6),
              FaultSpec(meter="pm-compressor", kind="exception", exception_code=4, address=0x34)]

    async def main(port):
        c = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=1.5, retries=0)
        await c.connect()
        sdm = load_register_map("sdm630")
        try:
            t = time.monotonic()
            with pytest.raises(ModbusIOException):
                await c.read_input_registers(0, count=2, device_id=5)
            assert time.monotonic() - t >= 1.4
            r = await c.read_input_registers(0, count=2, device_id=4)
            assert r.isError() and r.exception_code == 6
            r = await c.read_input_registers(0, count=2, device_id=2)
            assert math.isnan(sdm.field("voltage_l1").decode(r.registers))
            t = time.monotonic()
            r = await c.read_holding_registers(0, count=2, device_id=3)
            assert not r.isError() and 0.5 < time.monotonic() - t < 1.4
            # the exception touches one address only: the rest of the meter still reads
            r = await c.read_input_registers(0x34, count=2, device_id=6)
            assert r.isError() and r.exception_code == 4
            r = await c.read_input_registers(0, count=2, device_id=6)
            assert 110 < sdm.field("voltage_l1").decode(r.registers) < 121
            # a unit nobody answers for: silence, as behind a gateway
            with pytest.raises(ModbusIOException):
                await c.read_input_registers(0, count=2, device_id=42)
        finally:
            c.close()

    with ModbusSimulator(str(DEMO), port=0, faults=faults) as sim:
        asyncio.run(main(sim.port))


def _scenario_copy(tmp_path, replace: dict[str, str]) -> Path:
    text = (EXAMPLES_DIR / "demo-scenario.toml").read_text("utf-8")
    for a, b in replace.items():
        assert a in text
        text = text.replace(a, b)
    p = tmp_path / "scenario.toml"
    p.write_text(text, "utf-8")
    return p


@pytest.mark.slow
def test_counters_wrap_at_the_register_limit_and_reset_over_the_wire(tmp_path):
    """OMRON KM-N1 energy in Wh is a uint32: it wraps at 4,294,967.296 kWh like the meter.

    The simulated clock starts at a fixed working-day morning (not the wall clock: the
    machine's load, the time of day and the phase of the simulator's half-hour sample grid
    must not decide what is read), the Wh counter 60 kWh short of its limit; the test reads
    before the wrap (about 3 s of wall time away at x3600), then polls until the kWh register
    is past it, checking that both registers of one read agree."""
    import datetime as dt
    limit_kwh = 2**32 / 1000
    sc = _scenario_copy(tmp_path, {"counter_start_kwh = 96550.0": f"counter_start_kwh = {limit_kwh - 60:.3f}"})
    omron = load_register_map("omron_km_n1")
    start = dt.datetime(2026, 6, 3, 10, 0)               # a Wednesday, 10:00 site time: production
    faults = [FaultSpec(meter="pm-press", kind="reset", start=start + dt.timedelta(hours=4))]

    async def main(port):
        c = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=10, retries=0)
        await c.connect()
        sdm = load_register_map("sdm630")
        try:
            async def read_omron():
                r = await c.read_holding_registers(0x200, count=0x22, device_id=3)
                return (omron.field("energy_wh").decode(r.registers[0:2]),
                        omron.field("energy_kwh").decode(r.registers[0x20:0x22]))

            async def press_energy():
                r = await c.read_input_registers(0x48, count=2, device_id=2)
                return sdm.field("import_energy").decode(r.registers)

            async def poll(read, done, what: str, timeout_s: float = 60):
                for _ in range(int(timeout_s / 0.05)):
                    got = await read()
                    if done(got):
                        return got
                    await asyncio.sleep(0.05)
                raise AssertionError(f"never saw {what} (last: {got})")

            wh0, kwh0 = await read_omron()
            p0 = await press_energy()
            assert 4_294_000 < wh0 < limit_kwh - 1 and abs(wh0 - kwh0) <= 0.5     # one count (kWh rounded), no wrap yet
            assert p0 > 400_000                                                    # before the reset
            wh1, kwh1 = await poll(read_omron, lambda r: r[1] > limit_kwh, "the kWh register past 2^32 Wh")
            assert wh1 < 1000 < kwh1                             # the Wh register wrapped, the kWh one did not
            assert abs(wh1 + limit_kwh - kwh1) <= 0.5            # and they still count the same energy
            p1 = await poll(press_energy, lambda p: p < 100, "the press meter's counter restart")
            assert 0 <= p1 < 100                                 # restarted from zero, counting again
        finally:
            c.close()

    with ModbusSimulator(str(DEMO), port=0, speed=3600, faults=faults, scenario_path=sc, start=start) as sim:
        asyncio.run(main(sim.port))


def test_stuck_meter_repeats_its_value():
    faults = [FaultSpec(meter="pm-main", kind="stuck")]

    async def main(port):
        c = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
        await c.connect()
        try:
            a = await c.read_input_registers(0, count=76, device_id=1)
            await asyncio.sleep(1.5)
            b = await c.read_input_registers(0, count=76, device_id=1)
            assert a.registers == b.registers
            x = await c.read_input_registers(0, count=76, device_id=2)
            await asyncio.sleep(1.5)
            y = await c.read_input_registers(0, count=76, device_id=2)
            assert x.registers != y.registers   # a healthy meter moves (noise, counters)
        finally:
            c.close()

    with ModbusSimulator(str(DEMO), port=0, speed=60, faults=faults) as sim:
        asyncio.run(main(sim.port))


@pytest.mark.skipif(shutil.which("socat") is None, reason="socat (Debian package) not installed")
def test_rtu_over_a_socat_pty_pair(pty_pair):
    from pymodbus.client import AsyncModbusSerialClient
    a, b = pty_pair

    async def main():
        c = AsyncModbusSerialClient(str(b), baudrate=19200, timeout=1, retries=0)
        await c.connect()
        try:
            r = await c.read_input_registers(0, count=2, device_id=1)
            assert 110 < load_register_map("sdm630").field("voltage_l1").decode(r.registers) < 121
            r = await c.read_holding_registers(2, count=2, device_id=7)
            assert 0.45 < load_register_map("suto_s4xx").field("pressure").decode(r.registers) < 0.8
        finally:
            c.close()

    with ModbusSimulator(str(DEMO), serial_port=str(a), baudrate=19200):
        asyncio.run(main())


def test_unknown_unit_can_answer_gateway_exception():
    async def main(port):
        c = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=1.5, retries=0)
        await c.connect()
        try:
            r = await c.read_input_registers(0, count=2, device_id=42)
            assert r.isError() and r.exception_code == 0x0B
            r = await c.read_input_registers(0, count=2, device_id=1)
            assert not r.isError()
        finally:
            c.close()

    with ModbusSimulator(str(DEMO), port=0, unknown_unit="exception") as sim:
        asyncio.run(main(sim.port))
