"""Alarms that reach people: the demand stage with hysteresis, de-duplication, the
payload, webhook templates (Slack/Teams style), SMTP with STARTTLS and AUTH against
a real local server (aiosmtpd), a dead webhook that never blocks, `notify-test`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from helpers.net import wait_for
from helpers.receivers import SmtpServer, WebhookReceiver, dead_url
from helpers.servers import make_tls
from mieruka.collector.alarms import AlarmWatch, DemandAlarm
from mieruka.collector.live_demand import LiveDemand
from mieruka.errors import ConfigError
from mieruka.events import Event
from mieruka.models import Quality, ReadingBatch
from mieruka.service.notify import Notifier, payload
from mieruka.site import parse_site

PAYLOAD_KEYS = {"event", "site", "time", "severity", "message_ja", "message_en", "data"}


def site(tmp, extra: str = "", env: dict | None = None):
    text = textwrap.dedent(f"""
        [site]
        name = "テスト工場"
        timezone = "Asia/Tokyo"
        data_dir = "{tmp / 'data'}"
        [demand]
        target_kw = 100
        contract_kw = 120
        alarm_stages = [0.8, 0.9, 1.0]
        [alarms]
        demand_min_elapsed_s = 0
        retry_for_s = 30
        """) + textwrap.dedent(extra)
    import tomllib
    return parse_site(tomllib.loads(text), str(tmp / "site.toml"), env or {}, tmp / "site.toml")


# ------------------------------------------------------------------ hysteresis
def test_demand_stage_rises_at_once_and_falls_only_below_the_margin():
    a = DemandAlarm(100.0, (0.8, 0.9, 1.0), clear_margin=0.05, min_elapsed_s=0)
    seq = [70, 81, 79, 80.5, 77, 76, 74.9, 92, 89, 86, 84.9, 101, 99, 96, 40]
    changes = [(x, a.step(x, 600, "p")) for x in seq]
    got = [(x, c) for x, c in changes if c is not None]
    # 81 -> stage 1; 79/80.5/77/76 hold it (hysteresis: clear only below 75); 74.9 clears;
    # 92 -> 2; 89/86 hold; 84.9 -> 1; 101 -> 3; 99/96 hold; 40 -> 0
    assert got == [(81, (0, 1)), (74.9, (1, 0)), (92, (0, 2)), (84.9, (2, 1)), (101, (1, 3)), (40, (3, 0))]


def test_no_stage_in_the_first_seconds_of_a_period_but_clear_any_time():
    a = DemandAlarm(100.0, (0.8, 0.9, 1.0), clear_margin=0.05, min_elapsed_s=120)
    assert a.step(150, 30, "p") is None                 # a guess 30 s into the period
    assert a.step(150, 130, "p") == (0, 3)
    assert a.step(10, 140, "p") == (3, 0)


def test_flapping_load_gives_one_alarm_and_one_clear(tmp_path):
    """A load jumping around the first stage every poll, fed as readings through the
    collector's LiveDemand and AlarmWatch: one alarm, no flapping."""
    events: list[Event] = []
    cfg = site(tmp_path)
    live = LiveDemand(cfg, power_channel="main_power")
    watch = AlarmWatch(events.append, cfg.alarms, live=live)
    t0 = int(np.datetime64("2026-06-01T01:00:00", "ms").astype(np.int64))     # 10:00 JST, a period start
    for i in range(0, 1500, 5):                  # 25 min of 5-s polls: 76..84 kW, around the 80 kW stage
        kw = 80.0 + 4.0 * np.sin(i / 20.0)
        live.observe(ReadingBatch(np.array([t0 + i * 1000], "datetime64[ms]"), np.array(["main_power"], object),
                                  np.array([kw]), np.array([Quality.OK], np.uint8)))
        watch.check((t0 + i * 1000) / 1000)
    kinds = [e.event for e in events]
    assert kinds.count("demand_alarm") == 1 and "demand_clear" not in kinds, kinds
    assert events[0].data["stage"] == 1 and events[0].severity == "warning"
    st = live.status((t0 + 1495_000) / 1000)
    assert st["start"] == "2026-06-01T10:00:00+09:00" and st["end"] == "2026-06-01T10:30:00+09:00"
    assert 78 < st["predicted_kw"] < 82 and st["coverage"] > 0.8


