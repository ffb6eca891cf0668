"""Large sites split by channel groups: the pipeline's map/reduce (site context,
channel parts, combine) gives the whole-site result byte for byte, in one process
and on a real dask.distributed LocalCluster (processes, 2 workers), with a worker
killed mid-run; and a hostile manifest (missing files, a glob matching nothing, a
site with zero data, Japanese site ids) fails site by site, one line each."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mieruka.analytics import pipeline as pl
from mieruka.analytics.co2 import CO2Engine
from mieruka.analytics.series import CachedCalendar
from mieruka.calendar import SiteCalendar
from mieruka.models import ChannelInfo
from mieruka.service.fleet import run_fleet, site_task
from mieruka.service.fleet_manifest import load_manifest
from mieruka.service.site_run import recording_channels
from mieruka.simulators.recording import generate_channels, write_simulated_recording
from mieruka.simulators.scenario import parse_scenario
from mieruka.site import load_site

WEEK = {d: ["08:00-12:00", "13:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}


def scenario(seed: int) -> dict:
    """An incomer over six breakers (one with an energy counter, one always on, an
    HVAC that follows the outdoor temperature), a compressor with its flow meter and
    pressure, and the outdoor temperature."""
    return {
        "scenario": {"name": f"split{seed}", "noise": 0.03, "outdoor_temp_channel": "外気温"},
        "calendar": {"holidays": "JP", "shifts": WEEK},
        "main": {"channel": "main", "energy_channel": "main_kwh", "unmetered_production_kw": 8,
                 "unmetered_standby_kw": 2},
        "loads": [
            {"channel": "press", "production_kw": 25 + seed, "standby_kw": 3.0, "energy_channel": "press_kwh"},
            {"channel": "lathe", "equipment_kind": "machine_tool", "production_kw": 12, "standby_kw": 1.5},
            {"channel": "light", "kind": "lighting", "production_kw": 5, "standby_kw": 0.4},
            {"channel": "空調", "kind": "hvac", "production_kw": 4, "hvac_kw_per_degc": 0.6},
            {"channel": "freezer", "kind": "constant", "always_on": True, "production_kw": 6, "standby_kw": 6},
            {"channel": "weld", "equipment_kind": "welding", "production_kw": 18, "standby_kw": 0.2},
        ],
        "compressors": [{"system": "air1", "power_channel": "comp", "flow_channel": "flow",
                         "pressure_channel": "pres", "capacity_m3_per_min": 8, "full_load_power_kw": 45,
                         "demand_production_m3min": 5, "leak_m3min": 0.8 + 0.2 * seed}],
    }


SITE_TOML = """[site]
name = "工場{i}"
timezone = "Asia/Tokyo"
[calendar]
holidays = "JP"
[calendar.shifts]
mon = ["08:00-12:00", "13:00-17:00"]
tue = ["08:00-12:00", "13:00-17:00"]
wed = ["08:00-12:00", "13:00-17:00"]
thu = ["08:00-12:00", "13:00-17:00"]
fri = ["08:00-12:00", "13:00-17:00"]
[tariffs]
electricity_jpy_per_kwh = 26.0
{bill}"""
BILL = "[bill]\nbasic_jpy_per_kw = 1800\npower_factor_pct = 90\n"


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("split")
    for i in range(2):
        sim = generate_channels(parse_scenario(scenario(i)), "2026-05-11", 8, 120.0, i)
        write_simulated_recording(sim, d / f"site{i}.csv")
        (d / f"site{i}.toml").write_text(SITE_TOML.format(i=i, bill=BILL if i == 0 else ""), "utf-8")
    (d / "empty.csv").write_text("time,channel,quantity,value\n", "utf-8")
    (d / "fleet.toml").write_text("""
[[sites]]
id = "大阪工場"
config = "site0.toml"
recordings = "site0.csv"

[[sites]]
id = "no-config"
config = "missing.toml"
recordings = "site0.csv"

[[sites]]
id = "no-match"
config = "site1.toml"
recordings = ["site1.csv", "archive/2026-*.csv.gz"]

[[sites]]
id = "empty"
config = "site1.toml"
recordings = "empty.csv"

