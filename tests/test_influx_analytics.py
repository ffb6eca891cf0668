"""Analytics read back from InfluxDB: the same recording replayed into the embedded
store and into a real influxd gives byte-identical findings from `mieruka analyze`."""
from __future__ import annotations

import json
import subprocess

import pytest

from helpers.servers import MIERUKA, REPO, Influxd

DEMO = REPO / "config" / "examples" / "demo-site.toml"


@pytest.mark.slow
def test_analyze_from_influxdb_equals_analyze_from_the_embedded_store(tmp_path):
    run = lambda *a: subprocess.run([*MIERUKA, *a], cwd=tmp_path, capture_output=True, text=True, timeout=120)  # noqa: E731
    r = run("simulate", "--config", str(DEMO), "--record", "rec.csv", "--days", "7", "--step", "60")
    assert r.returncode == 0, r.stderr
    ix = Influxd(tmp_path).start()
    try:
        (tmp_path / "emb.toml").write_text(f'[site]\nname = "interop"\ndata_dir = "{tmp_path / "emb"}"\n')
        (tmp_path / "ifx.toml").write_text(f'[site]\nname = "interop"\ndata_dir = "{tmp_path / "ifx"}"\n'
                                           f'[storage]\nbackend = "influxdb"\n[storage.influxdb]\n'
                                           f'url = "{ix.url}"\ndatabase = "energy"\n')
        out = {}
        for name in ("emb", "ifx"):
            r = run("replay", "rec.csv", "--config", f"{name}.toml", "--no-progress")
            assert r.returncode == 0, r.stderr
            r = run("analyze", "--config", f"{name}.toml", "--start", "2026-04-01", "--end", "2026-04-08", "--json")
            assert r.returncode == 0, r.stderr
            out[name] = r.stdout
        rows = len((tmp_path / "rec.csv").read_text().splitlines()) - 1
        assert ix.count() == rows                               # every reading of the recording, once
    finally:
        ix.stop()
    findings = json.loads(out["ifx"])["findings"]
    assert len(findings) >= 3 and {f["kind"] for f in findings} >= {"standby"}
    assert out["ifx"] == out["emb"]