# ------------------------------------------------------------------ payload, de-dup
def test_payload_has_exactly_the_documented_fields(tmp_path):
    cfg = site(tmp_path)
    p = payload(Event("meter_offline", "warning", "計測器 x 停止", "Meter x offline", {"device": "x"}, time_s=0), cfg)
    assert set(p) == PAYLOAD_KEYS
    assert p["time"] == "1970-01-01T09:00:00+09:00" and p["site"] == "テスト工場" and p["data"] == {"device": "x"}


def test_repeats_are_suppressed_until_the_condition_ends(tmp_path):
    with WebhookReceiver() as rx:
        cfg = site(tmp_path, f"""
            [[notify]]
            type = "webhook"
            url = "{rx.url}"
            """)
        n = Notifier(cfg).start()
        try:
            ev = lambda name, key, t: Event(name, "warning", "ja", "en", {}, key=key, time_s=t)   # noqa: E731
            assert n.submit(ev("meter_offline", "meter_offline:a", 100))
            assert not n.submit(ev("meter_offline", "meter_offline:a", 160))      # the same standing condition
            assert n.submit(ev("meter_offline", "meter_offline:b", 160))          # another meter
            assert n.submit(ev("meter_back", "meter_offline:a", 200))             # its end always goes out
            assert n.submit(ev("meter_offline", "meter_offline:a", 260))          # ... and re-arms it
            assert n.submit(ev("meter_offline", "meter_offline:b", 160 + 3601))   # repeat_after_min (60) passed
            wait_for(lambda: len(rx.posts) == 5, 60, what="5 posts")
        finally:
            n.close()
        got = [(e["event"], e["data"] == {}) for e in rx.events()]
        assert [g[0] for g in got] == ["meter_offline", "meter_offline", "meter_back", "meter_offline", "meter_offline"]
        assert n.status()["suppressed"] == {"meter_offline": 1}


# ------------------------------------------------------------------ templates
SLACK = '{"text": {{ ("*" ~ severity ~ "* " ~ message_ja) | tojson }}}'
TEAMS = ('{"@type": "MessageCard", "summary": {{ event | tojson }}, "title": {{ (site ~ ": " ~ event) | tojson }}, '
         '"text": {{ message_en | tojson }}, "themeColor": "{{ "D62728" if severity == "critical" else "FF7F0E" }}"}')


def test_templates_make_slack_and_teams_bodies(tmp_path):
    with WebhookReceiver() as slack, WebhookReceiver() as teams:
        cfg = site(tmp_path, f"""
            [[notify]]
            type = "webhook"
            name = "slack"
            url = "{slack.url}"
            template = '{SLACK}'
            [[notify]]
            type = "webhook"
            name = "teams"
            url = "{teams.url}"
            template = '''{TEAMS}'''
            headers = {{ X-Extra = "1" }}
            """)
        n = Notifier(cfg).start()
        n.submit(Event("demand_alarm", "critical", "デマンド限界 \"予測\" 120 kW", "Demand limit: 120 kW", {"stage": 3}))
        wait_for(lambda: slack.posts and teams.posts, 60, what="both posts")
        n.close()
    s = json.loads(slack.posts[0][2])
    assert s == {"text": '*critical* デマンド限界 "予測" 120 kW'}
    t = json.loads(teams.posts[0][2])
    assert t["title"] == "テスト工場: demand_alarm" and t["themeColor"] == "D62728" and t["text"] == "Demand limit: 120 kW"
    assert teams.posts[0][1]["X-Extra"] == "1"


