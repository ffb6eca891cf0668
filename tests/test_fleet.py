"""`mieruka fleet analyze`: the manifest, a real dask.distributed LocalCluster
(processes, 2 workers), results equal to `mieruka analyze` of each site alone and
byte-identical for any number of workers, a failing site, a worker killed mid-run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mieruka.errors import ConfigError
from mieruka.service.fleet import fleet_client, run_fleet
from mieruka.service.fleet_manifest import load_manifest
from mieruka.simulators.recording import generate_channels, write_simulated_recording
from mieruka.simulators.scenario import parse_scenario

pytest.importorskip("distributed", reason="the `fleet` extra (deploy/test.sh installs it)")

WEEK = {d: ["08:00-12:00", "13:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}


def scenario(i: int) -> dict:
    return {
        "scenario": {"name": f"fleet{i}", "noise": 0.03},
        "calendar": {"holidays": "JP", "shifts": WEEK},
        "main": {"channel": "main", "unmetered_production_kw": 5 + i, "unmetered_standby_kw": 1 + i},
        "loads": [{"channel": "press", "production_kw": 20 + 5 * i, "standby_kw": 2.5 + i},
                  {"channel": "light", "kind": "lighting", "production_kw": 5, "standby_kw": 0.2 * i}],
        "compressors": [{"system": "air1", "power_channel": "comp", "flow_channel": "flow",
                         "pressure_channel": "pres", "capacity_m3_per_min": 8, "full_load_power_kw": 45,
                         "demand_production_m3min": 5, "leak_m3min": 0.6 + 0.4 * i}],
    }


SITE_TOML = """[site]
name = "Plant {i}"
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
electricity_jpy_per_kwh = {price}
[co2]
bills_file = "bills{i}.csv"
"""


def mieruka(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mieruka.cli", *args], capture_output=True, text=True,
                          timeout=240, cwd=cwd)


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory) -> Path:
    """Four small sites (one of them recorded in two files) and a broken one."""
    d = tmp_path_factory.mktemp("fleet")
    (d / "rec").mkdir()
    for i in range(4):
        sim = generate_channels(parse_scenario(scenario(i)), "2026-05-11", 7, 60.0, i)
        write_simulated_recording(sim, d / "rec" / f"site{i}.csv")
        (d / f"site{i}.toml").write_text(SITE_TOML.format(i=i, price=25 + i), "utf-8")
        (d / f"bills{i}.csv").write_text(f"period,energy,amount,unit\n2026-05,city_gas,{100 * (i + 1)},m3\n"
                                         f"2026-05,production,{3100 * (i + 1)},個\n", "utf-8")
    import gzip                 # one site's recording compressed, as archives keep them
    (d / "rec" / "site3.csv.gz").write_bytes(gzip.compress((d / "rec" / "site3.csv").read_bytes(), 1))
    (d / "fleet.toml").write_text("""
[company]
name = "Example Mfg"
fy2013_t_co2 = 400.0

[[sites]]
id = "s0"
config = "site0.toml"
recordings = "rec/site0.csv"

[[sites]]
id = "s1"
config = "site1.toml"
recordings = ["rec/site1.*csv"]

[[sites]]
id = "broken"
config = "site0.toml"
recordings = "rec/site0.truth.csv"

[[sites]]
id = "s2"
config = "site2.toml"
recordings = "rec/site2.csv"

