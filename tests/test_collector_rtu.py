"""Modbus RTU over a real serial link: a socat pty pair, the simulator serving RTU on one
end, the collector (config/examples/modbus-rtu.toml) polling three meters on the other."""
from __future__ import annotations

import asyncio
import shutil

import numpy as np
import pytest

from helpers.demo import REPO
from mieruka.collector.runner import CollectorOptions, Runner
from mieruka.models import Quality
from mieruka.simulators.modbus_server import ModbusSimulator
from helpers.collect import polled, run_collector
from mieruka.site import load_site
from mieruka.store.embedded import EmbeddedStore

pytestmark = pytest.mark.skipif(shutil.which("socat") is None, reason="socat (Debian package) not installed")


@pytest.mark.slow
def test_rtu_meters_on_one_line(pty_pair, data_dir):
    server_end, collector_end = pty_pair
    cfg = load_site(REPO / "config/examples/modbus-rtu.toml",
                    env={"MIERUKA_SERIAL_PORT": collector_end, "MIERUKA_DATA_DIR": str(data_dir)})
    with ModbusSimulator(cfg, serial_port=server_end, baudrate=19200):
        runner = Runner(cfg, options=CollectorOptions(metrics_port=0))
        run_collector(runner, polled(2), min_s=4.5)
    s = EmbeddedStore.from_site(cfg, readonly=True)
    for ch, step_ms in (("line1_power", 1000), ("line1_voltage", 1000), ("line2_power", 1000),
                        ("air_flow", 2000), ("air_volume", 2000)):
        t, v, q = s.read_quality(ch)
        assert len(t) >= 2, ch
        assert (q == Quality.OK).all(), (ch, q)
        assert (t.astype(np.int64) % step_ms == 0).all(), ch          # on each meter's own grid
    v = s.read("line1_voltage")[1]
    assert ((v > 80) & (v < 300)).all()
    assert runner.inputs[0].connections.keys() == {collector_end}      # one shared line, one client
    # pm-line1 reads voltage..power in one request (fill_holes = 20), energy in a second
    m = next(d for d in runner.inputs[0].devices if d.meter.id == "pm-line1")
    assert len(m.plan) == 2