@pytest.mark.parametrize("template, says", [
    ('{"text": {{ message_ja }}}', "not JSON"),                       # forgot tojson: caught at start
    ('{"text": {{ nosuchfield | tojson }}}', "notify\\[0\\].template: cannot render"),
    ('{"text": {{ payload.__class__.__mro__ }}}', "SecurityError"),   # the sandbox says no
    ('{% for %}', "notify\\[0\\].template: line 1"),
])
def test_a_bad_template_is_a_config_error_at_start(tmp_path, template, says):
    cfg = site(tmp_path, f"""
        [[notify]]
        type = "webhook"
        url = "http://127.0.0.1:9/x"
        template = '{template}'
        """)
    with pytest.raises(ConfigError, match=says):
        Notifier(cfg)


@pytest.mark.parametrize("extra, says", [
    ('type = "webhook"\nurl = "ftp://x"', r"notify\[0\]\.url: .ftp://x. is not an http"),
    ('type = "pager"', r"notify\[0\]"),
    ('type = "webhook"\nurl = "http://127.0.0.1:1/x"\nevents = ["demand_alrm"]', "unknown event 'demand_alrm'"),
    ('type = "smtp"\nhost = "mail.example.jp"\nsender = "a@b.c"\nto = []', "to"),
])
def test_notify_config_errors_name_the_field(tmp_path, extra, says):
    with pytest.raises(ConfigError, match=says):
        site(tmp_path, "[[notify]]\n" + extra + "\n")


# ------------------------------------------------------------------ never blocking
def test_a_dead_webhook_never_blocks_submit_and_is_counted(tmp_path):
    cfg = site(tmp_path, f"""
        [[notify]]
        type = "webhook"
        name = "dead"
        url = "{dead_url()}"
        timeout_s = 1
        """)
    cfg.alarms.queue_size = 5
    n = Notifier(cfg).start()
    try:
        for i in range(200):                         # each distinct: nothing de-duplicated
            n.submit(Event("buffer_dropping", "critical", "ja", "en", {"i": i}, key=f"k{i}"))
        st = n.status()["targets"][0]
        assert st["queued"] <= 5 and st["dropped"] >= 190           # bounded: the oldest went
        wait_for(lambda: n.status()["targets"][0]["failures"] >= 2, 60, what="retries counted")
        metrics = "".join(str(m) for m in n.collect())
        assert "mieruka_notify_failures" in metrics
    finally:
        n.close(0)
    assert "ConnectError" in n.status()["targets"][0]["last_error"]