[[sites]]
id = "s3"
config = "site3.toml"
recordings = "rec/site3.csv.gz"
""", "utf-8")
    (d / "rec" / "site0.truth.csv").write_text("time,channel,quantity,value\n2026-05-11T00:00:00+09:00,x,power_kw,oops\n")
    return d


@pytest.fixture(scope="module")
def serial_run(fleet_dir):
    return run_fleet(load_manifest(fleet_dir / "fleet.toml"), None)


def test_manifest_paths_relative_and_globs(fleet_dir):
    f = load_manifest(fleet_dir / "fleet.toml")
    assert [s.id for s in f.sites] == ["s0", "s1", "broken", "s2", "s3"]
    assert f.sites[1].recordings == (str((fleet_dir / "rec" / "site1.csv").resolve()),)
    assert f.sites[0].config == str((fleet_dir / "site0.toml").resolve())


@pytest.mark.parametrize("body, where", [
    ("", "empty fleet manifest file"),
    ('[[sites]]\nid = "a"\nconfig = "site0.toml"\n', "sites[0:a]: give exactly one of"),
    ('[[sites]]\nid = "a"\nconfig = "site0.toml"\nrecordings = "rec/site0.csv"\nstore = "x"\n',
     "sites[0:a]: give exactly one of `recordings`, `store` or `influxdb` (got recordings, store)"),
    ('[[sites]]\nid = "a"\nconfig = "site0.toml"\nrecordings = "rec/site0.json"\n',
     "sites[0:a].recordings: 'rec/site0.json': a recording is a .csv or .csv.gz file"),
    ('[[sites]]\nid = "a"\nconfig = "site0.toml"\nrecordings = "rec/site0.csv"\ncolour = 1\n',
     "sites[0:a].colour: unknown key"),
    ('[[sites]]\nid = "a"\nconfig = "site0.toml"\ninfluxdb = { url = "http://127.0.0.1:1" }\n',
     "sites[0:a].influxdb: give `database`"),
    ('[[sites]]\nid = "a"\nconfig = "site0.toml"\nrecordings = "rec/site0.csv"\n'
     'period = { start = 2026-05-02, end = 2026-05-01 }\n', "sites[0:a].period: end must be after start"),
    ('[[sites]]\nid = "a"\nconfig = "site0.toml"\nrecordings = "rec/site0.csv"\n'
     '[[sites]]\nid = "a"\nconfig = "site1.toml"\nrecordings = "rec/site1.csv"\n', "site id 'a' is used twice"),
    ("[[sites]\n", "invalid TOML"),
])
def test_manifest_errors_name_file_and_key(fleet_dir, body, where):
    p = fleet_dir / "bad-fleet.toml"
    p.write_text(body, "utf-8")
    with pytest.raises(ConfigError) as e:
        load_manifest(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}: ") and where in msg and "Traceback" not in msg, msg


@pytest.mark.parametrize("body, where", [
    ('[[sites]]\nid = "a"\nconfig = "site0.toml"\nrecordings = "rec/nothing*.csv"\n',
     "sites[0:a].recordings: 'rec/nothing*.csv' matches no .csv"),
    ('[[sites]]\nid = "a"\nconfig = "nope.toml"\nrecordings = "rec/site0.csv"\n',
     "sites[0:a].config: no such site config file"),
])
def test_missing_files_are_that_sites_error(fleet_dir, body, where):
    """A missing file fails its site (one line naming file and key), not the fleet."""
    p = fleet_dir / "missing-fleet.toml"
    p.write_text(body + '[[sites]]\nid = "ok"\nconfig = "site0.toml"\nrecordings = "rec/site0.csv"\n', "utf-8")
    f = load_manifest(p)
    assert f.sites[0].error.startswith(f"{p}: ") and where in f.sites[0].error
    assert f.sites[1].error is None


def test_cli_bad_manifest_is_one_line_exit_2(fleet_dir):
    p = fleet_dir / "bad-cli.toml"
    p.write_text('[[sites]]\nid = "a"\nconfig = "site0.toml"\n', "utf-8")
    r = mieruka("fleet", "analyze", str(p), "--serial")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [f"error: {p}: line 1: sites[0:a]: give exactly one of `recordings`, "
                                             "`store` or `influxdb`"]
    r = mieruka("fleet", "analyze", str(fleet_dir / "fleet.toml"), "--workers", "2", "--serial")
    assert r.returncode == 2 and "only one of --workers, --scheduler, --serial" in r.stderr
    r = mieruka("fleet", "analyze", "--help")
    assert r.returncode == 0 and "--scheduler" in r.stdout and "--xlsx" in r.stdout


def test_serial_fleet_equals_single_site_analyze(fleet_dir, serial_run):
    sites = {s["id"]: s for s in serial_run.data["sites"]}
    assert sites["broken"]["error"] and "line 2" in sites["broken"]["error"] and "value" in sites["broken"]["error"]
    assert serial_run.data["totals"]["sites_ok"] == 4 and serial_run.data["totals"]["sites_failed"] == 1
    for i in (0, 3):
        r = mieruka("analyze", str(fleet_dir / "rec" / f"site{i}.csv"), "--config", str(fleet_dir / f"site{i}.toml"),
                    "--json")
        assert r.returncode == 0, r.stderr
        single = json.loads(r.stdout)
        s = sites[f"s{i}"]
        import hashlib
        assert s["analysis_sha256"] == hashlib.sha256(r.stdout.rstrip("\n").encode()).hexdigest()
        assert s["energy_kwh"] == pytest.approx(single["summary"]["site"]["energy_kwh"], abs=1e-6)
        assert s["plan_jpy_per_year"] == pytest.approx(single["summary"]["plan_total"]["cost_jpy_per_year"], abs=1e-6)
        assert [f["kind"] for f in s["top_findings"]] == [f["kind"] for f in single["findings"][:3]]
    # more leak and standby from site to site (the scenarios grow with i): waste grows too
    waste = [sites[f"s{i}"]["waste_kwh"] for i in range(4)]
    assert waste == sorted(waste) and waste[0] > 0


def test_output_shape_co2_and_targets(serial_run):
    d = serial_run.data
    site_keys = {"id", "period", "energy_kwh", "co2_t", "scope1_t", "scope2_t", "waste_kwh", "waste_jpy",
                 "waste_co2_t", "top_findings", "plan_jpy_per_year", "error"}
    for s in d["sites"]:
        assert site_keys <= set(s)
    assert set(d["provenance"]) >= {"version", "factor_set", "inputs"}
    assert set(d["provenance"]["inputs"]) == {"s0", "s1", "broken", "s2", "s3"}
    assert all(len(h) == 64 for k, h in d["provenance"]["inputs"].items() if k != "broken")
    s0 = next(s for s in d["sites"] if s["id"] == "s0")
    # the gas bill of May counts pro rata for the week analysed (7 of 31 days): Scope 1
    gas_t = 100 * 7 / 31 / 1000 * 2.05            # m3 -> 千m3 x shk_2023 city gas factor
    assert s0["scope1_t"] == pytest.approx(gas_t, rel=1e-3)
    assert s0["scope2_t"] == pytest.approx(s0["energy_kwh"] * 0.000432, rel=0.02)   # default electricity factor
    assert s0["production"]["amount"] == pytest.approx(3100 * 7 / 31)
    assert s0["energy_kwh_per_unit"] == pytest.approx(s0["energy_kwh"] / (3100 * 7 / 31))
    sheet = d["co2_sheet"]
    assert sheet["fiscal_year"] == 2026
    assert sheet["total_t_co2"] == pytest.approx(d["totals"]["co2_t"])
    assert set(sheet["by_site"]) == {"s0", "s1", "s2", "s3"}
    assert sheet["total_location_based_t_co2"] > 0 and sheet["total_market_based_t_co2"] > 0
    japan = next(t for t in sheet["targets"] if t["name"] == "japan_2030")
    assert japan["target_t_co2"] == pytest.approx(400 * (1 - 0.46 * 13 / 17))


@pytest.mark.slow
def test_local_cluster_1_vs_2_workers_byte_identical(fleet_dir, serial_run):
    fleet = load_manifest(fleet_dir / "fleet.toml")
    with fleet_client(workers=2) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        two = run_fleet(fleet, client).to_json()
    with fleet_client(workers=1) as client:
        one = run_fleet(fleet, client).to_json()
    assert two == one == serial_run.to_json()


@pytest.mark.slow
def test_worker_killed_mid_run_result_unchanged(fleet_dir, serial_run):
    """SIGKILL a worker process while it analyses a site: the nanny restarts it, Dask
    retries the task elsewhere, and the fleet's JSON is the same byte for byte."""
    fleet = load_manifest(fleet_dir / "fleet.toml")
    with fleet_client(workers=2) as client:
        pids = client.run(os.getpid)                       # worker address -> pid
        box: dict = {}
        th = threading.Thread(target=lambda: box.setdefault("run", run_fleet(fleet, client)))
        th.start()
        killed = None
        deadline = time.monotonic() + 60
        while killed is None and time.monotonic() < deadline and th.is_alive():
            busy = [w for w, keys in client.processing().items() if keys]
            if busy:
                killed = pids[busy[0]]
                os.kill(killed, signal.SIGKILL)
            time.sleep(0.01)
        th.join(180)
        assert killed is not None, "no task was seen running"
        assert killed not in client.run(os.getpid).values()  # that process is gone (the nanny started another)
    assert box["run"].to_json() == serial_run.to_json()


