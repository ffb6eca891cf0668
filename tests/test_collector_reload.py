"""SIGHUP reload of a real `mieruka collect` process polling the simulator: meters
added, removed and changed apply; every reading of the meters that stay is there
exactly once across the reload (the slot grid has no hole and nothing is written
twice); a broken new config is refused with the error logged and the old one keeps
running."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from helpers.collect import polled
from mieruka.simulators.modbus_server import ModbusSimulator
from mieruka.site import load_site
from mieruka.store.embedded import EmbeddedStore

METER = """
[[meters]]
id = "{id}"
model = "{model}"
port = {port}
unit_id = {unit}
timeout_s = 2.0
{channels}
"""
CHANNEL = """
[[meters.channels]]
id = "{id}"
quantity = "{quantity}"
register = "{register}"
"""


def write_site(path, data_dir, port, meters) -> None:
    """meters: (id, unit, model, [(channel, quantity, register), ...])"""
    text = f'[site]\nname = "reload test"\ndata_dir = "{data_dir}"\n[collector]\nmetrics_port = 0\n'
    for mid, unit, model, chans in meters:
        text += METER.format(id=mid, model=model, port=port, unit=unit, channels="".join(
            CHANNEL.format(id=c, quantity=q, register=r) for c, q, r in chans))
    path.write_text(text, "utf-8")


A = ("pm-a", 1, "sdm630", [("a_power", "power_kw", "total_power"), ("a_energy", "energy_kwh", "import_energy")])
A2 = ("pm-a", 1, "sdm630", A[3] + [("a_voltage", "voltage_v", "voltage_l1")])            # a channel added
B = ("pm-b", 2, "sdm630", [("b_power", "power_kw", "total_power")])
C = ("pm-c", 3, "omron_km_n1", [("c_power", "power_kw", "active_power")])


def wait_for(pred, timeout_s: float, what: str) -> None:
    end = time.time() + timeout_s
    while time.time() < end:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def count_rows(cfg, channel: str) -> int:
    try:
        s = EmbeddedStore.from_site(cfg, readonly=True)
    except Exception:
        return 0
    try:
        return len(s.read_quality(channel)[0]) if channel in {c.id for c in s.channels()} else 0
    finally:
        s.close()


@pytest.mark.slow
def test_sighup_reload_keeps_every_reading_once(port, tmp_path):
    data_dir = tmp_path / "data"
    site = tmp_path / "site.toml"
    sim_site = tmp_path / "sim.toml"
    write_site(sim_site, tmp_path / "simdata", port, [A2, B, C])          # the factory: three meters
    write_site(site, data_dir, port, [A, B])
    cfg = load_site(site)
    with ModbusSimulator(load_site(sim_site), port=port):
        p = subprocess.Popen([sys.executable, "-m", "mieruka.cli", "collect", "--config", str(site)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
        try:
            wait_for(lambda: count_rows(cfg, "b_power") >= 2, 60, "first readings")
            # reload 1: pm-b removed, pm-c added, pm-a gains a channel
            write_site(site, data_dir, port, [A2, C])
            p.send_signal(signal.SIGHUP)
            wait_for(lambda: count_rows(cfg, "c_power") >= 2, 60, "the added meter's readings")
            # reload 2: a broken config (unknown register map) is refused; the old one keeps running
            write_site(site, data_dir, port, [A2, ("pm-c", 3, "no_such_map", C[3])])
            n_before = count_rows(cfg, "c_power")
            p.send_signal(signal.SIGHUP)
            wait_for(lambda: count_rows(cfg, "c_power") >= n_before + 2, 60, "readings after the refused reload")
            # reload 3: not even TOML
            site.write_text("[site\nname = ", "utf-8")
            n_before = count_rows(cfg, "c_power")
            p.send_signal(signal.SIGHUP)
            wait_for(lambda: count_rows(cfg, "c_power") >= n_before + 2, 60, "readings after the second refusal")
            p.send_signal(signal.SIGTERM)
            out, err = p.communicate(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
    assert p.returncode == 0, err
    assert "reload refused" in err and "no_such_map" in err
    assert re.search(r"reload refused.*site\.toml: invalid TOML", err), err
    assert "Traceback" not in err
    assert re.search(r"reloaded .*site\.toml: 2 meters \(pm-c added, pm-b removed\)", err), err
    s = EmbeddedStore.from_site(cfg, readonly=True)
    t, v, q = s.read_quality("a_power")
    ti = t.astype(np.int64)
    assert len(ti) >= 6
    assert (np.diff(ti) == 1000).all(), np.diff(ti)         # no slot lost across two reloads
    assert (q == 0).all()
    # ... and none doubled: the collector's own count of readings written per channel
    # (its summary) equals what the store holds
    written = {m.group(1): int(m.group(2)) for m in re.finditer(r"│ (\w+)\s+│ (\d+)\s+│", out)}
    for ch in ("a_power", "a_energy", "b_power", "c_power", "a_voltage"):
        assert ch in written, out
        assert written[ch] == len(s.read_quality(ch)[0]), (ch, written[ch])
    tb = s.read_quality("b_power")[0].astype(np.int64)
    tv = s.read_quality("a_voltage")[0].astype(np.int64)
    assert tb[-1] < tv[0] + 2000                           # pm-b stopped about when the new channel started
    assert len(s.read_quality("c_power")[0]) >= 4
    assert (np.diff(s.read_continuous("a_energy")[1]) >= 0).all()
    s.close()


@pytest.mark.slow
def test_reload_in_process_refuses_a_moved_store_and_applies_a_new_meter(port, tmp_path, caplog):
    from mieruka.collector.runner import CollectorOptions, Runner
    data_dir = tmp_path / "data"
    write_site(tmp_path / "sim.toml", tmp_path / "simdata", port, [A, B])
    write_site(tmp_path / "one.toml", data_dir, port, [A])
    write_site(tmp_path / "two.toml", data_dir, port, [A, B])
    write_site(tmp_path / "moved.toml", tmp_path / "elsewhere", port, [A, B])
    one = load_site(tmp_path / "one.toml")
    runner = Runner(one, options=CollectorOptions(metrics_port=0))

    async def scenario():
        assert not await runner.reload(load_site(tmp_path / "two.toml"))       # not running yet: ignored
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop=stop))
        await asyncio.sleep(1.0)
        await until(polled(1, "pm-a"), "the first poll")
        assert not await runner.reload(load_site(tmp_path / "moved.toml"))     # the store cannot move
        assert await runner.reload(load_site(tmp_path / "two.toml"))
        await asyncio.sleep(2.6)
        await until(polled(2, "pm-b"), "two polls of the added meter")
        stop.set()
        return await task

    async def until(cond, what: str) -> None:
        for _ in range(600):                   # up to 60 s on a loaded machine
            if cond(runner):
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}")

    import asyncio
    with ModbusSimulator(load_site(tmp_path / "sim.toml"), port=port):
        with caplog.at_level("ERROR", logger="mieruka"):
            asyncio.run(scenario())
    assert "cannot change on reload" in caplog.text
    assert runner.reloads == 1 and {d for d in runner.device_stats()} == {"pm-a", "pm-b"}
    s = EmbeddedStore.from_site(one, readonly=True)
    assert len(s.read("b_power")[0]) >= 2
    t = s.read_quality("a_power")[0].astype(np.int64)
    assert (np.diff(t) == 1000).all()
    s.close()


@pytest.mark.slow
def test_reload_keeps_the_mqtt_input_unless_mqtt_changed(tmp_path):
    import asyncio
    import json
    import tomllib

    from helpers.servers import Mosquitto
    from mieruka.collector.runner import CollectorOptions, Runner
    from mieruka.site import parse_site

    def cfg(client_id: str):
        text = (f'[site]\nname = "mqtt reload"\ndata_dir = "{tmp_path / "data"}"\n[mqtt]\n[[mqtt.brokers]]\n'
                f'url = "{mq.url}"\nclient_id = "{client_id}"\nreconnect_min_s = 1\nreconnect_max_s = 1\n'
                f'[[mqtt.subscriptions]]\ntopic = "+/events/rpc"\ndecoder = "shelly"\n')
        return parse_site(tomllib.loads(text), str(tmp_path / "site.toml"))

    def frames(first: int, n: int) -> list[str]:
        return [json.dumps({"method": "NotifyStatus", "params": {"ts": 1_780_000_000 + i,
                                                                 "em:0": {"total_act_power": 100.0 + i}}})
                for i in range(first, first + n)]

    async def until(cond, what: str, timeout_s: float = 60.0) -> None:
        for _ in range(int(timeout_s / 0.05)):
            if cond():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")

    mq = Mosquitto(tmp_path).start()
    try:
        runner = Runner(cfg("reload-a"), options=CollectorOptions(metrics_port=0))

        async def main():
            task = asyncio.create_task(runner.run(duration_s=20))
            await until(lambda: runner.pipeline is not None and runner.inputs[0].brokers["default"].subscribed,
                        "the first subscription")
            await asyncio.to_thread(mq.pub, "pro3em-1/events/rpc", frames(0, 3))
            await until(lambda: runner.stats.written >= 3, "the first messages")
            first = runner.inputs[0]
            assert await runner.reload(cfg("reload-a"))          # [mqtt] unchanged: the input keeps running
            assert runner.inputs[0] is first
            assert await runner.reload(cfg("reload-b"))          # changed: a new input, connected anew
            second = runner.inputs[0]
            assert second is not first
            await until(lambda: second.brokers["default"].subscribed, "the second subscription")
            written = runner.stats.written
            await asyncio.to_thread(mq.pub, "pro3em-1/events/rpc", frames(3, 3))
            await until(lambda: runner.stats.written >= written + 3, "messages after the reload")
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

        asyncio.run(main())
    finally:
        mq.stop()
    s = EmbeddedStore.from_site(cfg("x"), readonly=True)
    times = {int(t) for c in s.channels() for t in s.read_quality(c.id)[0].astype(np.int64)}
    s.close()
    assert len(times) == 6                                   # every message once, across both inputs
