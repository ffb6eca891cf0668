"""The gateway's clock steps (NTP setting it after a power cut, someone running `date -s`):
a real `mieruka collect` under libfaketime (Debian `faketime`), its wall clock moved by a
file while its monotonic clock runs on."""
from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from helpers.demo import DEMO_SITE, demo_site
from helpers.proc import start
from mieruka.errors import ConfigError
from mieruka.simulators.modbus_server import ModbusSimulator
from mieruka.store.embedded import EmbeddedStore

FAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


def times(cfg, channel: str) -> np.ndarray:
    try:
        s = EmbeddedStore.from_site(cfg, readonly=True)
    except ConfigError:            # not created yet
        return np.empty(0, np.int64)
    try:
        return s.read_quality(channel)[0].astype(np.int64)
    finally:
        s.close()


def wait(cond, timeout_s: float, what: str):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout_s} s: {what}")


@pytest.mark.slow
def test_a_clock_stepping_back_an_hour_then_forward_again_never_stops_polling(port, data_dir, tmp_path):
    """Before: the poll grid waited for the old clock's next slot, so a step back of an hour
    left every meter unpolled for an hour; a step forward counted the hour as missed slots."""
    assert FAKETIME.exists(), "apt-get install faketime (deploy/apt-packages.txt)"
    cfg = demo_site(port, data_dir)
    offset = tmp_path / "faketime"
    offset.write_text("+0\n")
    env = dict(os.environ, MIERUKA_MODBUS_PORT=str(port), MIERUKA_DATA_DIR=str(data_dir),
               LD_PRELOAD=str(FAKETIME), FAKETIME_TIMESTAMP_FILE=str(offset), FAKETIME_NO_CACHE="1",
               FAKETIME_DONT_FAKE_MONOTONIC="1")
    with ModbusSimulator(cfg, port=port):
        log = tmp_path / "collect.log"
        p = start([sys.executable, "-m", "mieruka.cli", "collect", "--config", DEMO_SITE, "--quiet"],
                  env=env, log=log)
        try:
            wait(lambda: len(times(cfg, "main_power")) >= 1, 60, "first readings")
            hour_ago_ms = (time.time() - 3600) * 1000
            offset.write_text("-3600\n")
            # polled on the new clock within seconds: readings stamped an hour back
            wait(lambda: (np.abs(times(cfg, "main_power") - hour_ago_ms) < 600_000).sum() >= 1, 30,
                 "readings on the clock set back an hour")
            offset.write_text("+0\n")
            now_ms = time.time() * 1000
            wait(lambda: (times(cfg, "main_power") > now_ms).sum() >= 1, 30, "readings on the clock set forward")
            status = data_dir / "collector-status.json"
            snap = wait(lambda: (lambda d: d if any(x["clock_steps"] >= 2 for x in d["devices"]) else None)(
                json.loads(status.read_text())), 30, "clock steps in the status file")
            for dev in snap["devices"]:
                assert dev["missed_slots"] < 60, dev      # the hour jumped over was never due
        finally:
            p.proc.send_signal(signal.SIGTERM)
            rc = p.proc.wait(60)
            p.stop()
    err = log.read_text()
    assert rc == 0, err[-2000:]
    assert "system clock stepped back by 3600 s" in err and "system clock stepped forward by 3600 s" in err
    assert "Traceback" not in err
    assert "meter_offline" not in err          # a clock step is not an hour of silence (alarms)


def test_a_heartbeat_ahead_of_the_clock_that_is_not_rewritten_is_stale():
    """Before: after the clock went back an hour, a hung collector's last heartbeat (an hour
    'ahead') counted as 0 s old: `running` for an hour."""
    from zoneinfo import ZoneInfo

    from mieruka.service.collector_status import collector_state
    snap = {"time": 1_780_000_000.0, "pid": 4242, "interval_s": 2.0, "started": 1_779_990_000.0}
    st = collector_state(snap, ZoneInfo("Asia/Tokyo"), now=snap["time"] - 3600, pid_check=lambda pid: "alive")
    assert st["state"] == "stale" and not st["running"]
    assert "ahead of this clock by 3600 s (the system clock went back?)" in st["words"]
    st = collector_state(snap, ZoneInfo("Asia/Tokyo"), now=snap["time"] - 1, pid_check=lambda pid: "alive")
    assert st["state"] == "running"


def test_a_clock_step_forward_is_not_an_hour_of_meter_silence(tmp_path):
    """Before: right after the clock stepped an hour forward, every meter's last good poll
    looked an hour old: one meter_offline alarm per meter, then one meter_back each."""
    import textwrap
    import tomllib
    from types import SimpleNamespace

    from mieruka.collector.alarms import AlarmWatch
    from mieruka.site import parse_site
    cfg = parse_site(tomllib.loads(textwrap.dedent(f"""
        [site]
        name = "t"
        data_dir = "{tmp_path}"
        """)), str(tmp_path / "site.toml"))
    now = time.time()
    meters = {"pm-1": SimpleNamespace(last_success=now - 1, problem=None)}
    events = []
    watch = AlarmWatch(events.append, cfg.alarms, devices=lambda: meters)
    watch.check(now)
    watch._skew -= 3600          # the wall clock now stands an hour further from the monotonic clock
    watch.check(now + 3600)      # the first check on the new clock, before the next poll
    assert [e.event for e in events] == []
    meters["pm-1"].last_success = now + 3600.5
    watch.check(now + 3600 + cfg.alarms.offline_after_s + 5)     # a meter that stops after the step
    assert [e.event for e in events] == ["meter_offline"]
