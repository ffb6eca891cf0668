"""Alarms that reach people: delivery of `mieruka.events.Event`s to the site's
`[[notify]]` targets (webhook, SMTP).  See docs/alarms.md.

    collector (AlarmWatch) --Event--> Notifier.submit --(de-dup)--> one bounded queue per target
                                                                     --> sender thread --> webhook / SMTP

- `submit` never blocks: it de-duplicates (a standing condition, same `key`, is not
  sent again before `[alarms] repeat_after_min` unless its end was sent in between)
  and puts the event on each interested target's bounded queue; when a queue is full
  its oldest event is dropped and counted.
- each target has its own sender thread, so a dead webhook delays nobody else; a
  failed send is retried with exponential back-off (tenacity) for `retry_for_s`,
  every failure counted (status + Prometheus `mieruka_notify_*`), then given up.
- the payload is exactly {"event", "site", "time", "severity", "message_ja",
  "message_en", "data"}; a webhook's optional body template (jinja2, sandboxed)
  turns it into what Slack, Teams, Discord or LINE WORKS expect.
"""
from __future__ import annotations

import datetime as dt
import email.message
import json
import logging
import os
import queue
import smtplib
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from ..errors import ConfigError
from ..events import CLEARS, SEVERITY_RANK, Event
from ..site import SiteConfig, SmtpTarget, WebhookTarget

log = logging.getLogger(__name__)


# --------------------------------------------------------------------- payload
def payload(ev: Event, site: SiteConfig) -> dict:
    """The event as every target gets it (JSON; time ISO 8601 in site time)."""
    return {"event": ev.event, "site": site.site.name,
            "time": dt.datetime.fromtimestamp(ev.time_s, site.tz).isoformat(timespec="seconds"),
            "severity": ev.severity, "message_ja": ev.message_ja, "message_en": ev.message_en,
            "data": _jsonable(ev.data)}


def _jsonable(x):
    return json.loads(json.dumps(x, default=str, ensure_ascii=False))


def test_event(site: SiteConfig) -> Event:
    return Event("test", "info", f"mieruka {site.site.name}: 通知のテストです。このメッセージが届けば設定は正しく動いています。",
                 f"mieruka {site.site.name}: test notification. If you read this, the target works.",
                 {"note": "sent by `mieruka notify-test`"}, key=f"test:{time.time()}")


class SendError(Exception):
    """A delivery attempt failed (retried)."""


# --------------------------------------------------------------------- senders
_ENV = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined, keep_trailing_newline=True)


class WebhookSender:
    """POST of the payload JSON, or of the target's template rendered over the payload
    (variables: every payload field, and `payload` itself; filter `tojson`)."""

    def __init__(self, target: WebhookTarget, cfg: SiteConfig, where: str) -> None:
        self.t = target
        self.name = target.name or _host(target.url)
        text = target.template
        if target.template_file is not None:
            path = cfg.resolve_path(target.template_file)
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise ConfigError(f"{where}.template_file: cannot read {path}: {e}") from None
        self.template = None
        if text is not None:
            try:
                self.template = _ENV.from_string(text)
            except TemplateError as e:
                raise ConfigError(f"{where}.template: line {getattr(e, 'lineno', '?')}: {e}") from None
            # rendered once at start: a template that cannot render, or that is not JSON
            # when JSON is sent, is a config error now rather than a lost alarm later
            try:
                body = self.body(payload(test_event(cfg), cfg))
            except Exception as e:        # undefined names, the sandbox's refusals, filters on wrong types
                raise ConfigError(f"{where}.template: cannot render: {type(e).__name__}: {e}") from None
            if "json" in target.content_type:
                try:
                    json.loads(body)
                except ValueError as e:
                    raise ConfigError(f"{where}.template: the rendered body is not JSON ({e}); "
                                      f"use the tojson filter for text, e.g. {{{{ message_ja | tojson }}}}") from None
        self.client = httpx.Client(timeout=target.timeout_s, follow_redirects=False)

    def body(self, p: dict) -> str:
        if self.template is None:
            return json.dumps(p, ensure_ascii=False)
        return self.template.render(payload=p, **p)

    def send(self, p: dict) -> None:
        headers = {"Content-Type": f"{self.t.content_type}; charset=utf-8", "User-Agent": "mieruka", **self.t.headers}
        try:
            r = self.client.post(self.t.url, content=self.body(p).encode("utf-8"), headers=headers)
        except httpx.HTTPError as e:
            raise SendError(f"{type(e).__name__}: {e}") from None
        if r.status_code >= 300:
            raise SendError(f"HTTP {r.status_code}: {r.text[:200]}")

    def close(self) -> None:
        self.client.close()


