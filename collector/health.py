"""Collector health: Prometheus metrics on a loopback port and a status snapshot
file for `mieruka status`.

Metrics are read from the live stats objects at scrape time (a custom collector:
nothing to keep in sync).  Names:

- `mieruka_input_readings_total{input}` (counter) and
  `mieruka_input_readings_per_second{input}` (gauge, over the last snapshot interval)
- `mieruka_errors_total{kind}`: bad_payload, clock, timeout, exception, out_of_range, stale,
  error (device readings flagged), sink_write_failure, sink_rejected, buffer_dropped,
  buffer_write_failure (the disk buffer could not be written: disk full?)
- `mieruka_buffer_readings`, `mieruka_buffer_bytes`, `mieruka_buffer_oldest_age_seconds`,
  `mieruka_buffer_dropped_total`
- `mieruka_sink_written_total`, `mieruka_sink_last_success_timestamp_seconds`, `mieruka_sink_up`
- `mieruka_device_latency_seconds{device}` (Modbus: poll latency; MQTT: receive time
  minus the message's own time), `mieruka_device_last_success_timestamp_seconds{device}`,
  `mieruka_device_errors_total{device,kind}`
- `mieruka_mqtt_connected{broker}`

The snapshot (`<data_dir>/collector-status.json`) is rewritten atomically every
`interval_s` seconds with the same facts in a form people read.  Extra sections
are added with `add_extra`: the live demand period (`demand`, collector/live_demand.py)
and, wired in by the `collect` command, the alarm delivery (`notify`, with its
`mieruka_notify_*` metrics from mieruka/service/notify.py).
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from collections import Counter
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from .inputs import Input

log = logging.getLogger(__name__)
STATUS_FILE = "collector-status.json"


def _errors(st) -> dict[str, int]:
    e = getattr(st, "errors", None) or {}
    return {k: int(v) for k, v in dict(e).items() if v}


class Health:
    """Reads: the inputs (`name`, `stats` device dicts, MQTT `brokers`), the forwarder
    (sink stats + buffer).  `count(input, n)` is called for every emitted batch."""

    def __init__(self, *, inputs: list[Input], forwarder=None, status_path: str | Path | None = None,
                 interval_s: float = 2.0, site: str = "") -> None:
        self.inputs = list(inputs)
        self.forwarder = forwarder
        self.status_path = Path(status_path) if status_path else None
        self.interval_s = interval_s
        self.site = site
        self.readings: Counter = Counter({i.name: 0 for i in self.inputs})
        self.rates: dict[str, float] = {}
        self._last = (time.monotonic(), Counter(self.readings))
        self.started = time.time()
        self.stopped_at: float | None = None     # set on a clean stop: the last snapshot says so
        self.registry = CollectorRegistry()
        self.registry.register(self)
        self.server = None
        # more sections of the snapshot: name -> callable returning a JSON-able dict
        # (live demand; the notifier's delivery status, wired in by the `collect` command)
        self.extras: dict = {}

    def add_extra(self, name: str, snapshot, metrics=None) -> None:
        """Add a snapshot section and, optionally, a Prometheus collector (has `collect()`)."""
        self.extras[name] = snapshot
        if metrics is not None:
            self.registry.register(metrics)

    def count(self, input_name: str, n: int) -> None:
        self.readings[input_name] += n

    # ------------------------------------------------------------- sources
    def devices(self) -> list[tuple[str, object]]:
        return [(i.name, st) for i in self.inputs
                for st in i.stats.values()]

    def error_kinds(self) -> Counter:
        c: Counter = Counter()
        for _, st in self.devices():
            c.update(_errors(st))
        for i in self.inputs:
            if i.emit_errors:
                c["buffer_write_failure"] += i.emit_errors
        if self.forwarder is not None:
            c["sink_write_failure"] += self.forwarder.stats.failures
            c["sink_rejected"] += self.forwarder.stats.rejected
            c["buffer_dropped"] += self.forwarder.buffer.dropped
        return c

    # --------------------------------------------------------- prometheus
    def collect(self):
        now = time.time()
        c = CounterMetricFamily("mieruka_input_readings", "Readings emitted by each input", labels=["input"])
        g = GaugeMetricFamily("mieruka_input_readings_per_second", "Readings per second (last interval)",
                              labels=["input"])
        for name, n in self.readings.items():
            c.add_metric([name], n)
            g.add_metric([name], self.rates.get(name, 0.0))
        yield c
        yield g
        e = CounterMetricFamily("mieruka_errors", "Errors by kind", labels=["kind"])
        for kind, n in sorted(self.error_kinds().items()):
            e.add_metric([kind], n)
        yield e
        if self.forwarder is not None:
            buf, s = self.forwarder.buffer, self.forwarder.stats
            yield GaugeMetricFamily("mieruka_buffer_readings", "Readings in the disk buffer not yet confirmed by the store",
                                    value=buf.pending)
            yield GaugeMetricFamily("mieruka_buffer_bytes", "Disk used by the buffer", value=buf.size_bytes)
            oldest = buf.oldest_ms() if buf.pending else None
            yield GaugeMetricFamily("mieruka_buffer_oldest_age_seconds", "Age of the oldest buffered reading",
                                    value=0.0 if oldest is None else max(0.0, now - oldest / 1000))
            yield CounterMetricFamily("mieruka_buffer_dropped", "Readings dropped because the buffer was full",
                                      value=buf.dropped)
            yield CounterMetricFamily("mieruka_sink_written", "Readings the store confirmed", value=s.written)
            yield GaugeMetricFamily("mieruka_sink_last_success_timestamp_seconds", "Last confirmed store write",
                                    value=s.last_success or 0)
            yield GaugeMetricFamily("mieruka_sink_up", "1 when the last store write succeeded",
                                    value=0 if s.down_since else 1)
        lat = GaugeMetricFamily("mieruka_device_latency_seconds", "Poll latency (Modbus) or message delay (MQTT)",
                                labels=["device"])
        last = GaugeMetricFamily("mieruka_device_last_success_timestamp_seconds", "Last good poll or message",
                                 labels=["device"])
        derr = CounterMetricFamily("mieruka_device_errors", "Device errors by kind", labels=["device", "kind"])
        for _, st in self.devices():
            dev = str(getattr(st, "device", "?"))
            if getattr(st, "last_latency_s", None) is not None:
                lat.add_metric([dev], st.last_latency_s)
            if getattr(st, "last_success", None) is not None:
                last.add_metric([dev], st.last_success)
            for kind, n in _errors(st).items():
                derr.add_metric([dev, kind], n)
        yield lat
        yield last
        yield derr
        conn = GaugeMetricFamily("mieruka_mqtt_connected", "1 while connected to the broker", labels=["broker"])
        for i in self.inputs:
            for b in i.brokers.values():
                conn.add_metric([b.broker], 1 if b.connected else 0)
        yield conn

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        self.server = start_http_server(port, addr=host, registry=self.registry)
        log.info("metrics on http://%s:%d/metrics", host, port)

    # ----------------------------------------------------------- snapshot
    def snapshot(self) -> dict:
        now_m = time.monotonic()
        t0, before = self._last
        dt = max(1e-6, now_m - t0)
        self.rates = {k: (v - before.get(k, 0)) / dt for k, v in self.readings.items()}
        self._last = (now_m, Counter(self.readings))
        now = time.time()
        snap: dict = {"time": now, "pid": os.getpid(), "host": socket.gethostname(), "site": self.site,
                      "started": self.started, "stopped_at": self.stopped_at, "interval_s": self.interval_s,
                      "inputs": {k: {"readings": v, "per_second": round(self.rates.get(k, 0.0), 2)}
                                 for k, v in self.readings.items()},
                      "devices": [], "brokers": [], "errors": dict(self.error_kinds())}
        for name, st in self.devices():
            snap["devices"].append({"input": name, "device": str(getattr(st, "device", "?")),
                                    "latency_s": getattr(st, "last_latency_s", None),
                                    "last_success": getattr(st, "last_success", None),
                                    "problem": getattr(st, "problem", None), "errors": _errors(st),
                                    "missed_slots": getattr(st, "missed_slots", 0),
                                    "clock_steps": getattr(st, "clock_steps", 0)})
        for i in self.inputs:
            for b in i.brokers.values():
                snap["brokers"].append({"broker": b.broker, "connected": b.connected,
                                        "subscribed": getattr(b, "subscribed", None), "connects": b.connects,
                                        "messages": b.messages, "last_error": b.last_error})
        if self.forwarder is not None:
            buf, s = self.forwarder.buffer, self.forwarder.stats
            oldest = buf.oldest_ms() if buf.pending else None
            snap["buffer"] = {"dir": str(buf.dir), "readings": buf.pending, "bytes": buf.size_bytes,
                              "max_bytes": buf.max_bytes, "when_full": buf.when_full, "dropped": buf.dropped,
                              "oldest_age_s": None if oldest is None else max(0.0, now - oldest / 1000)}
            snap["sink"] = {"kind": type(self.forwarder.store).__name__, "written": s.written,
                            "failures": s.failures, "rejected": s.rejected, "last_success": s.last_success,
                            "up": s.down_since is None, "down_since": s.down_since, "last_error": s.last_error,
                            "recent_errors": s.recent_errors}
        for name, fn in self.extras.items():
            try:
                snap[name] = fn()
            except Exception as e:       # a section that fails must not cost the rest of the snapshot
                snap[name] = {"error": str(e)}
        return snap

    def write_snapshot(self) -> None:
        """Write the status file; a full disk is logged (once per episode), never raised:
        the status file must not stop collection or a clean shutdown."""
        if self.status_path is None:
            return
        snap = self.snapshot()
        tmp = self.status_path.with_suffix(".tmp")
        try:
            self.status_path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(snap, ensure_ascii=False, indent=1, default=str))
            os.replace(tmp, self.status_path)      # no fsync: a lost snapshot is rewritten in seconds
        except OSError as e:
            tmp.unlink(missing_ok=True)
            if not self._status_failing:
                log.warning("cannot write the status file %s: %s", self.status_path, e)
            self._status_failing = True
        else:
            self._status_failing = False

    _status_failing = False

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.write_snapshot()
            try:
                await asyncio.wait_for(stop.wait(), self.interval_s)
            except asyncio.TimeoutError:
                pass
        self.write_snapshot()
