"""Live demand and alarms from a real `mieruka collect` against the simulator (real
Modbus TCP): the incomer raised over target in the current half hour gives one
demand alarm (no flapping) by webhook and by mail (aiosmtpd, STARTTLS + AUTH); a
meter faulted for a few seconds gives meter_offline then meter_back; a dead
webhook is retried and counted while the store keeps growing; the status file and
/api/v1/demand/now carry the current period."""
from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import zoneinfo

import pytest

from helpers.api_site import TOKENS, auth, client, sha
from helpers.demo import DEMO_SITE, REPO
from helpers.net import free_port, wait_for
from helpers.receivers import SmtpServer, WebhookReceiver, dead_url
from helpers.servers import make_tls
from mieruka.demand_period import period_bounds
from mieruka.errors import ConfigError
from mieruka.simulators.modbus_server import ModbusSimulator
from mieruka.simulators.scenario import FaultSpec
from mieruka.site import load_site
from mieruka.store.embedded import EmbeddedStore

TZ = zoneinfo.ZoneInfo("Asia/Tokyo")
PAYLOAD_KEYS = {"event", "site", "time", "severity", "message_ja", "message_en", "data"}
RUN_MARGIN_S = 120       # the collect run below with room for a slow start


def store_count(cfg) -> int:
    try:
        s = EmbeddedStore.from_site(cfg, readonly=True)
    except ConfigError:
        return 0
    try:
        return sum(len(s.read_quality(c.id)[0]) for c in s.channels())
    finally:
        s.close()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One collect run of ~14 s with every target; the tests below look at what it did."""
    tmp = tmp_path_factory.mktemp("alarms")
    tls = make_tls(tmp)
    port = free_port()
    # the run (~15 s, longer on a loaded machine) must stay inside one 30-minute demand period:
    # the tests count one alarm and name the period's start. Close to :00/:30, wait for the next one
    p0, p1 = period_bounds(int(time.time() * 1000), "Asia/Tokyo", 30)
    if p1 / 1000 - time.time() < RUN_MARGIN_S:
        time.sleep(max(0.0, p1 / 1000 - time.time()) + 0.5)
        p0, _ = period_bounds(int(time.time() * 1000), "Asia/Tokyo", 30)
    start = dt.datetime.fromtimestamp(p0 / 1000, TZ).replace(tzinfo=None)
    scenario = tmp / "scenario.toml"
    scenario.write_text((REPO / "config/examples/demo-scenario.toml").read_text("utf-8") + f"""
[[peaks]]                 # a furnace start: 300 kW more on the incomer for this half hour and the next
start = {start.isoformat()}
minutes = 60
kw = 300
label = "furnace"
""", encoding="utf-8")
    with WebhookReceiver() as rx, SmtpServer(tls) as smtp:
        text = DEMO_SITE.read_text("utf-8").replace('scenario = "demo-scenario.toml"', f'scenario = "{scenario}"')
        text += f"""
[collector]
status_interval_s = 0.5
metrics_port = 0

[alarms]
demand_min_elapsed_s = 0
offline_after_s = 2.5
check_interval_s = 0.2
digest_at = "03:17"

[api]
[[api.tokens]]
name = "manager"
role = "read"
sha256 = "{sha(TOKENS['read'])}"

[[notify]]
type = "webhook"
name = "receiver"
url = "{rx.url}"

[[notify]]
type = "webhook"
name = "dead"
url = "{dead_url()}"
timeout_s = 1