# ------------------------------------------------------------------ SMTP + notify-test
@pytest.mark.slow
def test_notify_test_reaches_webhook_and_smtp_with_starttls(tmp_path):
    tls = make_tls(tmp_path)
    with WebhookReceiver() as rx, SmtpServer(tls) as smtp:
        cfg_path = tmp_path / "site.toml"
        cfg_path.write_text(textwrap.dedent(f"""
            [site]
            name = "テスト工場"
            data_dir = "{tmp_path / 'data'}"
            [[notify]]
            type = "webhook"
            url = "{rx.url}"
            [[notify]]
            type = "smtp"
            host = "127.0.0.1"
            port = {smtp.port}
            ca_file = "{tls['ca']}"
            username = "gw"
            password_env = "MIERUKA_SMTP_PASSWORD"
            from = "mieruka@factory.example.jp"
            to = ["energy@factory.example.jp", "boss@factory.example.jp"]
            """), encoding="utf-8")
        env = dict(os.environ, MIERUKA_SMTP_PASSWORD="s3cret-pw")
        r = subprocess.run([sys.executable, "-m", "mieruka.cli", "notify-test", "--config", cfg_path],
                           capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.count(": ok") == 2
        (ev,) = rx.events()
        assert set(ev) == PAYLOAD_KEYS and ev["event"] == "test"
        (mail,) = list(smtp.messages)
        assert mail[0] == "mieruka@factory.example.jp" and len(mail[1]) == 2 and smtp.logins == ["gw"]
        import email
        msg = email.message_from_string(mail[2])
        body = msg.get_payload(decode=True).decode("utf-8")
        assert "通知のテスト" in body and "test notification" in body
        assert "テスト工場" in str(email.header.make_header(email.header.decode_header(msg["Subject"])))

        # a dead webhook: exit 1, its line says why; the mail still goes
        cfg_path.write_text(cfg_path.read_text().replace(rx.url, dead_url()))
        run = lambda: subprocess.run([sys.executable, "-m", "mieruka.cli", "notify-test", "--config",  # noqa: E731
                                      cfg_path, "--retry-for", "0.5"], capture_output=True, text=True, env=env,
                                     timeout=60)
        r = run()
        assert r.returncode == 1 and r.stdout.count(": FAILED:") == 1, r.stdout + r.stderr
        assert "ConnectError" in r.stdout and len(smtp.messages) == 2
        # the server's certificate from a CA the gateway does not trust: refused before AUTH
        cfg_path.write_text(cfg_path.read_text().replace(f'ca_file = "{tls["ca"]}"\n', ""))
        r = run()
        assert r.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in r.stdout, r.stdout + r.stderr
        assert "Traceback" not in r.stderr and len(smtp.messages) == 2 and smtp.logins == ["gw", "gw"]

        # no password in the environment: a config error, one line, exit 2
        del env["MIERUKA_SMTP_PASSWORD"]
        r = subprocess.run([sys.executable, "-m", "mieruka.cli", "notify-test", "--config", cfg_path],
                           capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == 2 and "password_env" in r.stderr and "MIERUKA_SMTP_PASSWORD" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------ daily digest
def test_next_digest_time_and_window():
    import datetime as dt
    import zoneinfo

    from mieruka.service.digest import digest_window, next_run
    tz = zoneinfo.ZoneInfo("Asia/Tokyo")
    now = dt.datetime(2026, 4, 20, 9, 30, tzinfo=tz)
    assert next_run(now, "08:00") == dt.datetime(2026, 4, 21, 8, 0, tzinfo=tz)
    assert next_run(now, "10:15") == dt.datetime(2026, 4, 20, 10, 15, tzinfo=tz)
    assert digest_window(now) == (dt.datetime(2026, 4, 13, tzinfo=tz), dt.datetime(2026, 4, 20, tzinfo=tz))


@pytest.mark.slow
def test_findings_digest_from_the_store_reaches_the_webhook(tmp_path):
    """The digest over the last 7 days of a loaded store (known standby on the press
    line): the top findings with kWh, yen and t-CO2, through the notifier."""
    import datetime as dt

    from helpers.api_site import STANDBY_KW, loaded_site
    from mieruka.service.digest import DigestScheduler
    cfg, store, _ = loaded_site(tmp_path, days=14)
    store.close()
    with WebhookReceiver() as rx:
        cfg.notify = site(tmp_path, f"""
            [[notify]]
            type = "webhook"
            url = "{rx.url}"
            events = ["findings_digest"]
            """).notify
        n = Notifier(cfg).start()
        ev = DigestScheduler(cfg, n.submit).run_once(dt.datetime(2026, 4, 20, 8, 0, tzinfo=cfg.tz))
        wait_for(lambda: rx.posts, 60, what="the digest")
        n.close()
    assert ev is not None and ev.event == "findings_digest"
    (p,) = rx.events()
    assert set(p) == PAYLOAD_KEYS and p["data"]["start"] == "2026-04-13T00:00:00+09:00"
    d = p["data"]
    assert d["findings"] >= 1 and d["cost_jpy"] > 0 and d["co2_t"] > 0 and 1 <= len(d["top"]) <= 5
    assert any(f["kind"] == "standby" and f["channel"] == "press_power" for f in d["top"]), d["top"]
    assert "発見事項" in p["message_ja"] and "findings" in p["message_en"] and STANDBY_KW > 0


# ------------------------------------------------------------------ buffer, disk
def test_buffer_dropping_and_disk_low_are_raised_once(tmp_path):
    """A real disk buffer bounded to 64 kB that has to drop, and the data directory's
    real free space against a threshold it is always under (100 %)."""
    from mieruka.collector.buffer import DiskBuffer
    cfg = site(tmp_path)
    cfg.alarms.disk_low_pct, cfg.alarms.disk_low_mb = 100.0, 0.0
    (tmp_path / "data").mkdir()
    buf = DiskBuffer(tmp_path / "buf", max_mb=0.0625, fsync=False)
    events: list[Event] = []
    watch = AlarmWatch(events.append, cfg.alarms, buffer=buf, data_dir=tmp_path / "data")
    watch.check()
    n = 400
    for k in range(60):                       # ~ 60 × 400 readings, far beyond 64 kB
        t = np.arange(k * n, (k + 1) * n, dtype=np.int64).astype("datetime64[ms]")
        buf.append(ReadingBatch(t, np.full(n, "main_power", object), np.random.default_rng(k).random(n),
                                np.zeros(n, np.uint8)))
    assert buf.dropped > 0
    watch.check()
    watch.check()                             # nothing new dropped: nothing new raised
    kinds = [e.event for e in events]
    assert kinds.count("disk_low") == 1 and kinds.count("buffer_dropping") == 1, kinds
    drop = [e for e in events if e.event == "buffer_dropping"][0]
    assert drop.severity == "critical" and drop.data["dropped"] == buf.dropped
    disk = [e for e in events if e.event == "disk_low"][0]
    assert disk.data["free_mb"] > 0 and 0 <= disk.data["free_pct"] <= 100
    buf.close()


# ------------------------------------------------------------------ hostile text
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


_SENDERS: dict = {}


def _senders(tmp):
    """One Slack-template sender and one plain sender (built once: each holds an HTTP client)."""
    if not _SENDERS:
        from mieruka.service.notify import WebhookSender
        cfg = site(tmp, f"""
            [[notify]]
            type = "webhook"
            url = "http://127.0.0.1:9/x"
            template = '{SLACK}'
            """)
        _SENDERS.update(cfg=cfg, slack=WebhookSender(cfg.notify[0], cfg, "notify[0]"),
                        plain=WebhookSender(cfg.notify[0].model_copy(update={"template": None}), cfg, "n"))
    return _SENDERS


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=200), device=st.text(max_size=40))
def test_any_text_through_a_template_stays_valid_json(tmp_path_factory, text, device):
    """Meter ids and messages are free text (quotes, newlines, control characters,
    Japanese): the rendered body is always JSON and carries the text unchanged."""
    s = _senders(tmp_path_factory.getbasetemp())
    p = payload(Event("meter_offline", "warning", text, text, {"device": device}), s["cfg"])
    assert json.loads(s["slack"].body(p))["text"] == "*warning* " + text
    assert json.loads(s["plain"].body(p))["data"] == {"device": device}