@pytest.mark.slow
def test_cli_on_existing_scheduler_writes_json_report_xlsx(fleet_dir, serial_run, tmp_path):
    """The CLI on an existing cluster (--scheduler), writing JSON, report and workbook."""
    out = tmp_path / "fleet.json"
    with fleet_client(workers=2) as client:
        address = client.scheduler.address
        assert address.startswith("tcp://127.0.0.1:")
        r = mieruka("fleet", "analyze", str(fleet_dir / "fleet.toml"), "--scheduler", address, "--json", str(out),
                    "--report", str(tmp_path / "fleet.html"), "--xlsx", str(tmp_path / "fleet.xlsx"))
    assert r.returncode == 1, r.stderr                # one site failed: reported, exit 1
    assert "site broken: error:" in r.stderr and "Traceback" not in r.stderr
    assert out.read_text("utf-8") == serial_run.to_json()
    html = (tmp_path / "fleet.html").read_text("utf-8")
    assert "s3" in html and "broken" in html and "−46" in html
    from openpyxl import load_workbook
    wb = load_workbook(tmp_path / "fleet.xlsx")
    assert wb.sheetnames[0] == "拠点比較 league"
    ws = wb["拠点比較 league"]
    ids = [ws.cell(r, 1).value for r in range(1, ws.max_row + 1)]
    assert {"s0", "s1", "s2", "s3", "broken"} <= set(ids)
    assert any(n.startswith("CO2 FY2026") for n in wb.sheetnames)


