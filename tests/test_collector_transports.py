"""Transports and fussy devices (issue 13): RTU framing over a TCP socket (what
transparent RS-485/Ethernet converters speak), a quiet pause before each request,
a pause after connecting, and closing the connection after every poll; all against
the simulator serving RTU frames over TCP."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest

from helpers.collect import polled, run_collector
from mieruka.collector.runner import CollectorOptions, Runner
from mieruka.models import Quality
from mieruka.simulators.modbus_server import ModbusSimulator
from mieruka.site import parse_site
from mieruka.store.embedded import EmbeddedStore


def site(port: int, data_dir, protocol: str, **meter) -> object:
    extra = "".join(f"{k} = {str(v).lower() if isinstance(v, bool) else v}\n" for k, v in meter.items())
    import tomllib
    text = f"""
[site]
name = "converter test"
data_dir = "{data_dir}"
[[meters]]
id = "pm1"
protocol = "{protocol}"
model = "sdm630"
host = "127.0.0.1"
port = {port}
unit_id = 3
timeout_s = 0.5
retries = 0
{extra}
[[meters.channels]]
id = "p1"
quantity = "power_kw"
register = "total_power"
[[meters.channels]]
id = "v1"
quantity = "voltage_v"
register = "voltage_l1"
[[meters.channels]]
id = "f1"
quantity = "frequency_hz"
register = "frequency"
[[meters.channels]]
id = "e1"
quantity = "energy_kwh"
register = "import_energy"
"""
    return parse_site(tomllib.loads(text), "<test>")


def run(cfg, seconds: float, until=polled(2), **opts) -> Runner:
    """At least `seconds` of collection, and on until `until` (2 answered polls of every meter)."""
    runner = Runner(cfg, options=CollectorOptions(metrics_port=0, **opts))
    run_collector(runner, until, min_s=seconds)
    return runner


@pytest.mark.slow
def test_rtu_over_tcp_reads_every_channel_and_modbus_tcp_framing_does_not(port, data_dir):
    cfg = site(port, data_dir, "rtu_over_tcp")
    with ModbusSimulator(cfg, port=port, rtu_over_tcp=True) as sim:
        runner = run(cfg, 2.6)
        assert sim.handle.gateway.connections == 1             # one connection kept open across polls
    s = EmbeddedStore.from_site(cfg, readonly=True)
    t, v, q = s.read_quality("v1")
    assert len(t) >= 2 and (q == Quality.OK).all()
    assert ((v > 80) & (v < 300)).all()
    f = s.read("f1")[1]
    assert ((f > 45) & (f < 65)).all()
    assert runner.device_stats()["pm1"].ok_polls >= 2
    s.close()
    # the same server read with MBAP framing gets nothing usable: the framing is really RTU
    cfg2 = site(port, data_dir.parent / "other", "modbus_tcp")
    with ModbusSimulator(cfg2, port=port, rtu_over_tcp=True):
        runner = run(cfg2, 1.6, until=polled(1, ok=False))
    st = runner.device_stats()["pm1"]
    assert st.ok_polls == 0 and st.polls >= 1


@pytest.mark.slow
def test_pauses_and_close_after_poll(port, data_dir):
    cfg = site(port, data_dir, "rtu_over_tcp", pause_between_requests_ms=150, pause_after_connect_ms=100,
               close_after_poll=True, poll_interval_s=1)
    with ModbusSimulator(cfg, port=port, rtu_over_tcp=True) as sim:
        # one request per field: 4 requests, 3 pauses of 150 ms between them, 100 ms after connecting
        runner = run(cfg, 3.6, request_per_field=["pm1"])
        conns = sim.handle.gateway.connections
    st = runner.device_stats()["pm1"]
    assert st.ok_polls >= 2
    assert 4 * st.polls <= st.requests <= 4 * (st.polls + 1)    # (+ a poll the end of the run cut before it was counted)
    assert st.last_latency_s >= 0.1 + 3 * 0.15 - 0.02
    assert st.polls <= conns <= st.polls + 1                   # a fresh connection for every poll
    s = EmbeddedStore.from_site(cfg, readonly=True)
    t, _, q = s.read_quality("p1")
    assert (q == Quality.OK).all()
    ti = t.astype(np.int64)
    assert (ti % 1000 == 0).all() and (np.diff(ti) > 0).all()  # still on the one-second grid


def test_transport_settings_are_validated(tmp_path):
    from mieruka.errors import ConfigError
    with pytest.raises(ConfigError, match=r"meters\[0:pm1\]\.pause_between_requests_ms"):
        site(502, tmp_path, "rtu_over_tcp", pause_between_requests_ms=-5)
    with pytest.raises(ConfigError, match=r"meters\[0:pm1\]\.protocol"):
        site(502, tmp_path, "rtu_over_udp")


@pytest.mark.slow
def test_rtu_over_tcp_sample_config_collects(port, data_dir):
    from pathlib import Path

    from mieruka.site import load_site
    sample = Path(__file__).resolve().parent.parent / "config/examples/rtu-over-tcp.toml"
    cfg = load_site(sample,
                    env={"MIERUKA_CONVERTER_PORT": str(port), "MIERUKA_DATA_DIR": str(data_dir)})
    assert {m.protocol for m in cfg.meters} == {"rtu_over_tcp"}
    with ModbusSimulator(cfg, port=port, rtu_over_tcp=True):
        runner = run(cfg, 5.5, until=polled(1))
    assert list(runner.inputs[0].connections) == [f"rtu:127.0.0.1:{port}"]     # one line, one connection
    s = EmbeddedStore.from_site(cfg, readonly=True)
    for ch in ("press_power", "weld_power", "weld_voltage"):
        t, v, q = s.read_quality(ch)
        assert len(t) >= 1 and (q == Quality.OK).all(), (ch, q)


@pytest.mark.slow
@pytest.mark.skipif(__import__("shutil").which("socat") is None, reason="socat (Debian package) not installed")
def test_rtu_over_tcp_through_socat_as_a_transparent_converter(port, data_dir, tmp_path):
    """The simulator serves RTU on a serial pty; socat bridges that pty to a TCP port,
    byte for byte, as a transparent RS-485/Ethernet converter does; the collector
    speaks RTU over TCP to socat."""
    import subprocess
    import time
    tty = tmp_path / "ttyS"
    bridge = subprocess.Popen(["socat", f"pty,raw,echo=0,link={tty}",
                               f"tcp-listen:{port},bind=127.0.0.1,reuseaddr"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if tty.exists():
                break
            time.sleep(0.05)
        cfg = site(port, data_dir, "rtu_over_tcp", pause_after_connect_ms=50)
        with ModbusSimulator(cfg, serial_port=str(tty), baudrate=19200):
            runner = run(cfg, 2.6)
    finally:
        bridge.terminate()
        bridge.wait(5)
    assert runner.device_stats()["pm1"].ok_polls >= 2
    s = EmbeddedStore.from_site(cfg, readonly=True)
    v = s.read("v1")[1]
    assert len(v) >= 2 and ((v > 80) & (v < 300)).all()