[[notify]]
type = "smtp"
host = "127.0.0.1"
port = {smtp.port}
ca_file = "{tls['ca']}"
username = "gw"
password_env = "SMTP_PW"
from = "mieruka@factory.example.jp"
to = ["energy@factory.example.jp"]
events = ["demand_alarm", "demand_clear"]
"""
        cfg_path = tmp / "site.toml"
        cfg_path.write_text(text, encoding="utf-8")
        env = {"MIERUKA_MODBUS_PORT": str(port), "MIERUKA_DATA_DIR": str(tmp / "data"), "SMTP_PW": "s3cret-pw"}
        cfg = load_site(cfg_path, env=env)
        with ModbusSimulator(cfg, port=port) as sim:
            proc = subprocess.Popen([sys.executable, "-m", "mieruka.cli", "-v", "collect", "--config", cfg_path,
                                     "-q"], env={**os.environ, **env}, cwd=REPO,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            try:
                # the run's clock starts once the collector stores readings (a loaded machine can
                # take many seconds to start it): then pm-press stops answering 2 s later, for 6 s
                wait_for(lambda: store_count(cfg) > 0 or proc.poll() is not None, 120, what="first readings")
                assert proc.poll() is None, proc.stdout.read()
                t_fault = sim.now() + dt.timedelta(seconds=2)
                sim.add_fault(FaultSpec(meter="pm-press", kind="timeout", start=t_fault,
                                        end=t_fault + dt.timedelta(seconds=6)))
                counts, statuses = [], []
                for _ in range(5):                      # while the dead webhook is being retried
                    time.sleep(2.5)
                    counts.append(store_count(cfg))
                    try:
                        statuses.append(json.loads((cfg.data_dir / "collector-status.json").read_text("utf-8")))
                    except (OSError, ValueError):
                        statuses.append({})
                # the meter is back: its event, however late a loaded machine sends it
                wait_for(lambda: any(e["event"] == "meter_back" for e in rx.events()), 60, what="meter_back")
                proc.send_signal(signal.SIGTERM)        # a clean stop
                out, _ = proc.communicate(timeout=60)
                final = json.loads((cfg.data_dir / "collector-status.json").read_text("utf-8"))
            finally:
                if proc.poll() is None:
                    proc.kill()
        yield {"cfg": cfg, "rx": rx, "smtp": smtp, "counts": counts, "statuses": statuses, "out": out,
               "rc": proc.returncode, "period_start": p0, "final": final}


pytestmark = pytest.mark.slow


def test_one_demand_alarm_by_webhook_and_mail(run):
    assert run["rc"] == 0, run["out"][-3000:]
    evs = run["rx"].events()
    assert all(set(e) == PAYLOAD_KEYS for e in evs)
    alarms = [e for e in evs if e["event"] == "demand_alarm"]
    assert len(alarms) == 1, [e["event"] for e in evs]             # straight to the top stage, no flapping
    a = alarms[0]
    assert a["severity"] == "critical" and a["data"]["stage"] == 3 and a["data"]["predicted_kw"] > 300
    assert a["data"]["target_kw"] == 100 and a["data"]["contract_kw"] == 110
    assert a["data"]["start"] == dt.datetime.fromtimestamp(run["period_start"] / 1000, TZ).isoformat()
    assert "デマンド限界" in a["message_ja"] and "Demand limit" in a["message_en"]
    assert not [e for e in evs if e["event"] == "demand_clear"]
    (mail,) = run["smtp"].messages                                  # only the events it asked for
    assert "デマンド限界" in mail[2] or "=E3=83" in mail[2] or "utf-8" in mail[2].lower()
    assert run["smtp"].logins == ["gw"]


def test_meter_offline_then_back(run):
    evs = [e for e in run["rx"].events() if e["event"] in ("meter_offline", "meter_back")]
    assert [(e["event"], e["data"]["device"]) for e in evs] == [("meter_offline", "pm-press"),
                                                                ("meter_back", "pm-press")], evs
    assert evs[0]["severity"] == "warning" and 4 <= evs[1]["data"]["offline_s"] <= 20    # a 6 s fault


def test_dead_webhook_is_counted_and_collection_goes_on(run):
    c = [n for n in run["counts"] if n > 0]          # (the first sample may come before the store exists)
    assert len(c) >= 3 and all(a < b for a, b in zip(c, c[1:])), run["counts"]     # readings keep flowing
    busy = [s for s in run["statuses"] if s.get("notify") and
            any(t["name"] == "dead" and t["failures"] for t in s["notify"]["targets"])]
    assert busy, "the dead webhook was never being retried while collecting"
    dead = [t for t in run["final"]["notify"]["targets"] if t["name"] == "dead"][0]
    assert dead["sent"] == 0 and dead["failures"] >= 2 and "ConnectError" in dead["last_error"]
    ok = [t for t in run["final"]["notify"]["targets"] if t["name"] == "receiver"][0]
    assert ok["sent"] >= 1 and ok["failures"] == 0                  # the live one is not held up by the dead one
    assert len(run["rx"].posts) >= 3


def test_status_file_and_api_give_the_current_period(run):
    cfg = run["cfg"]
    d = run["statuses"][-1]["demand"]
    assert d["available"] and d["channel"] == "main_power" and d["energy_channel"] is None
    assert d["start"] == dt.datetime.fromtimestamp(run["period_start"] / 1000, TZ).isoformat()
    assert d["present_kw"] > 300 and d["predicted_kw"] > 300 and d["stage"] == 3
    assert d["energy_kwh"] > 0 and 0 < d["coverage"] < 0.05 and d["target_kw"] == 100
    store = EmbeddedStore.from_site(cfg, readonly=True)
    try:
        with client(cfg, store) as c:
            r = c.get("/api/v1/demand/now", headers=auth("read"))
            assert r.status_code == 200, r.text
            j = r.json()
            for k in ("start", "end", "seconds_left", "energy_kwh", "present_kw", "predicted_kw", "target_kw",
                      "contract_kw", "stage", "coverage"):
                assert k in j, k
            assert j["available"] and j["stage"] == 3 and j["end"].endswith("+09:00")
            assert c.get("/api/v1/demand/now").status_code == 401
    finally:
        store.close()