[[sites]]
id = "神戸"
config = "site1.toml"
recordings = "site1.csv"
split_readings = 5000
""", "utf-8")
    return d


def _split_analysis(chans, cal, engine, params, n: int):
    """What a split fleet run does, task by task, each with its own calendar cache."""
    plan = pl.channel_groups({c: ch.info for c, ch in chans.items()}, n)
    assert plan is not None
    site, groups = plan
    c = CachedCalendar(cal)
    ctx = pl.site_context(pl.prepare_series({k: chans[k] for k in site}, c, params), c, params)
    parts = {}
    for g in groups:
        c = CachedCalendar(cal)
        parts.update({k: pl.channel_part(k, s, c, ctx, params)
                      for k, s in pl.prepare_series({k: chans[k] for k in g}, c, params).items()})
    c = CachedCalendar(cal)
    return pl.combine(pl.prepare_series({k: chans[k] for k in site}, c, params), parts, c, engine, params, ctx)


@pytest.mark.parametrize("i", [0, 1])
def test_split_pipeline_equals_whole_site_byte_for_byte(site_dir, i):
    """Site 0 has a [bill] (peak cut over the breakers' demand periods), both have an
    outdoor temperature, an always-on load and a counter behind a rate."""
    cfg = load_site(site_dir / f"site{i}.toml")
    cal, engine, params = SiteCalendar.from_config(cfg), CO2Engine.from_site(cfg), pl.params_for_site(cfg)
    chans = recording_channels([site_dir / f"site{i}.csv"], cfg)
    whole = pl.analyze(chans, cal, engine, params).to_json()
    data = json.loads(whole)
    assert data["summary"]["outdoor_temperature"] is True
    assert any(f["kind"] == "standby" for f in data["findings"]) and any(f["kind"] == "air_leak"
                                                                        for f in data["findings"])
    assert any(m["id"] == "peak_cut" for m in data["plan"]) == (i == 0)
    for n in (2, 3, 6):
        assert _split_analysis(chans, cal, engine, params, n).to_json() == whole, n


def test_channel_groups_keep_what_needs_several_channels_together():
    info = lambda cid, q="power_kw", kind=None, system=None: ChannelInfo(cid, q, "", kind, system=system)
    infos = {i.id: i for i in [
        info("main", kind="incomer"), info("main_kwh", "energy_kwh", "incomer"),
        info("press"), info("press_kwh", "energy_kwh"), info("lathe"), info("light", kind="lighting"),
        info("comp", kind="compressor", system="air1"), info("flow", "air_flow_m3min", "air_meter", "air1"),
        info("pres", "pressure_mpa", "air_meter", "air1"), info("外気温", "temperature_c", "outdoor_air"),
        info("gas", "gas_flow_m3h"), info("demand", "power_kw", "受電")]}
    site, groups = pl.channel_groups(infos, 2)
    assert sorted(c for g in groups for c in g) == ["lathe", "light", "press"]
    assert len(groups) == 2 and all(groups)
    # incomers (受電 too), the compressor with its air meters and the temperature stay together;
    # the counter behind the press's rate is in no group (one run leaves it out as well)
    assert set(site) == {"main", "demand", "comp", "flow", "pres", "外気温"}
    assert pl.channel_groups(infos, 50)[1] == [["lathe"], ["light"], ["press"]]
    # no incomer: the idle days come from the sum of all breakers, so no split; nor with one breaker
    assert pl.channel_groups({k: v for k, v in infos.items() if k not in ("main", "main_kwh", "demand")}, 3) is None
    assert pl.channel_groups({k: infos[k] for k in ("main", "press")}, 3) is None
    assert pl.channel_groups(infos, 1) is None


def test_hostile_manifest_fails_site_by_site_serial_split_equals_unsplit(site_dir):
    fleet = load_manifest(site_dir / "fleet.toml", split_readings=None)
    assert [s.id for s in fleet.sites] == ["大阪工場", "no-config", "no-match", "empty", "神戸"]
    # recordings split only on request (every task parses the whole CSV): 神戸 asks, 大阪工場 does not
    assert fleet.sites[4].split_readings == 5000 and fleet.sites[0].split_readings == 0
    assert site_task(fleet.sites[4]).get("split") and "split" not in site_task(fleet.sites[0])
    whole = run_fleet(load_manifest(site_dir / "fleet.toml", split_readings=0), None)
    split = run_fleet(load_manifest(site_dir / "fleet.toml", split_readings=1000), None)
    assert split.to_json() == whole.to_json()
    err = {s["id"]: s["error"] for s in whole.data["sites"]}
    assert err["大阪工場"] is None and err["神戸"] is None
    lines = (site_dir / "fleet.toml").read_text("utf-8").splitlines()
    n_cfg = lines.index('config = "missing.toml"') + 1
    n_rec = lines.index('recordings = ["site1.csv", "archive/2026-*.csv.gz"]') + 1
    assert err["no-config"] == (f"{site_dir / 'fleet.toml'}: line {n_cfg}: sites[1:no-config].config: no such site "
                                f"config file: {site_dir / 'missing.toml'}")
    assert err["no-match"].startswith(f"{site_dir / 'fleet.toml'}: line {n_rec}: sites[2:no-match].recordings: "
                                      "'archive/2026-*.csv.gz' matches no .csv/.csv.gz file")
    assert "empty.csv" in err["empty"] and "no readings" in err["empty"]
    assert whole.data["totals"]["sites_ok"] == 2 and whole.data["totals"]["sites_failed"] == 3


def mieruka(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mieruka.cli", *args], capture_output=True, text=True, timeout=240)


@pytest.mark.slow
def test_local_cluster_split_vs_unsplit_vs_single_site_with_a_worker_killed(site_dir, tmp_path):
    """2 worker processes: split (every site above 1,000 readings) == unsplit == serial
    == `mieruka analyze` of the site alone; then again with a worker SIGKILLed while
    it runs one of the split tasks (Dask retries it; the result is unchanged)."""
    pytest.importorskip("distributed", reason="the `fleet` extra (deploy/test.sh installs it)")
    from mieruka.service.fleet import fleet_client

    serial = run_fleet(load_manifest(site_dir / "fleet.toml", split_readings=0), None).to_json()
    split = load_manifest(site_dir / "fleet.toml", split_readings=1000)
    with fleet_client(workers=2) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        assert run_fleet(split, client).to_json() == serial       # (unsplit on 1 and 2 workers: test_fleet.py)
        pids = client.run(os.getpid)
        box: dict = {}
        th = threading.Thread(target=lambda: box.setdefault("run", run_fleet(split, client)))
        th.start()
        killed = None
        deadline = time.monotonic() + 60
        while killed is None and time.monotonic() < deadline and th.is_alive():
            busy = [w for w, keys in client.processing().items() if any("group" in str(k) for k in keys)]
            if busy:
                killed = pids[busy[0]]
                os.kill(killed, signal.SIGKILL)
            time.sleep(0.005)
        th.join(180)
        assert killed is not None, "no group task was seen running"
        assert box["run"].to_json() == serial
        # two runs at once on one scheduler (two users of a shared cluster), the same site id
        # at the same place in different manifests: task keys were "site-0-<id>", so the
        # second run got the first one's result
        runs = {}
        for k in range(2):
            (tmp_path / f"m{k}.toml").write_text(f'[[sites]]\nid = "x"\nconfig = "{site_dir / f"site{k}.toml"}"\n'
                                                 f'recordings = "{site_dir / f"site{k}.csv"}"\n', "utf-8")
        fleets = [load_manifest(tmp_path / f"m{k}.toml") for k in range(2)]
        ths = [threading.Thread(target=lambda k=k: runs.setdefault(k, run_fleet(fleets[k], client).to_json()))
               for k in range(2)]
        for t in ths:
            t.start()
        for t in ths:
            t.join(120)
        assert runs[0] != runs[1]
        assert [runs[k] for k in range(2)] == [run_fleet(f, None).to_json() for f in fleets]
    r = mieruka("analyze", str(site_dir / "site0.csv"), "--config", str(site_dir / "site0.toml"), "--json")
    assert r.returncode == 0, r.stderr
    osaka = json.loads(serial)["sites"][0]
    assert osaka["analysis_sha256"] == hashlib.sha256(r.stdout.rstrip("\n").encode()).hexdigest()


def test_store_site_split_reads_only_its_channels_and_equals_whole(site_dir, tmp_path):
    """A site in an embedded store: the plan counts readings from the chunk headers,
    each group reads only its channels, and the result is the whole site's."""
    from mieruka.store.embedded import EmbeddedStore
    cfg = load_site(site_dir / "site0.toml")
    rec = recording_channels([site_dir / "site0.csv"], cfg)
    from mieruka.recording import read_recording
    store = EmbeddedStore(tmp_path / "data" / "mieruka.sqlite", tz=cfg.tz)
    r = read_recording(site_dir / "site0.csv")
    store.set_channels(r.infos())
    store.write(r.to_batch())
    n_est = store.readings_estimate()
    store.close()
    assert n_est == sum(len(c.time) for c in rec.values())
    body = ('[[sites]]\nid = "{id}"\nconfig = "{cfg}"\nstore = "data"\nsplit_readings = {n}\n'
            'period = {{ start = 2026-05-12, end = 2026-05-18 }}\n')
    (tmp_path / "fleet.toml").write_text(body.format(id="whole", cfg=site_dir / "site0.toml", n=0)
                                         + body.format(id="split", cfg=site_dir / "site0.toml", n=1000), "utf-8")
    fleet = load_manifest(tmp_path / "fleet.toml")
    (tmp_path / "default.toml").write_text(f'[[sites]]\nid = "d"\nconfig = "{site_dir / "site0.toml"}"\n'
                                           'store = "data"\n', "utf-8")
    assert load_manifest(tmp_path / "default.toml").sites[0].split_readings == 50_000_000
    plan = site_task(fleet.sites[1])["split"]
    assert len(plan["groups"]) == 6 and 0 < plan["readings"] <= n_est     # chunks overlapping the period
    run = run_fleet(fleet, None)
    whole, split = run.data["sites"]
    assert whole["error"] is None and {**whole, "id": "split"} == split
    assert run.data["provenance"]["inputs"]["whole"] == run.data["provenance"]["inputs"]["split"]


def test_recording_changed_during_a_split_run_is_that_sites_error(site_dir, tmp_path):
    import shutil
    from mieruka.service.fleet import combine_task, group_task
    shutil.copy(site_dir / "site1.csv", tmp_path / "s.csv")
    (tmp_path / "fleet.toml").write_text(f'[[sites]]\nid = "s"\nconfig = "{site_dir / "site1.toml"}"\n'
                                         'recordings = "s.csv"\nsplit_readings = 1000\n', "utf-8")
    spec = load_manifest(tmp_path / "fleet.toml").sites[0]
    plan = site_task(spec)["split"]
    with open(tmp_path / "s.csv", "a", encoding="utf-8") as f:
        f.write("")
    os.utime(tmp_path / "s.csv", ns=(time.time_ns(), time.time_ns() + 10**9))
    g = group_task(spec, plan, plan["groups"][0])
    assert g["error"].endswith("the recording changed while its site was analysed; run again")
    assert combine_task(spec, plan, g) == {"id": "s", "error": g["error"]}


def test_damaged_store_is_one_line_for_analyze_and_for_its_fleet_site(site_dir, tmp_path):
    """A file that is not a SQLite store: `mieruka analyze --config` said nothing but a
    traceback (sqlite3.DatabaseError); now one line naming the file, and in a fleet
    that site's error."""
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "mieruka.sqlite").write_bytes(bytes(range(256)) * 20)
    cfg = tmp_path / "bad.toml"
    cfg.write_text(f'[site]\nname = "bad"\ndata_dir = "{tmp_path / "bad"}"\n', "utf-8")
    r = mieruka("analyze", "--config", str(cfg), "--start", "2026-05-11", "--end", "2026-05-12")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {tmp_path / 'bad' / 'mieruka.sqlite'}: not a readable "
                                                   "embedded store: it is damaged (file is not a database)")
    assert "restore a backup" in lines[0]
    (tmp_path / "fleet.toml").write_text(f'[[sites]]\nid = "bad"\nconfig = "bad.toml"\nstore = "bad"\n'
                                         f'[[sites]]\nid = "ok"\nconfig = "{site_dir / "site1.toml"}"\n'
                                         f'recordings = "{site_dir / "site1.csv"}"\n', "utf-8")
    bad, ok = run_fleet(load_manifest(tmp_path / "fleet.toml"), None).data["sites"]
    assert "not a readable embedded store" in bad["error"] and ok["error"] is None


@pytest.mark.slow
def test_cli_local_cluster_stderr_is_the_failed_sites_only(site_dir, tmp_path):
    """`--workers 2` with splitting: stderr holds one line per failed site (missing
    config, glob matching nothing, empty recording) and the count, no traceback and
    not the scheduler's INFO log; the JSON is the serial run's."""
    out = tmp_path / "f.json"
    r = mieruka("fleet", "analyze", str(site_dir / "fleet.toml"), "--workers", "2", "--split-readings", "1000",
                "--json", str(out))
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert sorted(x.split(":")[0] for x in lines[:-1]) == ["site empty", "site no-config", "site no-match"], lines
    assert lines[-1] == "3 of 5 sites failed (see their `error`)"
    serial = run_fleet(load_manifest(site_dir / "fleet.toml", split_readings=0), None).to_json()
    assert out.read_text("utf-8") == serial
    assert [s["id"] for s in json.loads(serial)["sites"] if s["error"] is None] == ["大阪工場", "神戸"]
    assert "--split-readings" in mieruka("fleet", "analyze", "--help").stdout
