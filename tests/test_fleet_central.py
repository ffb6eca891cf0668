"""Central collection: two gateways write into one central influxd (real, on a free
loopback port); their channel ids are the same and only the `site` tag keeps them
apart.  Gateway B's WAN link is down while it records: its readings wait in the
durable buffer and arrive when the central server is back.  `fleet analyze` then
reads each site from the central InfluxDB and finds the same as `mieruka analyze`
of that gateway's own store."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import numpy as np
import pytest

from mieruka.collector.buffer import DiskBuffer
from mieruka.collector.forward import Forwarder
from mieruka.models import ReadingBatch
from mieruka.recording import read_recording
from mieruka.service.fleet import run_fleet
from mieruka.service.fleet_manifest import load_manifest
from mieruka.simulators.recording import generate_channels, write_simulated_recording
from mieruka.simulators.scenario import parse_scenario
from mieruka.site import load_site
from mieruka.store.influx import InfluxStore
from helpers.servers import Influxd

WEEK = {d: ["08:00-12:00", "13:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}


def scenario(i: int) -> dict:
    return {"scenario": {"name": f"gw{i}", "noise": 0.03}, "calendar": {"holidays": "JP", "shifts": WEEK},
            "main": {"channel": "main", "unmetered_production_kw": 5 + 3 * i, "unmetered_standby_kw": 1 + i},
            "loads": [{"channel": "press", "production_kw": 20 + 10 * i, "standby_kw": 2.5 + 2 * i},
                      {"channel": "light", "kind": "lighting", "production_kw": 2, "standby_kw": 0.2}],
            "compressors": [{"system": "air1", "power_channel": "comp", "flow_channel": "flow",
                             "capacity_m3_per_min": 8, "full_load_power_kw": 45, "demand_production_m3min": 5,
                             "leak_m3min": 0.8 + i}]}


def gateway_toml(name: str, url: str, data_dir) -> str:
    return (f'[site]\nname = "{name}"\ndata_dir = "{data_dir}"\n[calendar]\nholidays = "JP"\n[calendar.shifts]\n'
            + "".join(f'{d} = ["08:00-12:00", "13:00-17:00"]\n' for d in WEEK)
            + f'[storage]\nbackend = "influxdb"\n[storage.influxdb]\nurl = "{url}"\ndatabase = "central"\n')


def mieruka(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mieruka.cli", *args], capture_output=True, text=True,
                          timeout=180, cwd=cwd)


@pytest.mark.slow
def test_many_gateways_one_central_influxdb(tmp_path):
    for i in (0, 1):
        sim = generate_channels(parse_scenario(scenario(i)), "2026-05-11", 5, 60.0, i)
        write_simulated_recording(sim, tmp_path / f"gw{i}.csv")
    ix = Influxd(tmp_path).start()
    try:
        (tmp_path / "gwA.toml").write_text(gateway_toml("工場A", ix.url, tmp_path / "a"), "utf-8")
        (tmp_path / "gwB.toml").write_text(gateway_toml("工場B", ix.url, tmp_path / "b"), "utf-8")
        # gateway A: its recording straight into the central InfluxDB
        r = mieruka("replay", "gw0.csv", "--config", "gwA.toml", "--no-progress", cwd=tmp_path)
        assert r.returncode == 0, r.stderr

        # gateway B: the WAN link is down; readings go to its durable buffer and wait
        cfg_b = load_site(tmp_path / "gwB.toml")
        rec = read_recording(tmp_path / "gw1.csv")
        buf = DiskBuffer(tmp_path / "b" / "buffer", fsync=False)
        sink = InfluxStore.from_site(cfg_b)
        fwd = Forwarder(buf, sink, batch_size=20_000, max_backoff_s=0.2)
        fwd.add_channels(rec.infos())
        ix.stop()
        for cid, ch in rec.channels.items():
            fwd.append(ReadingBatch(ch.time, np.full(len(ch.time), cid, dtype=object), ch.value,
                                    ch.quality if ch.quality is not None else np.zeros(len(ch.time), np.uint8)))
        assert asyncio.run(fwd.drain(timeout_s=0.5, max_s=1.0)) == 0       # nothing gets through
        assert buf.pending == rec.rows
        ix.start()                                                       # the link is back
        assert asyncio.run(fwd.drain(timeout_s=10, max_s=120)) == rec.rows
        assert buf.pending == 0
        buf.close()
        sink.close()
        assert ix.count(db="central", where="WHERE \"site\" = '工場B'") == rec.rows
        assert ix.count(db="central") == rec.rows + read_recording(tmp_path / "gw0.csv").rows

        # each gateway's own analysis (its config reads only its site from the central DB)
        own = {}
        for gw in ("A", "B"):
            r = mieruka("analyze", "--config", f"gw{gw}.toml", "--start", "2026-05-11", "--end", "2026-05-16",
                        "--json", cwd=tmp_path)
            assert r.returncode == 0, r.stderr
            own[gw] = r.stdout.rstrip("\n")
        assert own["A"] != own["B"]

        (tmp_path / "fleet.toml").write_text(f"""
period = {{ start = 2026-05-11, end = 2026-05-16 }}
[[sites]]
id = "A"
config = "gwA.toml"
influxdb = {{ url = "{ix.url}", database = "central" }}
[[sites]]
id = "B"
config = "gwB.toml"
influxdb = {{ url = "{ix.url}", database = "central", site = "工場B" }}
[[sites]]
id = "nobody"
config = "gwA.toml"
influxdb = {{ url = "{ix.url}", database = "central", site = "no such site" }}
""", "utf-8")
        run = run_fleet(load_manifest(tmp_path / "fleet.toml"), None)
        # split by channel groups, each task querying only its channels: the same result
        from mieruka.service.fleet import site_task
        split = load_manifest(tmp_path / "fleet.toml", split_readings=1000)
        assert site_task(split.sites[0]).get("split") and site_task(split.sites[1]).get("split")
        assert run_fleet(split, None).to_json() == run.to_json()
    finally:
        ix.stop()
    import hashlib
    sites = {s["id"]: s for s in run.data["sites"]}
    for gw in ("A", "B"):
        assert sites[gw]["error"] is None
        assert sites[gw]["analysis_sha256"] == hashlib.sha256(own[gw].encode()).hexdigest()
        assert sites[gw]["energy_kwh"] == pytest.approx(json.loads(own[gw])["summary"]["site"]["energy_kwh"])
    assert sites["B"]["energy_kwh"] > sites["A"]["energy_kwh"] * 1.2      # B's plant is the bigger one (same lights)
    assert sites["nobody"]["error"].startswith("no readings for site tag 'no such site' in InfluxDB http://127.0.0.1:")
