"""Retention counts back from the gateway's clock, never from the newest reading stored:
one reading stamped years ahead (a wrong meter or gateway clock, an import) made the
collector's first retention round delete the whole history."""
from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from helpers.demo import demo_site
from mieruka.collector.runner import Runner
from mieruka.models import ReadingBatch
from mieruka.simulators.modbus_server import ModbusSimulator
from mieruka.store.embedded import EmbeddedStore


@pytest.mark.slow
def test_a_far_future_reading_in_the_store_does_not_make_retention_delete_history(port, data_dir):
    cfg = demo_site(port, data_dir, lambda t: t.replace("retention_days = 0", "retention_days = 30"))
    now_ms = int(time.time() * 1000)
    day = 86_400_000
    t = np.array([now_ms - 40 * day, now_ms - 5 * day, now_ms - day, 4_102_444_800_000], np.int64)   # .. 2100
    s = EmbeddedStore.from_site(cfg)
    s.write(ReadingBatch(t.astype("datetime64[ms]"), np.array(["history"] * 4, object), np.arange(4.0),
                         np.zeros(4, np.uint8)))
    s.close()
    with ModbusSimulator(cfg, port=port):
        asyncio.run(Runner(cfg).run(duration_s=1.5))
    s = EmbeddedStore.from_site(cfg, readonly=True)
    try:
        kept = s.read_quality("history")[0].astype(np.int64).tolist()
        assert len(s.read("main_power")[0]) >= 1                   # the collector ran
    finally:
        s.close()
    assert kept == t[1:].tolist()          # 40 days old: gone; the last 30 days: kept


def test_retention_waits_a_day_after_the_clock_stepped_forward(port, data_dir):
    cfg = demo_site(port, data_dir)
    r = Runner(cfg)
    assert r._retention_now() is not None
    wall, mono = r._retention_ref
    r._retention_ref = (wall - 3600, mono)          # as if the wall clock jumped an hour since the last round
    assert r._retention_now() is None
    assert r._retention_now() is None               # and stays held (a day)
