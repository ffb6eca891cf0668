"""End to end with real servers: mosquitto_pub -> mosquitto -> `mieruka collect`
(a real subprocess) -> disk buffer -> influxd 1.6, counted with InfluxQL.

Every test publishes messages that each carry their own time and checks that
InfluxDB holds exactly one point per reading, through outages of the database,
the broker and the collector itself (kill -9)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from helpers.net import free_port, wait_for
from helpers.servers import MIERUKA, REPO, Collector, Influxd, Mosquitto, make_tls

T0_MS = 1_780_000_000_000          # 2026-05-28: message times (ms), one per message
EXAMPLE = REPO / "config" / "examples" / "shelly-mqtt-influx.toml"


def site_toml(tmp: Path, mq_url: str, influx_url: str, *, broker_extra: str = "", metrics_port: int = 0,
              extra: str = "") -> Path:
    """A site with one JSON subscription (`meters/<id>/data`, two values and a ms timestamp
    per message) into InfluxDB through the v1 API."""
    text = f"""
[site]
name = "e2e test"
data_dir = "{tmp / 'data'}"

[storage]
backend = "influxdb"
[storage.influxdb]
url = "{influx_url}"
database = "energy"
timeout_s = 2
[storage.buffer]
max_mb = 64

[collector]
metrics_port = {metrics_port}
status_interval_s = 0.5

[mqtt]
[[mqtt.brokers]]
id = "b1"
url = "{mq_url}"
client_id = "mieruka-e2e"
{broker_extra}

