"""Embedded store schema versions: a store written in the format before versioning
(tests/fixtures/embedded_v0.py, the code as it was) is migrated in place by today's
writer with every reading, counter offset and channel kept; a store from a newer
mieruka is refused with a one-line error, not misread."""
from __future__ import annotations

import importlib.util
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from mieruka.errors import ConfigError
from mieruka.models import ChannelInfo, ReadingBatch
from mieruka.store.embedded import SCHEMA_VERSION, EmbeddedStore, schema_version

T0 = np.datetime64("2026-04-01T00:00:00", "ms")


def _v0_module():
    path = Path(__file__).parent / "fixtures" / "embedded_v0.py"
    spec = importlib.util.spec_from_file_location("embedded_v0", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _write_v0(path: Path) -> dict[str, np.ndarray]:
    v0 = _v0_module()
    n = 20_000
    t = T0 + (np.arange(n) * 1000).astype("timedelta64[ms]")
    vals = {"power": np.sin(np.arange(n) / 50.0) + 5.0, "energy": np.cumsum(np.full(n, 0.01))}
    s = v0.EmbeddedStore(path, stage_rows=1000)
    s.set_channels([ChannelInfo(id="power", quantity="power_kw", meter="pm1"),
                    ChannelInfo(id="energy", quantity="energy_kwh", meter="pm1")])
    s.write(ReadingBatch.concat([ReadingBatch.single_channel(c, t, v) for c, v in vals.items()]),
            counter_offsets=[("energy", T0 + np.timedelta64(5000, "s"), 123.5)])
    for k in range(10):             # collector-style small writes left staged (not folded)
        tk = T0 + np.timedelta64(n + k, "s")
        s.write(ReadingBatch.single_channel("power", np.array([tk]), np.array([float(k)])))
        vals["power"] = np.r_[vals["power"], float(k)]
    s.db.close()                    # like a kill: staged rows stay staged
    return vals


def test_store_from_before_versioning_is_migrated_and_keeps_everything(tmp_path):
    path = tmp_path / "mieruka.sqlite"
    vals = _write_v0(path)
    with sqlite3.connect(path) as db:
        assert schema_version(db) == 0
        assert db.execute("SELECT count(*) FROM staged").fetchone()[0] == 10
    # a reader on the old file works before migration
    r = EmbeddedStore(path, readonly=True)
    np.testing.assert_array_equal(r.read("power")[1], vals["power"])
    r.close()
    with EmbeddedStore(path) as s:
        assert schema_version(s.db) == SCHEMA_VERSION
        meta = dict(s.db.execute("SELECT key, value FROM meta"))
        assert f"migrated_to_{SCHEMA_VERSION}" in meta
        for c, v in vals.items():
            np.testing.assert_array_equal(s.read(c)[1], v)
        assert {c.id: c.quantity for c in s.channels()} == {"power": "power_kw", "energy": "energy_kwh"}
        assert s.db.execute("SELECT offset FROM counter_offsets").fetchall() == [(123.5,)]
        assert s.integrity_check() == "ok"
        s.write(ReadingBatch.single_channel("power", np.array([T0 + np.timedelta64(10**6, "s")]), np.array([1.0])))
    with EmbeddedStore(path) as s:          # opening again is a no-op
        assert schema_version(s.db) == SCHEMA_VERSION
        assert s.count("power") == len(vals["power"]) + 1


def test_new_store_is_created_at_the_current_version(tmp_path):
    with EmbeddedStore(tmp_path / "s.sqlite") as s:
        assert schema_version(s.db) == SCHEMA_VERSION
        assert "created" in dict(s.db.execute("SELECT key, value FROM meta"))


def test_store_from_a_newer_mieruka_is_refused(tmp_path):
    path = tmp_path / "s.sqlite"
    EmbeddedStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    for ro in (False, True):
        with pytest.raises(ConfigError, match="newer than this mieruka"):
            EmbeddedStore(path, readonly=ro)
