"""The README's first Quick start command runs `mieruka demo`: keep it working end to end."""
import json
import os
import subprocess
import sys

import pytest
from helpers.net import free_port


@pytest.mark.slow
def test_demo_runs_the_whole_chain_and_ends(tmp_path):
    out = tmp_path / "demo"
    # the simulator's port from this worker's block (the demo alone would take any free one)
    r = subprocess.run([sys.executable, "-m", "mieruka.cli", "demo", "--dir", str(out), "--days", "7",
                        "--collect-seconds", "4"], capture_output=True, text=True, timeout=240,
                       env={**os.environ, "MIERUKA_MODBUS_PORT": str(free_port())})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "collected into the embedded store" in r.stdout
    assert "ranked by yen" in r.stdout
    assert (out / "report.html").stat().st_size > 10_000
    doc = json.loads((out / "findings.json").read_text())
    assert doc["analysis"]["findings"], "the simulated week has injected waste: the demo must find some"
    assert doc["provenance"]["input"]["sha256"]
    for unit in ("kWh", "JPY", "t-CO2"):
        assert unit in r.stdout