[[mqtt.subscriptions]]
topic = "meters/+/data"
decoder = "json"
time_path = "ts"
time_format = "unix_ms"
system = "electricity"
[[mqtt.subscriptions.mapping]]
path = "p"
channel = "{{device}}.power"
quantity = "power_kw"
unit = "W"
scale = 0.001
[[mqtt.subscriptions.mapping]]
path = "e.total"
channel = "{{device}}.energy"
quantity = "energy_kwh"
{extra}
"""
    path = tmp / "site.toml"
    path.write_text(text)
    return path


def messages(start: int, n: int) -> list[str]:
    return [json.dumps({"ts": T0_MS + 1000 * i, "p": 1000 + i, "e": {"total": 5.0 + i / 1000}})
            for i in range(start, start + n)]


class Publisher(threading.Thread):
    """Publishes messages i = start.. at `rate` per second with one mosquitto_pub -l process."""

    def __init__(self, mq: Mosquitto, start: int, n: int, rate: float, topic: str = "meters/m1/data",
                 hold_at: int | None = None, hold: threading.Event | None = None):
        super().__init__(daemon=True)
        self.mq, self.start_i, self.n, self.rate, self.topic = mq, start, n, rate, topic
        self.hold_at, self.hold = hold_at, hold        # after `hold_at` messages, wait for `hold` to be set

    def run(self) -> None:
        p = subprocess.Popen(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(self.mq.port), "-q", "1",
                              "-t", self.topic, "-l"], stdin=subprocess.PIPE, text=True)
        for k, line in enumerate(messages(self.start_i, self.n)):
            if k == self.hold_at:
                self.hold.wait(120)
            p.stdin.write(line + "\n")
            p.stdin.flush()
            time.sleep(1 / self.rate)
        p.stdin.close()
        p.wait(60)


@pytest.fixture
def servers(tmp_path):
    ix = Influxd(tmp_path).start()
    mq = Mosquitto(tmp_path).start()
    procs: list = [ix, mq]
    yield tmp_path, ix, mq, procs
    for p in reversed(procs):
        p.kill() if isinstance(p, Collector) else p.stop()


def exact(ix: Influxd, n: int, timeout_s: float = 60) -> None:
    """InfluxDB holds exactly 2 points per message (power, energy), and stays so."""
    wait_for(lambda: ix.count() >= 2 * n, timeout_s, what=f"{2 * n} points")
    time.sleep(1.0)                                     # nothing more trickles in
    assert ix.count() == 2 * n
    assert ix.count(where="WHERE channel = 'm1.power'") == n


@pytest.mark.slow
def test_published_messages_arrive_exactly_once_and_status_shows_it(servers):
    tmp, ix, mq, procs = servers
    mport = free_port()
    cfg = site_toml(tmp, mq.url, ix.url, metrics_port=mport)
    col = Collector(cfg, tmp / "collect.log").start()
    procs.append(col)
    wait_for(lambda: (tmp / "data" / "collector-status.json").exists(), 60, what="status file")
    # messages published before the broker acknowledged the subscription would go nowhere
    wait_for(lambda: "MQTT subscribed" in (tmp / "collect.log").read_text(), 60, what="subscribed")
    mq.pub("meters/m1/data", messages(0, 300))
    mq.pub("meters/m1/data", ["{not json", json.dumps({"ts": T0_MS, "p": "n/a", "e": {"total": 1}})])
    mq.pub("meters/m1/data", messages(300, 100))
    exact(ix, 400)
    # the values arrive in the quantity's unit, tagged
    doc = ix.query("SELECT value FROM energy WHERE channel = 'm1.power' AND system = 'electricity' "
                   "ORDER BY time LIMIT 1")
    assert doc["results"][0]["series"][0]["values"][0] == [T0_MS, 1.0]
    # metrics on the loopback port
    body = urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=30).read().decode()
    assert 'mieruka_input_readings_total{input="mqtt"} 800.0' in body
    assert 'mieruka_errors_total{kind="bad_payload"} 2.0' in body
    assert 'mieruka_mqtt_connected{broker="b1"} 1.0' in body
    # mieruka status for a person: the device had bad payloads, the store is up (once the
    # status file, rewritten every 0.5 s, has caught up with the last write)
    status_file = tmp / "data" / "collector-status.json"
    wait_for(lambda: json.loads(status_file.read_text())["sink"]["written"] == 800, 60, what="status: 800 written")
    r = subprocess.run([*MIERUKA, "status", "--config", str(cfg)], capture_output=True, text=True, cwd=REPO,
                       env={**os.environ, "COLUMNS": "160"})
    assert "m1" in r.stdout and "bad_payload 2" in r.stdout and "InfluxStore" in r.stdout, r.stdout
    snap = json.loads(subprocess.run([*MIERUKA, "status", "--config", str(cfg), "--json"], capture_output=True,
                                     text=True, cwd=REPO).stdout)
    assert snap["sink"]["written"] == 800 and snap["buffer"]["readings"] == 0
    col.stop()
    assert "bad MQTT payload on meters/m1/data" in (tmp / "collect.log").read_text()


@pytest.mark.slow
def test_influxd_killed_for_10_s_mid_stream_count_stays_exact(servers):
    tmp, ix, mq, procs = servers
    col = Collector(site_toml(tmp, mq.url, ix.url), tmp / "collect.log").start()
    procs.append(col)
    status_file = tmp / "data" / "collector-status.json"
    wait_for(lambda: "MQTT subscribed" in (tmp / "collect.log").read_text(), 60, what="subscribed")
    killed = threading.Event()
    # 15 s of messages; the last 450 only once influxd is down, however slowly this machine runs
    pub = Publisher(mq, 0, 600, rate=40, hold_at=150, hold=killed)
    pub.start()
    wait_for(lambda: ix.count() > 100, 60, what="first points")
    ix.kill()                                          # SIGKILL: no goodbye
    t_kill = time.monotonic()
    killed.set()
    wait_for(lambda: (lambda s: s["sink"]["up"] is False and s["buffer"]["readings"] > 0)(
        json.loads(status_file.read_text())), 60, what="status: store down, readings buffered")
    time.sleep(max(0.0, 10 - (time.monotonic() - t_kill)))     # an outage of 10 s at least
    ix.start()                                         # same port, same data dir
    pub.join()
    exact(ix, 600, timeout_s=90)


@pytest.mark.slow
def test_broker_restart_and_persistent_session(servers):
    tmp, ix, mq, procs = servers
    col = Collector(site_toml(tmp, mq.url, ix.url), tmp / "collect.log").start()
    procs.append(col)
    wait_for(lambda: "MQTT subscribed" in (tmp / "collect.log").read_text(), 60, what="subscribed")
    mq.pub("meters/m1/data", messages(0, 100))
    exact(ix, 100)
    mq.stop()                                          # broker restarts (its persistence keeps our session)
    mq.start()
    wait_for(lambda: (tmp / "collect.log").read_text().count("MQTT subscribed") >= 2, 60, what="subscribed again")
    mq.pub("meters/m1/data", messages(100, 100))
    exact(ix, 200)
    col.stop()                                         # collector away: QoS 1 messages wait in its session
    mq.pub("meters/m1/data", messages(200, 100))
    col.start()
    exact(ix, 300)
    assert "session present: True" in (tmp / "collect.log").read_text()


@pytest.mark.slow
def test_collector_killed_with_a_full_buffer_loses_nothing(servers):
    tmp, ix, mq, procs = servers
    cfg = site_toml(tmp, mq.url, ix.url)
    col = Collector(cfg, tmp / "collect.log").start()
    procs.append(col)
    wait_for(lambda: "MQTT subscribed" in (tmp / "collect.log").read_text(), 60, what="subscribed")
    mq.pub("meters/m1/data", messages(0, 100))
    exact(ix, 100)
    ix.kill()
    pub = Publisher(mq, 100, 200, rate=100)
    pub.start()
    pub.join()
    status = tmp / "data" / "collector-status.json"
    wait_for(lambda: json.loads(status.read_text())["buffer"]["readings"] >= 300, 60, what="buffered readings")
    col.proc.send_signal(signal.SIGKILL)               # readings only on our disk now
    col.proc.wait()
    mq.pub("meters/m1/data", messages(300, 50))        # while the collector is dead: the broker keeps them
    ix.start()
    col.start()
    exact(ix, 350, timeout_s=90)


@pytest.mark.slow
def test_login_with_a_mosquitto_password_file_and_mutual_tls(tmp_path):
    tls = make_tls(tmp_path)
    mq = Mosquitto(tmp_path, passwords={"gw": "s3cret"}, tls=tls).start()
    ix = Influxd(tmp_path).start()
    col = None
    try:
        extra = (f'username = "gw"\npassword = "s3cret"\nca_file = "{tls["ca"]}"\n'
                 f'cert_file = "{tls["client_cert"]}"\nkey_file = "{tls["client_key"]}"')
        cfg = site_toml(tmp_path, f"mqtts://127.0.0.1:{mq.port}", ix.url, broker_extra=extra)
        col = Collector(cfg, tmp_path / "collect.log").start()
        wait_for(lambda: "MQTT subscribed" in (tmp_path / "collect.log").read_text(), 60, what="TLS subscribe")
        mq.pub("meters/m1/data", messages(0, 20), "--cafile", str(tls["ca"]), "--cert", str(tls["client_cert"]),
               "--key", str(tls["client_key"]), "-u", "gw", "-P", "s3cret")
        exact(ix, 20)
        col.stop()
        # a wrong password is refused and said so, the collector keeps trying (and does not crash)
        cfg.write_text(cfg.read_text().replace('password = "s3cret"', 'password = "wrong"'))
        col = Collector(cfg, tmp_path / "collect2.log").start()
        wait_for(lambda: "refused the connection" in (tmp_path / "collect2.log").read_text(), 60, what="refusal")
        assert col.proc.poll() is None
    finally:
        if col:
            col.kill()
        mq.stop()
        ix.stop()


@pytest.mark.slow
def test_example_config_shelly_status_and_influx_cli_interop(servers):
    tmp, ix, mq, procs = servers
    env = {"MIERUKA_MQTT_URL": mq.url, "MIERUKA_INFLUX_URL": ix.url, "MIERUKA_DATA_DIR": str(tmp / "data"),
           "MIERUKA_INFLUX_TOKEN": ""}
    col = Collector(EXAMPLE, tmp / "collect.log", env).start("--duration", "60")
    procs.append(col)
    wait_for(lambda: "MQTT subscribed" in (tmp / "collect.log").read_text(), 60, what="subscribed")
    status = {"id": 0, "a_current": 4.1, "a_voltage": 101.2, "a_act_power": 410.0, "a_pf": 0.98,
              "total_act_power": 1230.0, "total_aprt_power": 1300.0, "user_calibrated_phase": []}
    for dev in ("shellypro3em-aaa", "shellypro3em-bbb"):
        mq.pub(f"{dev}/status/em:0", [json.dumps(status)])
    mq.pub("shellypro3em-ccc/status/em:1", [json.dumps(status)])   # not subscribed: ignored
    wait_for(lambda: ix.count() == 2 * 5, 60, what="10 points")
    # the influx CLI (Debian influxdb-client) reads what mieruka wrote
    out = subprocess.run(["influx", "-host", "127.0.0.1", "-port", str(ix.port), "-database", "energy",
                          "-format", "csv", "-execute",
                          "SELECT value FROM energy WHERE channel = 'shellypro3em-bbb.total_act_power'"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    rows = out.stdout.strip().splitlines()
    assert rows[0] == "name,time,value" and len(rows) == 2 and rows[1].endswith(",1.23")


@pytest.mark.slow
def test_output_republishes_stored_readings_as_documented(servers):
    tmp, ix, mq, procs = servers
    cfg = site_toml(tmp, mq.url, ix.url, extra='[mqtt.output]\nprefix = "out/{site}"\n')
    sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(mq.port), "-t", "out/#", "-v", "-C", "4",
                            "-q", "1"], stdout=subprocess.PIPE, text=True)
    col = Collector(cfg, tmp / "collect.log").start()
    procs.append(col)
    try:
        wait_for(lambda: "MQTT subscribed" in (tmp / "collect.log").read_text(), 60, what="subscribed")
        mq.pub("meters/m1/data", messages(0, 2))
        out, _ = sub.communicate(timeout=60)
    finally:
        sub.kill()
    got = {}
    for line in out.splitlines():
        topic, payload = line.split(" ", 1)
        got.setdefault(topic, []).append(json.loads(payload))
    assert set(got) == {"out/e2e_test/m1.power/power_kw", "out/e2e_test/m1.energy/energy_kwh"}
    first = got["out/e2e_test/m1.power/power_kw"][0]
    assert first == {"time": "2026-05-28T20:26:40.000Z", "channel": "m1.power", "quantity": "power_kw", "unit": "kW",
                     "value": 1.0, "quality": "ok", "meter": "m1"}
