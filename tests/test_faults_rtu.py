"""A slow meter on a shared RTU line (socat pty pair): its late answers must not be taken
for the answers to the next requests (RTU frames carry no transaction id)."""
from __future__ import annotations

import asyncio
import shutil

import numpy as np
import pytest

from helpers.demo import REPO
from mieruka.collector.runner import CollectorOptions, Runner
from mieruka.models import Quality
from mieruka.simulators.modbus_server import ModbusSimulator
from mieruka.simulators.scenario import FaultSpec
from mieruka.site import load_site
from mieruka.store.embedded import EmbeddedStore

pytestmark = pytest.mark.skipif(shutil.which("socat") is None, reason="socat (Debian package) not installed")


@pytest.mark.slow
def test_a_meter_answering_after_its_timeout_never_feeds_the_next_request(pty_pair, data_dir):
    """Before: pm-line1 answering 0.7 s late (timeout 0.5 s) had its late frame taken as the
    answer to its next block ('asked 22 registers at 52, got 2'); a block of the same size
    would have taken another block's values without a word."""
    server_end, collector_end = pty_pair
    cfg = load_site(REPO / "config/examples/modbus-rtu.toml",
                    env={"MIERUKA_SERIAL_PORT": collector_end, "MIERUKA_DATA_DIR": str(data_dir)})
    slow = FaultSpec(meter="pm-line1", kind="timeout", delay_s=0.7)
    with ModbusSimulator(cfg, serial_port=server_end, baudrate=19200, faults=[slow]):
        runner = Runner(cfg, options=CollectorOptions())
        asyncio.run(runner.run(duration_s=6))
    line1 = next(d for d in runner.inputs[0].devices if d.meter.id == "pm-line1")
    assert not any("got" in str(k) for k in line1.stats.errors), line1.stats.errors
    s = EmbeddedStore.from_site(cfg, readonly=True)
    try:
        for ch in ("line1_power", "line1_energy"):
            q = s.read_quality(ch)[2]
            assert len(q) >= 2 and Quality.ERROR not in q.tolist(), (ch, q)      # timeouts, said as such
        t, v, q = s.read_quality("line2_power")
        assert len(t) >= 3 and (q == Quality.OK).all()                            # the neighbour unharmed
    finally:
        s.close()
