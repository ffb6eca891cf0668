"""MQTT input: subscribe to meters' topics, decode, emit readings.

Input seam: `async run(emit)`.  Delivery guarantee, end to end:

- QoS 1 and a persistent session (`clean_session = false`, fixed client id): the
  broker keeps our subscriptions and queues messages while we are away;
- `manual_ack`: a message is acknowledged (PUBACK) only after the readings it
  carried were emitted and `emit` returned, which with the store-and-forward path
  (`durable_emit`) means: fsynced into the disk buffer.  Killed before that, the
  broker still has the message and sends it again.  A resend stores nothing twice
  when the message carries its own time (Shelly NotifyStatus `ts`, Tasmota `Time`,
  JSON `time_path`); messages without a time are stamped on receipt.

paho runs its network loop in its own thread; `on_message` only queues the raw
message, decoding happens on the event loop in batches (one fsync per batch).
A bad payload is counted per device and logged with its topic (at most once per
topic per `bad_payload_log_every_s`), acknowledged, and never stops anything.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import re
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import paho.mqtt.client as mqtt

from mieruka.models import ChannelInfo, Quality, ReadingBatch
from mieruka.quantities import QUANTITIES
from mieruka.errors import ConfigError
from mieruka.ids import clean_channel_id

from .inputs import Input
from .mqtt_config import Broker, MqttSection, Subscription, load_mqtt
from .mqtt_decoders import BadPayload, Decoded, ShellyDecoder, decode_json, decode_tasmota

log = logging.getLogger(__name__)
_NOT_CLIENT_ID = re.compile(r"[^A-Za-z0-9_.:\-\u3040-\u30ff\u4e00-\u9fff]")
MAX_BATCH_MESSAGES = 5000
MAX_PAYLOAD_BYTES = 1 << 20          # a meter message is a few kB; anything this big is not one
EARLIEST_MS = 946_684_800_000        # 2000-01-01 UTC: a message time before it is a clock never set
MAX_AHEAD_S = 86_400                 # a message time over a day ahead of the gateway is a wrong clock


def _show_ms(t_ms: int, tz) -> str:
    """A message time in the site's zone, or the raw number when no calendar holds it."""
    import datetime as dt
    try:
        return dt.datetime.fromtimestamp(t_ms / 1000, tz).isoformat(timespec="seconds")
    except (OverflowError, OSError, ValueError):
        return f"{float(t_ms):.4g} ms since 1970"


@dataclass
class DeviceStats:
    """Per MQTT device (same field names as the Modbus device stats where they mean the same)."""

    device: str
    messages: int = 0
    readings: int = 0
    errors: Counter = field(default_factory=Counter)     # kind -> count (bad_payload)
    last_success: float | None = None                    # epoch s of the last decoded message
    last_latency_s: float | None = None                  # receive time minus the message's own time
    problem: str | None = None
    problem_since: float | None = None
    # the Modbus device stats' names, so that summaries can treat both alike
    missed_slots: int = 0
    bad_fields: dict = field(default_factory=dict)

    @property
    def polls(self) -> int:
        return self.messages + self.errors["bad_payload"]

    @property
    def ok_polls(self) -> int:
        return self.messages


@dataclass
class BrokerStats:
    broker: str
    connected: bool = False
    subscribed: bool = False          # every subscription of this connection acknowledged (SUBACK)
    connects: int = 0
    disconnects: int = 0
    messages: int = 0
    last_error: str | None = None


def make_client(b: Broker, client_id: str) -> mqtt.Client:
    """A paho 2.x client for a broker: MQTT 3.1.1, persistent session unless
    `clean_session`, manual acks, TLS and login from the config."""
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=b.clean_session,
                    manual_ack=True)
    if b.user:
        c.username_pw_set(b.user, b.password or None)
    if b.tls:
        c.tls_set(ca_certs=b.ca_file, certfile=b.cert_file, keyfile=b.key_file, cert_reqs=ssl.CERT_REQUIRED)
        if b.tls_insecure:
            c.tls_insecure_set(True)
    c.reconnect_delay_set(b.reconnect_min_s, b.reconnect_max_s)
    return c


def _why(e: BaseException) -> str:
    """An OSError/SSLError in words with the file it names, if any."""
    if isinstance(e, OSError) and e.strerror:
        return f"{e.filename}: {e.strerror}" if e.filename else e.strerror
    return str(e) or type(e).__name__


