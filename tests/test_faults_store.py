"""The embedded store at start: damaged, on a read-only mount, locked by a writer.
One clear line for what cannot work; the API (a reader) serves whatever it can."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers.demo import DEMO_SITE, demo_site
from helpers.mounts import temporary_tmpfs
from mieruka.models import ReadingBatch
from mieruka.store.embedded import DB_NAME, EmbeddedStore


def run_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, MIERUKA_MODBUS_PORT="1", MIERUKA_DATA_DIR=str(data_dir))
    return subprocess.run([sys.executable, "-m", "mieruka.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def some_readings(cfg, n: int = 10) -> None:
    s = EmbeddedStore.from_site(cfg)
    s.write(ReadingBatch((np.arange(n) * 1000 + 1_780_000_000_000).astype("datetime64[ms]"),
                         np.array(["main_power"] * n, object), np.arange(n, dtype=float), np.zeros(n, np.uint8)))
    s.close()


@pytest.mark.parametrize("damage", ["garbage", "truncated_header"])
def test_collect_and_serve_refuse_a_damaged_store_with_one_line(data_dir, damage):
    data_dir.mkdir(parents=True, exist_ok=True)
    db = data_dir / DB_NAME
    if damage == "garbage":
        db.write_bytes(os.urandom(8192))
    else:
        some_readings(demo_site(1, data_dir))
        with open(db, "r+b") as f:          # the header page overwritten (a power cut on a bad SD card)
            f.write(b"\0" * 100)
    for args in (["collect", "--config", str(DEMO_SITE), "--duration", "1"],
                 ["serve", "--config", str(DEMO_SITE), "--port", "1"]):
        r = run_cli(data_dir, *args)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {db}: not a readable embedded store: it is damaged"), r.stderr


def test_the_api_reads_a_store_a_writer_holds_locked(data_dir):
    """Before: the API opened the store as a second writer and waited 30 s for the lock, then failed."""
    from mieruka.api.app import create_app
    cfg = demo_site(1, data_dir)
    some_readings(cfg)
    lock = sqlite3.connect(data_dir / DB_NAME, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        app = create_app(cfg)
        try:
            assert app.state.ctx.store.count("main_power") == 10
        finally:
            app.state.ctx.store.close()
    finally:
        lock.execute("ROLLBACK")
        lock.close()


@pytest.fixture
def ro_mount():
    with temporary_tmpfs("4m", prefix="mieruka-ro-") as d:
        yield d


def test_a_read_only_data_dir_the_collector_refuses_and_the_api_still_serves(ro_mount):
    from mieruka.api.app import create_app
    cfg = demo_site(1, ro_mount)
    some_readings(cfg)
    subprocess.run(["mount", "-o", "remount,ro", str(ro_mount)], check=True)
    r = run_cli(ro_mount, "collect", "--config", str(DEMO_SITE), "--duration", "1")
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Read-only file system" in r.stderr
    app = create_app(cfg)
    try:
        assert app.state.ctx.store.count("main_power") == 10
    finally:
        app.state.ctx.store.close()