class SmtpSender:
    """Mail through SMTP with STARTTLS (certificate checked); the password from the env."""

    def __init__(self, target: SmtpTarget, cfg: SiteConfig, where: str, env: dict | None = None) -> None:
        self.t = target
        self.name = target.name or f"smtp:{target.host}"
        self.site = cfg.site.name
        env = os.environ if env is None else env
        self.password = None
        if target.password_env:
            if target.password_env not in env:
                raise ConfigError(f"{where}.password_env: the environment variable {target.password_env} is not set")
            self.password = env[target.password_env]
        self.ca = str(cfg.resolve_path(target.ca_file)) if target.ca_file else None
        if self.ca and not os.path.exists(self.ca):
            raise ConfigError(f"{where}.ca_file: no file {self.ca}")

    def message(self, p: dict) -> email.message.EmailMessage:
        m = email.message.EmailMessage()
        lang = self.t.language
        text = p["message_ja"] if lang != "en" else p["message_en"]
        m["Subject"] = f"{self.t.subject_prefix} [{p['severity']}] {p['site']}: {text}"[:300]
        m["From"] = self.t.sender
        m["To"] = ", ".join(self.t.to)
        lines = [p["message_ja"]] if lang in ("ja", "both") else []
        if lang in ("en", "both"):
            lines.append(p["message_en"])
        lines += ["", f"event: {p['event']}", f"site: {p['site']}", f"time: {p['time']}",
                  f"severity: {p['severity']}", "", json.dumps(p["data"], ensure_ascii=False, indent=1)]
        m.set_content("\n".join(lines))
        return m

    def send(self, p: dict) -> None:
        try:
            with smtplib.SMTP(self.t.host, self.t.port, timeout=self.t.timeout_s) as s:
                s.ehlo()
                if self.t.starttls:
                    s.starttls(context=ssl.create_default_context(cafile=self.ca))
                    s.ehlo()
                if self.t.username:
                    s.login(self.t.username, self.password or "")
                s.send_message(self.message(p))
        except (smtplib.SMTPException, OSError, ssl.SSLError) as e:
            raise SendError(f"{type(e).__name__}: {e}") from None

    def close(self) -> None:
        pass


def _host(url: str) -> str:
    return httpx.URL(url).host or url


# ------------------------------------------------------------------ per target
@dataclass
class TargetStats:
    sent: int = 0
    failures: int = 0              # failed attempts (each retry counts)
    given_up: int = 0              # events abandoned after retry_for_s
    dropped: int = 0               # events pushed out of a full queue
    last_success: float | None = None
    last_error: str | None = None
    last_error_time: float | None = None
    by_event: Counter = field(default_factory=Counter)


class TargetWorker:
    """One target: its bounded queue and its sender thread."""

    def __init__(self, sender, target, queue_size: int, retry_for_s: float) -> None:
        self.sender, self.target = sender, target
        self.name = sender.name
        self.q: queue.Queue = queue.Queue(maxsize=queue_size)
        self.retry_for_s = retry_for_s
        self.stats = TargetStats()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name=f"notify-{self.name}", daemon=True)

    def wants(self, ev: Event) -> bool:
        if ev.event == "test":
            return True
        return ev.event in self.target.events and SEVERITY_RANK[ev.severity] >= SEVERITY_RANK[self.target.min_severity]

    def put(self, p: dict) -> None:
        with self._lock:
            while True:
                try:
                    self.q.put_nowait(p)
                    return
                except queue.Full:
                    try:
                        self.q.get_nowait()       # the oldest goes: the newest state matters most
                        self.stats.dropped += 1
                    except queue.Empty:
                        pass

    def deliver(self, p: dict, stop: threading.Event | None = None, retry_for_s: float | None = None) -> bool:
        """Send with back-off until it works, `retry_for_s` passed or `stop` is set."""
        stop = stop or self._stop
        limit = self.retry_for_s if retry_for_s is None else retry_for_s

        def failed(rs) -> None:
            self._failed(rs.outcome.exception())

        retrying = Retrying(wait=wait_exponential(multiplier=0.5, max=60), reraise=True,
                            retry=retry_if_exception_type(SendError),
                            stop=stop_after_delay(limit) | (lambda rs: stop.is_set()),
                            sleep=lambda s: stop.wait(s), before_sleep=failed)
        try:
            for attempt in retrying:
                with attempt:
                    self.sender.send(p)
        except SendError as e:
            self._failed(e)
            self.stats.given_up += 1
            log.error("notify %s: gave up on %s after %.0f s: %s", self.name, p["event"], limit, e)
            return False
        except Exception as e:     # a bug in a template or sender must not kill the thread
            self._failed(e)
            self.stats.given_up += 1
            log.error("notify %s: %s not sent: %s", self.name, p["event"], e)
            return False
        self.stats.sent += 1
        self.stats.by_event[p["event"]] += 1
        self.stats.last_success = time.time()
        return True

    def _failed(self, e: BaseException) -> None:
        s = self.stats
        s.failures += 1
        s.last_error, s.last_error_time = str(e)[:300], time.time()
        if s.failures == 1 or s.failures % 20 == 0:
            log.warning("notify %s: delivery failed (%d failures so far), retrying with back-off: %s",
                        self.name, s.failures, e)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                p = self.q.get(timeout=0.5)
            except queue.Empty:
                continue
            self.deliver(p)

    def status(self) -> dict:
        s = self.stats
        return {"name": self.name, "type": self.target.type, "queued": self.q.qsize(), "sent": s.sent,
                "failures": s.failures, "given_up": s.given_up, "dropped": s.dropped,
                "last_success": s.last_success, "last_error": s.last_error, "last_error_time": s.last_error_time,
                "by_event": dict(s.by_event)}