class _Templates:
    """Fills `{device}`, `{field}`, `{topic}`, `{l0}`.. in channel/meter templates."""

    def __init__(self, site: str) -> None:
        self.site = site

    def fill(self, template: str, topic: str, device: str, field_: str = "") -> str:
        levels = topic.split("/")
        values = {"device": device, "field": field_, "site": self.site, "topic": topic.replace("/", "_"),
                  **{f"l{i}": (levels[i] if i < len(levels) else "") for i in range(10)}}
        return clean_channel_id(template.format(**values))


class MqttInput(Input):
    """Meter messages from the brokers and subscriptions of the `[mqtt]` table."""

    name = "mqtt"
    durable_emit = True     # ask the runner for an emit that returns after the disk buffer's fsync

    def __init__(self, cfg, section: MqttSection | None = None, *, on_channels=None) -> None:
        self.cfg = cfg
        self.section = section or load_mqtt(cfg)
        if self.section is None:
            raise ValueError("no [mqtt] section")
        self.tz = cfg.tz
        self.on_channels = on_channels
        self.templates = _Templates(cfg.site.name)
        self.shelly = ShellyDecoder()
        self.stats: dict[str, DeviceStats] = {}
        self.brokers = {b.id: BrokerStats(b.id) for b in self.section.brokers}
        self.bad_payloads = 0
        self.clock_errors = 0            # messages whose own time was impossible (stamped on receipt)
        self.emit_errors = 0
        self.unmatched = 0
        self._unmatched_seen: set[str] = set()
        self.messages = 0
        self.readings = 0
        self._infos: dict[str, ChannelInfo] = {}
        self._last_recv_ms: dict[str, int] = {}
        self._closing = False
        self._bad_log: dict[str, tuple[float, int]] = {}
        self._queue: list[tuple[str, str, bytes, int, int, float, bool]] = []
        self.retained_skipped = 0        # retained messages without a time of their own, not taken
        self._retained_seen: set[str] = set()
        self._lock = threading.Lock()
        self.clients: dict[str, mqtt.Client] = {}

    @classmethod
    def from_site(cls, cfg, options=None) -> "MqttInput | None":
        """The `[mqtt]` input of a site, or None when the site has no `[mqtt]` table."""
        section = load_mqtt(cfg)
        return None if section is None else cls(cfg, section)

    def channel_infos(self) -> list[ChannelInfo]:
        return list(self._infos.values())

    def check(self) -> None:
        """Build each broker's client (login, TLS files) and the output as `run` would,
        without connecting; a file or TLS problem becomes a ConfigError naming the broker."""
        where = str(self.cfg.source or "<config>")
        for i, b in enumerate(self.section.brokers):
            try:
                make_client(b, f"mieruka-check-{i}")
            except (OSError, ssl.SSLError, ValueError) as e:
                raise ConfigError(f"{where}: mqtt.brokers[{i}:{b.id}]: {_why(e)}") from None
        try:
            out = self.output(lambda: {})
        except (OSError, ssl.SSLError, ValueError) as e:
            raise ConfigError(f"{where}: mqtt.output: {_why(e)}") from None
        if out is not None:
            del out          # built, never started: nothing to close

    def output(self, channel_infos):
        """The `[mqtt.output]` publisher of stored readings, when enabled."""
        if self.section.output is None or not self.section.output.enabled:
            return None
        from .mqtt_output import MqttOutput     # here: mqtt_output imports make_client from this module
        return MqttOutput(self.cfg, self.section, channel_infos)

    # ---------------------------------------------------------- paho thread
    def _subs(self, broker_id: str) -> list[Subscription]:
        first = self.section.brokers[0].id
        return [s for s in self.section.subscriptions if (s.broker or first) == broker_id]

    def _client(self, b: Broker, loop: asyncio.AbstractEventLoop, wake: asyncio.Event) -> mqtt.Client:
        cid = b.client_id or _NOT_CLIENT_ID.sub("-", f"mieruka-{self.cfg.site.name}-{b.id}")[:64]
        c = make_client(b, cid)
        st = self.brokers[b.id]
        subs = self._subs(b.id)
        pending: dict[int, str] = {}      # SUBSCRIBE message id -> topic, until the broker acknowledges

        def on_connect(client, userdata, flags, rc, props):
            if rc.is_failure:
                st.last_error = f"connect refused: {rc}"
                log.error("MQTT broker %s (%s) refused the connection: %s", b.id, b.url, rc)
                return
            st.connected, st.connects, st.subscribed = True, st.connects + 1, not subs
            log.info("MQTT connected to %s (session present: %s)", b.url, flags.session_present)
            pending.clear()
            for s in subs:     # again on every connect: harmless with a kept session, needed without
                rc_, mid = client.subscribe(s.topic, qos=b.qos)
                pending[mid] = s.topic

        def on_subscribe(client, userdata, mid, reason_codes, props):
            # a broker can refuse a subscription (ACL: SUBACK 0x80): said, not silently missing data
            topic = pending.pop(mid, None)
            if topic is None:
                return
            refused = [rc for rc in reason_codes if rc.is_failure]
            if refused:
                st.last_error = f"subscription to {topic} refused: {refused[0]}"
                log.error("MQTT broker %s (%s) refused the subscription to %s: %s", b.id, b.url, topic, refused[0])
                pending[-1] = topic       # this connection never counts as fully subscribed
            elif not pending:
                st.subscribed = True
                log.info("MQTT subscribed on %s (%d topics)", b.url, len(subs))

        def on_disconnect(client, userdata, flags, rc, props):
            if st.connected and not self._closing:
                log.warning("MQTT disconnected from %s (%s); reconnecting", b.url, rc)
            st.connected = st.subscribed = False
            st.disconnects += 1
            st.last_error = f"disconnected: {rc}"

        def on_message(client, userdata, msg):
            with self._lock:
                self._queue.append((b.id, msg.topic, msg.payload, msg.mid, msg.qos, time.time(), bool(msg.retain)))
                n = len(self._queue)
            if n == 1 or n >= MAX_BATCH_MESSAGES:
                loop.call_soon_threadsafe(wake.set)

        def on_connect_fail(client, userdata):
            # the broker down or unreachable: said once per outage, and in the status file
            if st.last_error is None or not st.last_error.startswith("cannot connect"):
                log.warning("MQTT broker %s (%s) cannot be reached; retrying every %g-%g s (readings wait in the "
                            "broker's queue for our persistent session)", b.id, b.url, b.reconnect_min_s,
                            b.reconnect_max_s)
            st.connected = False
            st.last_error = f"cannot connect to {b.url} (broker down or unreachable)"

        c.on_connect, c.on_disconnect, c.on_message = on_connect, on_disconnect, on_message
        c.on_subscribe = on_subscribe
        c.on_connect_fail = on_connect_fail
        return c

    # ------------------------------------------------------------ decoding
    def _bad(self, topic: str, device: str, reason: str) -> None:
        self.bad_payloads += 1
        st = self.stats.setdefault(device, DeviceStats(device))
        st.errors["bad_payload"] += 1
        st.problem, st.problem_since = f"bad payload: {reason}", st.problem_since or time.time()
        last, suppressed = self._bad_log.get(topic, (0.0, 0))
        now = time.monotonic()
        if now - last >= self.section.bad_payload_log_every_s:
            extra = f" ({suppressed} more since the last report)" if suppressed else ""
            log.warning("bad MQTT payload on %s: %s%s", topic, reason, extra)
            self._bad_log[topic] = (now, 0)
        else:
            self._bad_log[topic] = (last, suppressed + 1)

    def _channel(self, sub: Subscription, topic: str, device: str, fname: str, quantity: str,
                 template: str | None = None) -> str:
        cid = self.templates.fill(template or sub.channel, topic, device, fname)
        if cid not in self._infos:
            self._infos[cid] = ChannelInfo(id=cid, quantity=quantity, unit=QUANTITIES[quantity].unit,
                                           equipment_kind=sub.equipment_kind, system=sub.system,
                                           equipment=sub.equipment,
                                           meter=self.templates.fill(sub.meter, topic, device, fname))
            self._new_channels = True
        return cid

    def _clock(self, device: str, topic: str, t_ms: int | None, t_recv: float) -> int | None:
        """The message's own time, or None (stamp on receipt) when no meter clock can be
        right: before 2000 (a device that never got its time: 1970, year 0) or more than
        `MAX_AHEAD_S` ahead of the gateway.  Stored at such a time a reading would be out
        of sight (or out of range of a 64-bit time), and a far-future one would make
        everything before it look old."""
        if t_ms is None:
            return None
        recv_ms = int(t_recv * 1000)
        if EARLIEST_MS <= t_ms <= recv_ms + MAX_AHEAD_S * 1000:
            return t_ms
        if recv_ms < EARLIEST_MS <= t_ms < (1 << 53):   # the gateway's clock is the one not set (no RTC, no NTP yet)
            return t_ms
        st = self.stats.setdefault(device, DeviceStats(device))
        st.errors["clock"] += 1
        self.clock_errors += 1
        shown = _show_ms(t_ms, self.tz)
        self._clock_problem = f"device clock wrong: message time {shown}"
        last, suppressed = self._bad_log.get("clock:" + topic, (0.0, 0))
        now = time.monotonic()
        if now - last >= self.section.bad_payload_log_every_s:
            extra = f" ({suppressed} more since the last report)" if suppressed else ""
            log.warning("MQTT message on %s carries the time %s, which no meter clock can have (before 2000 "
                        "or over %d h ahead of this gateway): stamped on receipt instead%s", topic, shown,
                        MAX_AHEAD_S // 3600, extra)
            self._bad_log["clock:" + topic] = (now, 0)
        else:
            self._bad_log["clock:" + topic] = (last, suppressed + 1)
        return None

    def _decode(self, sub: Subscription, topic: str, payload: bytes, t_recv: float, rows: list) -> bool:
        """Append (time ms, channel, value) rows; True when they were stamped on receipt."""
        levels = topic.split("/")
        if sub.decoder == "json":
            wild = [lv for lv, f in zip(levels, sub.topic.split("/")) if f == "+"]
            device = self.templates.fill(sub.device, topic, "") if sub.device else (wild[0] if wild else topic)
        else:   # Shelly: the prefix (device id); Tasmota: tele/<topic>/SENSOR
            device = levels[-2] if sub.decoder == "tasmota" and len(levels) >= 2 else levels[0]
        if len(payload) > MAX_PAYLOAD_BYTES:
            self._bad(topic, device, f"{len(payload)} bytes, over the {MAX_PAYLOAD_BYTES} a meter message can be")
            return False
        try:
            if sub.decoder == "shelly":
                d = self.shelly(topic, payload)
            elif sub.decoder == "tasmota":
                d = decode_tasmota(topic, payload, self.tz)
            else:
                t_ms, vals = decode_json(payload, sub.mapping, sub.time_path, sub.time_format, self.tz)
                d = Decoded(device, t_ms, [])
                for i, v in vals:
                    m = sub.mapping[i]
                    d.values.append((m.path, m.quantity, v, m.channel))
        except BadPayload as e:
            self._bad(topic, device, str(e))
            return False
        device = d.device
        self._clock_problem = None
        d.time_ms = self._clock(device, topic, d.time_ms, t_recv)
        t_ms = d.time_ms if d.time_ms is not None else int(t_recv * 1000)
        keep = set(sub.fields) if sub.fields and sub.decoder != "json" else None
        n0 = len(rows)
        for fname, quantity, v, *template in d.values:
            if keep is None or fname in keep:
                rows.append((t_ms, self._channel(sub, topic, device, fname, quantity, *template), v))
        st = self.stats.setdefault(device, DeviceStats(device))
        st.messages += 1
        st.readings += len(rows) - n0
        st.last_success = t_recv
        if self._clock_problem:          # the readings are kept (at receipt time), the clock is the problem
            st.problem, st.problem_since = self._clock_problem, st.problem_since or t_recv
        else:
            st.problem = st.problem_since = None
        if d.time_ms is not None:
            st.last_latency_s = max(0.0, t_recv - d.time_ms / 1000)
        return d.time_ms is None

    def _skip_retained(self, topic: str) -> None:
        self.retained_skipped += 1
        if topic not in self._retained_seen and len(self._retained_seen) < 1000:
            self._retained_seen.add(topic)
            log.warning("retained message on %s carries no time of its own: not stored (the broker sends it "
                        "again at every subscribe, and its value may be old); the device's live messages are",
                        topic)

    def decode_messages(self, messages: list) -> ReadingBatch:
        """Decode queued messages into one batch (event loop thread)."""
        rows: list[tuple[int, str, float]] = []
        recv_rows: list[int] = []        # rows stamped on receipt (the message had no time)
        for m in messages:
            broker_id, topic, payload, _mid, _qos, t_recv = m[:6]
            retained = len(m) > 6 and m[6]
            matched = False
            for sub in self._subs(broker_id):
                if mqtt.topic_matches_sub(sub.topic, topic):
                    matched = True
                    n0 = len(rows)
                    try:
                        stamped = self._decode(sub, topic, payload, t_recv, rows)
                    except Exception as e:      # one odd message must never stop the input (nor come back
                        del rows[n0:]           # for ever: it is acknowledged like any bad payload)
                        log.debug("decoding a message on %s failed", topic, exc_info=True)
                        self._bad(topic, topic.split("/")[0], f"cannot be decoded ({type(e).__name__}: {e})")
                        continue
                    if stamped and retained:
                        # the broker replays a retained message at every subscribe (every reconnect):
                        # without a time of its own it would be stored again, stamped "now", each time,
                        # with a value that may be hours old; the device's next live message counts
                        del rows[n0:]
                        self._skip_retained(topic)
                    elif stamped:
                        recv_rows.extend(range(n0, len(rows)))
            if not matched:     # e.g. a subscription an earlier config left in the persistent session
                self.unmatched += 1
                if topic not in self._unmatched_seen and len(self._unmatched_seen) < 1000:
                    self._unmatched_seen.add(topic)
                    log.warning("ignoring messages on %s: no subscription in the config matches it (left in the "
                                "broker's session by an earlier config? a clean_session start clears it)", topic)
        self.messages += len(messages)
        self.readings += len(rows)
        if not rows:
            return ReadingBatch.empty()
        # Two messages of one channel in the same millisecond would be one point in
        # InfluxDB (one per series and time): receipt stamps are kept strictly increasing.
        for i in recv_rows:
            t_ms, ch_, v_ = rows[i]
            last = self._last_recv_ms.get(ch_, 0)
            if t_ms <= last:
                t_ms = last + 1
                rows[i] = (t_ms, ch_, v_)
            self._last_recv_ms[ch_] = t_ms
        t, ch, v = zip(*rows)
        batch = ReadingBatch(np.array(t, np.int64).astype("datetime64[ms]"), np.array(ch, object),
                             np.array(v, np.float64), np.zeros(len(rows), np.uint8))
        # values no meter can produce: flagged as the Modbus input and recordings do (mieruka.quantities)
        lim = {cid: QUANTITIES[self._infos[cid].quantity] for cid in set(ch)}
        lo = np.array([lim[c].lo for c in ch])
        hi = np.array([lim[c].hi for c in ch])
        bad = ~((batch.value >= lo) & (batch.value <= hi)) & ~np.isnan(batch.value)
        if bad.any():
            batch.quality[bad] = Quality.OUT_OF_RANGE
            batch.value[bad] = np.nan
        return batch

    # ------------------------------------------------------------------ run
    async def run(self, emit) -> None:
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        for b in self.section.brokers:
            c = self._client(b, loop, wake)
            self.clients[b.id] = c
            c.connect_async(b.host, b.port, keepalive=b.keepalive_s)
            c.loop_start()
        try:
            while True:
                await wake.wait()
                wake.clear()
                with self._lock:
                    messages, self._queue = self._queue, []
                if not messages:
                    continue
                self._new_channels = False
                batch = self.decode_messages(messages)
                if self._new_channels and self.on_channels is not None:
                    self.on_channels(self.channel_infos())       # saved before the readings that use them
                while len(batch):
                    try:
                        r = emit(batch)
                        if inspect.isawaitable(r):
                            await r
                        break
                    except Exception as e:    # disk full or failing: keep the messages unacknowledged, retry
                        self.emit_errors += 1
                        if self.emit_errors == 1 or self.emit_errors % 60 == 0:
                            log.error("cannot buffer MQTT readings (%d times so far), messages stay "
                                      "unacknowledged and are retried: %s", self.emit_errors, e)
                        await asyncio.sleep(1.0)
                # only now: the readings are in the buffer (or, without one, with the runner)
                for broker_id, _topic, _payload, mid, qos, *_ in messages:
                    if qos > 0:
                        self.clients[broker_id].ack(mid, qos)
                for b in self.brokers.values():
                    b.messages += sum(1 for m in messages if m[0] == b.broker)
        finally:
            self.close()

    def close(self) -> None:
        self._closing = True
        clients, self.clients = self.clients, {}
        for c in clients.values():
            c.disconnect()
            c.loop_stop()