def test_a_reload_keeps_the_stage_reached_and_applies_the_new_target(tmp_path):
    """SIGHUP with a new [demand] target: the stage already sent is not sent again; the
    new threshold decides from the next check on."""
    events: list[Event] = []
    cfg = site(tmp_path)
    live = LiveDemand(cfg, power_channel="main_power")
    watch = AlarmWatch(events.append, cfg.alarms, live=live)
    t0 = int(np.datetime64("2026-06-01T01:00:00", "ms").astype(np.int64))

    def feed(i, kw):
        live.observe(ReadingBatch(np.array([t0 + i * 1000], "datetime64[ms]"), np.array(["main_power"], object),
                                  np.array([kw]), np.array([Quality.OK], np.uint8)))
        watch.check((t0 + i * 1000) / 1000)
    for i in range(0, 300, 5):
        feed(i, 95.0)                                  # 95 kW on 100: stage 2
    assert [e.data["stage"] for e in events] == [2]
    cfg2 = site(tmp_path, "")
    cfg2.demand.target_kw = 200.0                      # the reloaded config
    live.target_kw, live.stages = 200.0, (0.8, 0.9, 1.0)
    live.tracker.target_kw = 200.0
    watch.reconfigure(cfg2.alarms, live)
    assert watch.demand.stage == 2                     # kept: nothing repeated
    for i in range(300, 400, 5):
        feed(i, 95.0)                                  # 95 kW on 200: below every stage -> clear
    assert [e.event for e in events] == ["demand_alarm", "demand_clear"]
