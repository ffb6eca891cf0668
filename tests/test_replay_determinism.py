"""`mieruka replay`: idempotent loading, byte-identical findings JSON, provenance,
channels taken from the recording, clear errors."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest
from helpers.api_site import STANDBY_KW, make_recording, write_config

from mieruka import __version__


def _replay(cfg, rec, *extra):
    return subprocess.run([sys.executable, "-m", "mieruka.cli", "replay", str(rec), "--config", str(cfg),
                           "--no-progress", *extra], capture_output=True, text=True, timeout=300)


def _rows(cfg_path):
    from mieruka.site import load_site
    from mieruka.store.base import open_store
    store = open_store(load_site(cfg_path))
    try:
        return {c.id: len(store.read(c.id)[0]) for c in store.channels()}
    finally:
        store.close()


@pytest.mark.slow
def test_replay_twice_is_byte_identical_and_doubles_nothing(tmp_path):
    cfg = write_config(tmp_path)            # an auditor's config: no meters at all
    rec = make_recording(tmp_path / "rec.csv", days=14)
    r1 = _replay(cfg, rec, "--json", str(tmp_path / "a.json"), "--xlsx", str(tmp_path / "a.xlsx"))
    assert r1.returncode == 0, r1.stderr
    rows1 = _rows(cfg)
    assert rows1 == {c: 14 * 1440 for c in ("main_power", "press_power", "compressor_power", "air_flow", "lighting_power")}
    r2 = _replay(cfg, rec, "--json", str(tmp_path / "b.json"), "--xlsx", str(tmp_path / "b.xlsx"))
    assert r2.returncode == 0, r2.stderr
    assert _rows(cfg) == rows1                                   # idempotent on (channel, time)
    a, b = (tmp_path / "a.json").read_bytes(), (tmp_path / "b.json").read_bytes()
    assert a == b
    # the workbook too: openpyxl stamped it with the time of writing
    assert (tmp_path / "a.xlsx").read_bytes() == (tmp_path / "b.xlsx").read_bytes()
    doc = json.loads(a)
    prov = doc["provenance"]
    assert prov["input"]["sha256"] == hashlib.sha256(rec.read_bytes()).hexdigest()
    assert prov["software"]["version"] == __version__
    assert prov["factor_set"]["id"] == "shk_2023"
    assert prov["calendar"]["timezone"] == "Asia/Tokyo" and prov["calendar"]["holidays"] == "JP"
    # the press line's standby (3.0 kW by construction) is found from the recording's own metadata
    standby = [f for f in doc["analysis"]["findings"] if f["kind"] == "standby" and f["channel"] == "press_power"]
    assert len(standby) == 1
    assert abs(standby[0]["metrics"]["mean_kw"] - STANDBY_KW) < 0.1 * STANDBY_KW


def test_provenance_names_the_configured_factor_set(tmp_path):
    from mieruka.service.replay import provenance
    from mieruka.site import load_site
    cfg = load_site(write_config(tmp_path, extra='\n[co2]\nfactor_set = "shk_legacy"\n'))
    prov = provenance(cfg, "ab" * 32)
    assert prov["factor_set"]["id"] == "shk_legacy" and prov["factor_set"]["title"]
    assert prov["input"] == {"sha256": "ab" * 32} and prov["calendar"]["shifts"]["mon"] == ["08:00-17:00"]


def test_bad_recording_is_one_clear_line_and_writes_nothing(tmp_path):
    cfg = write_config(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("time,channel,quantity,value\n2026-04-01T00:00:00+09:00,p1,power_kw,1.0\n"
                   "2026-04-01T00:01:00+09:00,p1,power_kw,abc\n", encoding="utf-8")
    r = _replay(cfg, bad, "--json", str(tmp_path / "out.json"), "--report", str(tmp_path / "out.html"))
    assert r.returncode == 2
    assert "bad.csv" in r.stderr and "line 3" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out.json").exists() and not (tmp_path / "out.html").exists()
    r = _replay(cfg, tmp_path / "missing.csv")
    assert r.returncode == 2 and "no such recording" in r.stderr