# --------------------------------------------------------------------- notifier
class Notifier:
    """The site's targets; `submit(event)` is the collector's `EventSink`."""

    def __init__(self, cfg: SiteConfig, env: dict | None = None) -> None:
        self.cfg = cfg
        self.o = cfg.alarms
        where = str(cfg.source or "<config>")
        self.workers: list[TargetWorker] = []
        names: Counter = Counter()
        for i, t in enumerate(cfg.notify):
            w = f"{where}: notify[{i}]"
            sender = WebhookSender(t, cfg, w) if t.type == "webhook" else SmtpSender(t, cfg, w, env)
            names[sender.name] += 1
            if names[sender.name] > 1:
                sender.name = f"{sender.name}#{names[sender.name]}"
            self.workers.append(TargetWorker(sender, t, self.o.queue_size, self.o.retry_for_s))
        self._sent_at: dict[str, float] = {}       # key -> when it was last sent (de-dup)
        self._lock = threading.Lock()
        self.suppressed: Counter = Counter()         # event -> repeats not sent
        self.submitted: Counter = Counter()
        self.started = False

    def start(self) -> "Notifier":
        for w in self.workers:
            w.thread.start()
        self.started = True
        return self

    def close(self, timeout_s: float = 5.0) -> None:
        """Give queued events `timeout_s` to go out, then stop the senders."""
        end = time.monotonic() + timeout_s
        while any(w.q.qsize() for w in self.workers) and time.monotonic() < end:
            time.sleep(0.05)
        for w in self.workers:
            w._stop.set()
        for w in self.workers:
            if w.thread.is_alive():
                w.thread.join(max(0.1, end - time.monotonic()))
            w.sender.close()

    # ------------------------------------------------------------- events
    def submit(self, ev: Event) -> bool:
        """Queue an event for its targets (never blocks).  False when de-duplicated."""
        with self._lock:
            self.submitted[ev.event] += 1
            if ev.event in CLEARS:
                # the end of a condition always goes out, and re-arms its alarms
                base = ev.key.split(":", 1)
                stem = CLEARS[ev.event] + (":" + base[1] if len(base) > 1 else "")
                for k in [k for k in self._sent_at if k == stem or k.startswith(stem + ":")]:
                    del self._sent_at[k]
            else:
                last = self._sent_at.get(ev.key)
                repeat_s = self.o.repeat_after_min * 60.0
                if last is not None and (repeat_s == 0 or ev.time_s - last < repeat_s):
                    self.suppressed[ev.event] += 1
                    return False
                self._sent_at[ev.key] = ev.time_s
        p = payload(ev, self.cfg)
        log.info("event %s (%s): %s", ev.event, ev.severity, ev.message_en)
        for w in self.workers:
            if w.wants(ev):
                w.put(p)
        return True

    def send_now(self, ev: Event, retry_for_s: float = 10.0) -> dict[str, str | None]:
        """Send one event to every target right away (notify-test): target -> error or None."""
        p = payload(ev, self.cfg)
        out = {}
        for w in self.workers:
            ok = w.deliver(p, threading.Event(), retry_for_s)
            out[w.name] = None if ok else (w.stats.last_error or "failed")
        return out

    # ------------------------------------------------------------- health
    def status(self) -> dict:
        return {"targets": [w.status() for w in self.workers], "submitted": dict(self.submitted),
                "suppressed": dict(self.suppressed)}

    def collect(self):
        """Prometheus: mieruka_notify_{sent,failures,given_up,dropped}_total{target}, queue length."""
        fams = {k: CounterMetricFamily(f"mieruka_notify_{k}", d, labels=["target"]) for k, d in (
            ("sent", "Events delivered"), ("failures", "Failed delivery attempts (retried with back-off)"),
            ("given_up", "Events abandoned after retrying"), ("dropped", "Events pushed out of a full queue"))}
        q = GaugeMetricFamily("mieruka_notify_queue", "Events waiting for delivery", labels=["target"])
        for w in self.workers:
            for k, fam in fams.items():
                fam.add_metric([w.name], getattr(w.stats, k))
            q.add_metric([w.name], w.q.qsize())
        yield from fams.values()
        yield q
        sup = CounterMetricFamily("mieruka_notify_suppressed", "Repeats of a standing event not sent",
                                  labels=["event"])
        for e, n in self.suppressed.items():
            sup.add_metric([e], n)
        yield sup