@pytest.mark.slow
def test_embedded_store_site_equals_analyze_of_the_store(fleet_dir, tmp_path):
    """A site read from its embedded store (the gateway's data_dir) gives what
    `mieruka analyze --config --start --end` of that store gives."""
    import hashlib
    cfg = tmp_path / "gw.toml"
    cfg.write_text((fleet_dir / "site2.toml").read_text("utf-8").replace(
        'timezone = "Asia/Tokyo"', f'timezone = "Asia/Tokyo"\ndata_dir = "{tmp_path / "gwdata"}"')
        .replace('bills_file = "bills2.csv"', f'bills_file = "{fleet_dir / "bills2.csv"}"'), "utf-8")
    r = mieruka("replay", str(fleet_dir / "rec" / "site2.csv"), "--config", str(cfg), "--no-progress")
    assert r.returncode == 0, r.stderr
    r = mieruka("analyze", "--config", str(cfg), "--start", "2026-05-12", "--end", "2026-05-16", "--json")
    assert r.returncode == 0, r.stderr
    (tmp_path / "fleet.toml").write_text('[[sites]]\nid = "gw"\nconfig = "gw.toml"\nstore = "gwdata"\n'
                                         'period = { start = 2026-05-12, end = 2026-05-16 }\n'
                                         '[[sites]]\nid = "whole"\nconfig = "gw.toml"\nstore = "gwdata"\n', "utf-8")
    run = run_fleet(load_manifest(tmp_path / "fleet.toml"), None)
    gw, whole = run.data["sites"]
    assert gw["error"] is None and gw["analysis_sha256"] == hashlib.sha256(r.stdout.rstrip("\n").encode()).hexdigest()
    # without a period: the store's whole site days (7 days recorded)
    assert whole["period"]["start"].startswith("2026-05-11") and whole["energy_kwh"] > gw["energy_kwh"] * 1.5


def _toml_value(v) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    return json.dumps(v)          # strings, ints and finite floats are valid TOML as JSON writes them


def test_hostile_manifests_give_config_errors_only(fleet_dir):
    """Any value under any key: a ConfigError naming the file, or a valid fleet; never
    another exception (hypothesis)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    scalar = st.one_of(st.text(max_size=12), st.integers(-5, 5), st.floats(allow_nan=False, allow_infinity=False),
                       st.booleans())
    value = st.one_of(scalar, st.lists(scalar, max_size=3),
                      st.sampled_from(["site0.toml", "rec/site0.csv", "rec/*.csv", "rec", "/dev/null", "../",
                                       "http://127.0.0.1:1", "2026-05-11"]))
    keys = st.sampled_from(["id", "config", "recordings", "store", "bills", "colour", "period", "influxdb"])

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.dictionaries(keys, value, max_size=5), max_size=3))
    def check(sites):
        body = "".join("[[sites]]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in s.items()) for s in sites)
        p = fleet_dir / "hostile.toml"
        p.write_text(body, "utf-8")
        try:
            f = load_manifest(p)
        except ConfigError as e:
            assert str(e).startswith(f"{p}: ") and "Traceback" not in str(e)
        else:
            assert all(s.config and (s.error or s.recordings or s.store or s.influxdb) for s in f.sites)

    check()


def test_waste_never_counts_the_site_base_load_as_standby_waste():
    """A one-meter site (the steel plant's shape): the standby finding on its incomer is
    the site's base load to track down on breakers, which the savings plan does not
    claim; the league's waste must not call it waste (it said 45 % of the plant's
    energy).  A site without an incomer keeps its breakers' standby as waste."""
    from mieruka.service.fleet import _waste

    findings = [
        {"kind": "standby", "channel": "plant", "energy_kwh": 400_000.0, "cost_jpy": 1e7, "co2_t": 170.0},
        {"kind": "baseline_gap", "channel": "plant", "energy_kwh": 14_000.0, "cost_jpy": 3.5e5, "co2_t": 6.0},
        {"kind": "base_load", "channel": "server", "energy_kwh": 9_000.0, "cost_jpy": 2e5, "co2_t": 4.0},
    ]
    # one meter, tagged as the incomer: no breakers to double count, but its standby is not waste
    assert _waste(findings, totals=set(), incomers={"plant"}) == (14_000.0, 3.5e5, 6.0)
    # the same meter as a plain breaker (no incomer at the site): its standby is waste
    assert _waste(findings, totals=set(), incomers=set()) == (414_000.0, 1.035e7, 176.0)
    # with breakers below an incomer, a breaker's standby is waste and the incomer's findings are not
    findings.append({"kind": "standby", "channel": "press", "energy_kwh": 1_000.0, "cost_jpy": 2.5e4, "co2_t": 0.4})
    assert _waste(findings, totals={"plant"}, incomers={"plant"}) == (1_000.0, 2.5e4, 0.4)
