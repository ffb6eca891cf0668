"""`mieruka collect` as a real process: kill -9 loses nothing committed and corrupts nothing;
SIGTERM stops it cleanly with everything it held written; `mieruka export` round trip."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from helpers.demo import DEMO_SITE, demo_site
from helpers.proc import Process, start
from mieruka.errors import ConfigError
from mieruka.models import Quality
from mieruka.recording import read_recording
from mieruka.simulators.modbus_server import ModbusSimulator
from mieruka.store.embedded import EmbeddedStore


def start_collect(port, data_dir, *extra) -> Process:
    env = dict(os.environ, MIERUKA_MODBUS_PORT=str(port), MIERUKA_DATA_DIR=str(data_dir))
    return start([sys.executable, "-m", "mieruka.cli", "collect", "--config", DEMO_SITE, *extra],
                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def snapshot(cfg) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    s = EmbeddedStore.from_site(cfg, readonly=True)
    try:
        return {c.id: s.read_quality(c.id)[:2] for c in s.channels()}
    finally:
        s.close()


def wait_for_rows(cfg, n: int, timeout_s: float = 60) -> None:
    end = time.time() + timeout_s
    while time.time() < end:
        try:
            if sum(len(t) for t, _ in snapshot(cfg).values()) >= n:
                return
        except ConfigError:          # not created yet, or its schema not committed yet
            pass
        time.sleep(0.2)
    raise AssertionError(f"fewer than {n} readings after {timeout_s} s")


@pytest.mark.slow
def test_kill_9_loses_no_committed_batch(port, data_dir):
    cfg = demo_site(port, data_dir)
    with ModbusSimulator(cfg, port=port):
        for cycle in range(2):
            p = start_collect(port, data_dir)
            try:
                wait_for_rows(cfg, 13 * 2 * (cycle + 1))
                time.sleep(0.37 * (cycle + 1))                 # somewhere inside a flush cycle
                before = snapshot(cfg)                          # what was committed, read by another process
                p.kill()                                        # SIGKILL: no goodbye
            finally:
                p.stop()
            after = snapshot(cfg)
            for ch, (t, v) in before.items():
                t2, v2 = after[ch]
                idx = np.searchsorted(t2, t)
                assert len(t2) >= len(t) and (t2[idx] == t).all(), ch     # every committed reading is still there
                np.testing.assert_array_equal(v2[idx], v)
    s = EmbeddedStore.from_site(cfg)        # the writer opens it again: no recovery errors, no corruption
    assert s.integrity_check() == "ok"
    assert len(s.read("main_power")[0]) >= 4
    s.close()


@pytest.mark.slow
def test_sigterm_flushes_and_summarises_then_export_round_trips(port, data_dir, tmp_path):
    cfg = demo_site(port, data_dir)
    with ModbusSimulator(cfg, port=port):
        p = start_collect(port, data_dir)
        try:
            wait_for_rows(cfg, 13 * 2)
            time.sleep(0.5)
            p.proc.send_signal(signal.SIGTERM)
            out, err = p.proc.communicate(timeout=60)
            rc = p.proc.returncode
        finally:
            p.stop()
    assert rc == 0, err
    m = re.search(r"collected (\d+) readings", out)
    assert m, out
    snap = snapshot(cfg)
    assert sum(len(t) for t, _ in snap.values()) == int(m.group(1))   # everything it held was committed
    assert "main_power" in out and "air_volume" in out

    env = dict(os.environ, MIERUKA_MODBUS_PORT=str(port), MIERUKA_DATA_DIR=str(data_dir))
    out_csv = tmp_path / "export.csv"
    r = subprocess.run([sys.executable, "-m", "mieruka.cli", "export", "--config", str(DEMO_SITE), "-o", str(out_csv)],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "+09:00," in out_csv.read_text().splitlines()[1]              # site time zone offsets
    rec = read_recording(out_csv)
    assert set(rec.channels) == set(snap)
    for ch, (t, v) in snap.items():
        c = rec.channels[ch]
        np.testing.assert_array_equal(c.time, t)
        np.testing.assert_allclose(c.value, v, rtol=1e-12)
        assert (c.quality == Quality.OK).all()
    assert rec.channels["air_volume"].info.quantity == "air_volume_m3"
    assert rec.channels["air_flow"].info.system == "air1"
    # a window in site time without an offset, and a bad time named clearly
    t_mid = rec.channels["main_power"].time[1]
    local = (t_mid + np.timedelta64(9, "h")).astype("datetime64[s]").item().isoformat()
    r = subprocess.run([sys.executable, "-m", "mieruka.cli", "export", "--config", str(DEMO_SITE), "--start", local],
                       env=env, capture_output=True, text=True, timeout=60)
    rows = [ln for ln in r.stdout.splitlines()[1:] if ",main_power," in ln]
    assert len(rows) == len(rec.channels["main_power"].time) - 1
    r = subprocess.run([sys.executable, "-m", "mieruka.cli", "export", "--config", str(DEMO_SITE), "--end", "yesterday"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--start/--end" in r.stderr and "Traceback" not in r.stderr
