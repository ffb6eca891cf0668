"""Energy counters over the wire: a uint32 Wh register that wraps, then resets (also while
the collector is down) -> raw readings kept, continuous counter never steps down."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from helpers.collect import collect_until
from mieruka.collector.counters import step_kind
from mieruka.collector.runner import CollectorOptions, Runner
from mieruka.models import Quality
from mieruka.site import parse_site
from mieruka.store.embedded import EmbeddedStore

ENERGY_WH = 0x200            # omron_km_n1 `energy_wh`: uint32 Wh, high word first, scale 0.001 -> kWh


def test_step_kinds():
    m = 2.0 ** 32 * 0.001
    assert step_kind(10.0, 12.0, m) == "up"
    assert step_kind(m - 0.2, 0.1, m) == "wrap"            # 0.3 kWh across the modulus
    assert step_kind(3000.0, 5.0, m) == "reset"            # far from the modulus
    assert step_kind(12.5, 12.4, None) == "reset"          # float counters cannot wrap


def site(port: int, data_dir) -> object:
    return parse_site({
        "site": {"name": "counter test", "data_dir": str(data_dir)},
        "meters": [{"id": "km", "model": "omron_km_n1", "host": "127.0.0.1", "port": port, "unit_id": 1,
                    "poll_interval_s": 0.2, "timeout_s": 5.0,     # a loaded machine is slow, not the meter
                    "channels": [{"id": "e", "register": "energy_wh", "quantity": "energy_kwh"}]}]})


class CounterMeter:
    """A pymodbus server whose energy register walks through a script, one step per read."""

    def __init__(self, script_wh: list[int]) -> None:
        self.script, self.i = script_wh, 0

    async def action(self, fc, start, address, count, registers, values):
        if address <= ENERGY_WH < address + count:
            raw = self.script[min(self.i, len(self.script) - 1)]
            self.i += 1
            registers[ENERGY_WH - start] = raw >> 16
            registers[ENERGY_WH + 1 - start] = raw & 0xFFFF
        return None

    async def serve(self, port: int) -> ModbusTcpServer:
        dev = SimDevice(id=1, simdata=[SimData(1, count=0x300, values=0, datatype=DataType.REGISTERS)],
                        action=self.action)
        srv = ModbusTcpServer([dev], address=("127.0.0.1", port))
        assert await srv.listen()
        return srv


async def run_once(cfg, meter: CounterMeter, port: int, seconds: float):
    srv = await meter.serve(port)
    try:
        runner = Runner(cfg, options=CollectorOptions(flush_interval_s=0.2, metrics_port=0))
        # at least `seconds`, and until the meter has been read past the end of its script
        await collect_until(runner, lambda r: meter.i > len(meter.script), min_s=seconds)
    finally:
        await srv.shutdown()
    return runner


@pytest.mark.slow
def test_wrap_and_resets_give_a_continuous_counter_across_restarts(port, data_dir):
    cfg = site(port, data_dir)
    first = [4294967000, 4294967200, 100, 300, 5, 50]          # wrap after 200, reset after 300
    asyncio.run(run_once(cfg, CounterMeter(first), port, 2.2))
    # while the collector was down the meter was replaced: its counter starts again low
    second = [20, 40, 60]
    runner = asyncio.run(run_once(cfg, CounterMeter(second), port, 1.2))
    s = EmbeddedStore.from_site(cfg, readonly=True)
    t, raw, q = s.read_quality("e")
    assert (q == Quality.OK).all()
    raw_wh = np.round(raw * 1000).astype(np.int64)
    seq = raw_wh[np.r_[True, raw_wh[1:] != raw_wh[:-1]]].tolist()
    assert seq == first + second                               # raw counter kept exactly as read
    _, cont = s.read_continuous("e")
    steps = np.diff(cont)
    assert (steps >= -1e-9).all()
    # consumption = 200 Wh + 196 Wh (96 to the wrap, 100 after) + 200 + 5 (reset: from 0) + 45 + 20 (reset while down) + 40
    assert cont[-1] - cont[0] == pytest.approx((200 + 196 + 200 + 5 + 45 + 20 + 40) / 1000, abs=1e-6)
    ot, off = s.counter_offsets("e")
    assert len(ot) == 3 and off[0] == pytest.approx(2 ** 32 / 1000)
    assert runner.tracker.state["e"].resets == 1               # the second run saw the restart reset
