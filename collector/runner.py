"""The collector runner: inputs -> counters -> batches -> the store.

Seams (kept small on purpose, see docs/collector.md "Extending the runner"):

- an **input** is a `collector.inputs.Input`: `async run(emit)` calls `emit(batch)`
  with a `ReadingBatch` whenever it has readings (emit is synchronous and cheap: it
  only queues), `close()`, `channel_infos()` (metadata written to the store),
  `counters()` (counter channels -> wrap modulus) and `stats` (device id -> stats).
  The inputs a site needs are built from the registry `collector.inputs.INPUTS`.
- the **sink** is `open_store(cfg).write(batch)` unless another is given; the runner
  owns it: it batches whatever the inputs emitted and writes every
  `flush_interval_s` (or sooner past `max_batch` readings) in a worker thread so a
  slow disk never holds up a poll, and flushes what it holds on stop.
- `Runner.stats` / `Runner.device_stats()` are plain objects a health module reads.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mieruka.errors import MierukaError
from mieruka.models import Quality, ReadingBatch
from mieruka.quantities import counter_max_rate_per_s
from mieruka.site import SiteConfig, validate_section
from mieruka.store import Store, open_store

from mieruka.events import EventSink

from .alarms import AlarmWatch
from .counters import CounterTracker, flag_glitches
from .inputs import Input, build_inputs
from .live_demand import LiveDemand

log = logging.getLogger(__name__)


class CollectorOptions(BaseModel):
    """The `[collector]` section of the site config (all optional)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    flush_interval_s: float = Field(default=1.0, gt=0, description="how often readings are committed to the store")
    max_batch: int = Field(default=100_000, ge=1, description="commit sooner when this many readings wait")
    stale_after_s: float = Field(default=600.0, ge=0, description="same non-zero value this long -> stale (0: off)")
    recheck_bad_fields_s: float = Field(default=600.0, gt=0, description="re-probe fields that answered exceptions")
    request_per_field: list[str] = Field(default_factory=list, description="meter ids read one field per request")
    retention_check_s: float = Field(default=3600.0, gt=0)
    tcp_connection: Literal["per_meter", "per_gateway"] = Field(
        default="per_meter", description="one TCP connection per meter, or one shared per gateway host:port")
    # health (issue 5, collector/health.py): Prometheus metrics and the status file for `mieruka status`
    metrics_port: int = Field(default=9810, ge=0, le=65535, description="Prometheus metrics port (0: off)")
    metrics_host: str = Field(default="127.0.0.1", description="metrics listen address (loopback by default)")
    status_interval_s: float = Field(default=2.0, gt=0, description="how often the status file is rewritten")
    max_unbuffered: int = Field(default=500_000, ge=1, description="readings kept in memory while the disk "
                                "buffer refuses writes (disk full); beyond it the oldest are dropped, counted and logged")


@dataclass
class RunnerStats:
    written: int = 0
    flushes: int = 0
    write_errors: int = 0
    last_write: float | None = None            # epoch s of the last committed batch
    pending: int = 0                           # readings not (yet) in the disk buffer
    left_in_buffer: int = 0                    # at stop: buffered readings the store has not confirmed
    dropped_unbuffered: int = 0                # oldest readings dropped from memory: the disk refused them too long
    by_channel: dict[str, Counter] = field(default_factory=dict)   # channel -> quality name -> readings


async def cancel_and_wait(tasks: list[asyncio.Task], again_after_s: float = 1.0) -> None:
    """Cancel `tasks` and wait until every one has ended, cancelling again any that is
    still running after `again_after_s`: on Python < 3.12 `asyncio.wait_for` returns the
    inner result instead of raising when the cancellation lands in the same loop turn as
    that result (CPython gh-86296; pymodbus awaits every reply so), and the input's poll
    loop then just goes on; one cancel and an unbounded wait hung the stop."""
    for t in tasks:
        t.cancel()
    pending = {t for t in tasks if not t.done()}
    while pending:
        _, pending = await asyncio.wait(pending, timeout=again_after_s)
        for t in pending:
            t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)     # (their outcomes retrieved, none raised)


def prepare(cfg: SiteConfig, options: CollectorOptions | None = None) -> tuple[CollectorOptions, list[Input]]:
    """Everything `collect` builds before it polls, built without connecting: the
    `[collector]` options, every input of the registry constructed from the site
    config (Modbus register maps, their fields and read plans; MQTT brokers, TLS
    files, subscriptions and output) and each input's own `check()`.

    `mieruka collect` (through `Runner`) and `mieruka check` both call this, so
    a config `check` calls OK is one `collect` starts with.  Errors are
    ConfigErrors naming file and key; the caller runs the inputs or closes them."""
    options = options or validate_section(CollectorOptions, cfg, "collector") or CollectorOptions()
    inputs = build_inputs(cfg, options)
    try:
        for inp in inputs:
            inp.check()
    except BaseException:
        close_inputs(inputs)
        raise
    return options, inputs


def check_collect_config(cfg: SiteConfig) -> list[Input]:
    """`prepare` for `mieruka check`: the inputs, closed again, for its summary."""
    _, inputs = prepare(cfg)
    close_inputs(inputs)
    return inputs


def close_inputs(inputs: list[Input]) -> None:
    for inp in inputs:
        try:
            inp.close()
        except Exception:      # closing a never-started input must not hide the error being raised
            log.debug("closing %s failed", inp.name, exc_info=True)


def _mqtt_part(cfg: SiteConfig):
    """What the MQTT input depends on: a reload restarts it only when this changed."""
    return cfg.mqtt


def _max_rates(counters: dict, infos: list) -> dict[str, float | None]:
    """Counter channel -> the fastest it can run (its unit per second), from its quantity."""
    quantity = {i.id: i.quantity for i in infos}
    return {c: counter_max_rate_per_s(quantity[c]) if c in quantity else None for c in counters}


class Runner:
    def __init__(self, cfg: SiteConfig, inputs: list[Input] | None = None, store: Store | None = None,
                 options: CollectorOptions | None = None, on_event: EventSink | None = None,
                 health_extras: list[tuple] | None = None) -> None:
        self.cfg = cfg
        if inputs is None:
            self.options, self.inputs = prepare(cfg, options)
        else:
            self.options = options or validate_section(CollectorOptions, cfg, "collector") or CollectorOptions()
            self.inputs = inputs
        self.pipeline = None
        self.store = store
        self.stats = RunnerStats()
        self._pending: list[ReadingBatch] = []
        self._wake = asyncio.Event()
        self._tasks: dict[int, asyncio.Task] = {}      # id(input) -> its running task
        self.reloads = 0
        self._reload_lock = asyncio.Lock()
        self._closing = False
        self._meters = [m for m in cfg.meters if m.enabled]
        # live demand (the current period from the incomer's readings) and the alarms it and the
        # health raise: events go to `on_event` (the application layer's notifier), never further here
        self.live_demand = LiveDemand(cfg)
        self.on_event = on_event
        self.health_extras = list(health_extras or [])      # (name, snapshot fn, prometheus collector|None)
        self.alarms: AlarmWatch | None = None
        self._retention_ref: tuple[float, float] | None = None     # (wall, monotonic) at the last check
        self._retention_hold = 0.0       # monotonic time before which retention deletes nothing

    def device_stats(self) -> dict:
        out = {}
        for inp in self.inputs:
            out.update(inp.stats)
        return out

    def emit(self, batch: ReadingBatch) -> None:
        """Queue readings from an input (called on the event loop)."""
        self._pending.append(batch)
        self.stats.pending += len(batch)
        if self.stats.pending >= self.options.max_batch:
            self._wake.set()

    async def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        batch = ReadingBatch.concat(pending)
        try:
            # store-and-forward (issue 5): a durable append to the disk buffer; the pipeline's
            # forwarder writes to the store in order (counter offsets computed there) and drops
            # readings from the buffer only once the store confirmed them.
            await asyncio.to_thread(self.pipeline.forwarder.append, batch)
        except Exception as e:   # keep the readings and try again at the next flush
            over = len(batch) - self.options.max_unbuffered
            if over > 0:         # a gateway's memory is bounded too: the oldest go, counted
                batch = ReadingBatch(batch.time[over:], batch.channel[over:], batch.value[over:],
                                     batch.quality[over:])
                self.stats.pending -= over
                self.stats.dropped_unbuffered += over
                log.error("disk buffer still refuses writes: dropped the oldest %d readings kept in memory "
                          "(%d since start; [collector] max_unbuffered = %d)", over,
                          self.stats.dropped_unbuffered, self.options.max_unbuffered)
            self._pending.insert(0, batch)
            self.stats.write_errors += 1
            if self.stats.write_errors == 1 or self.stats.write_errors % 60 == 0:
                log.error("disk buffer write failed (%d times so far), readings kept in memory: %s",
                          self.stats.write_errors, e)
            return
        self.stats.pending -= len(batch)
        self.stats.flushes += 1
        self.account(batch)

    def account(self, batch: ReadingBatch) -> None:
        """Count committed readings (also called by the durable MQTT path, issue 5)."""
        self.stats.written += len(batch)
        self.stats.last_write = time.time()
        for ch, q in zip(batch.channel.tolist(), batch.quality.tolist()):
            self.stats.by_channel.setdefault(ch, Counter())[Quality(q).name.lower()] += 1

    async def run(self, duration_s: float | None = None, stop: asyncio.Event | None = None) -> RunnerStats:
        """Collect until `stop` is set or `duration_s` passed; flush and close the store."""
        own_store = self.store is None
        if own_store:
            self.store = open_store(self.cfg)
        infos = [i for inp in self.inputs for i in inp.channel_infos()]
        if infos:
            self.store.set_channels(infos)
        counters = {}
        for inp in self.inputs:
            counters.update(inp.counters())
        self.tracker = CounterTracker(counters, _max_rates(counters, infos))
        try:
            self.tracker.restore(self.store)
        except MierukaError as e:    # issue 5: an InfluxDB that is down at start must not stop collection
            log.warning("counter state not restored from the store (%s); counters resume from their next reading", e)
        stop = stop or asyncio.Event()
        # store-and-forward + health (issue 5): disk buffer -> forwarder -> store; metrics, status file
        from .forward import Pipeline
        self.pipeline = Pipeline(self.cfg, self.store, self.inputs,
                                 prepare=self._prepare,
                                 metrics_port=self.options.metrics_port, metrics_host=self.options.metrics_host,
                                 status_interval_s=self.options.status_interval_s, account=self.account,
                                 observers=[self.live_demand.observe] if self.live_demand.enabled else [])
        self.pipeline.health.add_extra("counters", self._counter_status)
        if self.live_demand.enabled:
            self.pipeline.health.add_extra("demand", self.live_demand.status)
        for name, snap, metrics in self.health_extras:
            self.pipeline.health.add_extra(name, snap, metrics)
        self.pipeline.start()
        alarm_task = None
        if self.on_event is not None:
            self.alarms = AlarmWatch(self.on_event, self.cfg.alarms, live=self.live_demand, devices=self.device_stats,
                                     buffer=self.pipeline.buffer, data_dir=self.cfg.data_dir, site=self.cfg.site.name)
            alarm_stop = asyncio.Event()
            alarm_task = asyncio.create_task(self.alarms.run(alarm_stop), name="alarms")
        for inp in self.inputs:
            self._start_input(inp)
        end = None if duration_s is None else time.monotonic() + duration_s
        next_retention = time.monotonic()
        try:
            while not stop.is_set() and (end is None or time.monotonic() < end):
                failed = [t for t in self._tasks.values() if t.done() and not t.cancelled() and t.exception()]
                if failed:
                    raise failed[0].exception()
                timeout = self.options.flush_interval_s
                if end is not None:
                    timeout = max(0.0, min(timeout, end - time.monotonic()))
                waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(self._wake.wait())]
                await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                for w in waiters:
                    w.cancel()
                self._wake.clear()
                await self.flush()
                if time.monotonic() >= next_retention:
                    next_retention = time.monotonic() + self.options.retention_check_s
                    now = self._retention_now()
                    if now is not None:     # issue 5: under the forwarder's store lock, never racing a write
                        await asyncio.to_thread(self.pipeline.forwarder.call, self.store.apply_retention, now)
        finally:
            if alarm_task is not None:
                alarm_stop.set()
                await asyncio.gather(alarm_task, return_exceptions=True)
            self._closing = True              # a reload in progress starts nothing new now
            await cancel_and_wait(list(self._tasks.values()))
            for inp in self.inputs:
                inp.close()
            await self.flush()
            await self.pipeline.close()      # issue 5: forward what the buffer holds (bounded wait)
            self.stats.left_in_buffer = self.pipeline.left
            if own_store:
                self.store.close()
        return self.stats

    def _counter_status(self) -> dict:
        """Counter channels that stepped (wrap, reset, jump) or glitched since start, for the status file."""
        keys = ("wraps", "resets", "jumps", "glitches")
        return {ch: {k: getattr(st, k) for k in keys}
                for ch, st in self.tracker.state.items() if any(getattr(st, k) for k in keys)}

    def _prepare(self, batch: ReadingBatch) -> dict:
        """Store arguments of a batch, in buffer order: counter offsets, and the batch with the
        counter glitches the tracker found flagged (mieruka.collector.counters)."""
        offsets = self.tracker.observe(batch)
        return {"counter_offsets": offsets, "batch": flag_glitches(batch, self.tracker.take_glitches())}

    def _retention_now(self) -> np.datetime64 | None:
        """The time retention counts back from: the gateway's clock (not the newest reading
        stored: one reading stamped years ahead by a wrong clock made it delete all history).
        None skips this round: for a day after the clock stepped forward by over a minute,
        so that a clock set years ahead for a while (RTC fault before NTP) deletes nothing."""
        wall, mono = time.time(), time.monotonic()
        ref, self._retention_ref = self._retention_ref, (wall, mono)
        step = 0.0 if ref is None else (wall - ref[0]) - (mono - ref[1])
        if step > 60:
            self._retention_hold = mono + 86400
            log.warning("the system clock stepped forward by %.0f s: retention waits a day before it deletes "
                        "anything by this clock", step)
        return None if mono < self._retention_hold else np.datetime64(int(wall * 1000), "ms")

    def _reload_demand(self, cfg: SiteConfig) -> None:
        """A reloaded [demand]/[alarms]: new target and stages apply to the running period;
        another incomer channel, period or zone starts a new live period."""
        old, new = self.live_demand, LiveDemand(cfg)
        if (new.power_channel, new.energy_channel, new.period_min, new.tz) == \
                (old.power_channel, old.energy_channel, old.period_min, old.tz):
            old.target_kw, old.contract_kw, old.stages = new.target_kw, new.contract_kw, new.stages
            old.tracker.target_kw, old.tracker.stages = new.target_kw, new.stages
        else:
            self.live_demand = new
            obs = self.pipeline.observers
            obs[:] = [o for o in obs if o != old.observe] + ([new.observe] if new.enabled else [])
            if new.enabled:
                self.pipeline.health.add_extra("demand", new.status)
            else:
                self.pipeline.health.extras.pop("demand", None)
        if self.alarms is not None:
            self.alarms.reconfigure(cfg.alarms, self.live_demand)

    def _start_input(self, inp: Input) -> None:
        self._tasks[id(inp)] = asyncio.create_task(inp.run(self.pipeline.emit_for(inp, self.emit)), name=inp.name)

    async def _stop_input(self, inp: Input) -> None:
        task = self._tasks.pop(id(inp))
        if inp.stop_after_poll():             # finishes the poll in progress and emits it
            try:
                await asyncio.wait_for(asyncio.shield(task), 60)
            except asyncio.TimeoutError:
                log.warning("reload: input %s did not finish its poll within 60 s; stopped", inp.name)
            except Exception as e:            # it failed on its own: say so, the reload goes on
                log.error("reload: input %s ended with an error: %s", inp.name, e)
        await cancel_and_wait([task])
        inp.close()

    async def reload(self, cfg: SiteConfig) -> bool:
        """Apply a new site config while running (SIGHUP): meters added, removed or changed
        take effect; the disk buffer, the readings waiting for the next flush and the
        store stay as they are.  Every poll in progress is finished and emitted, and each
        meter that stays resumes at the slot after its last one, so no reading is lost or
        doubled.  A config that cannot run (bad map, bad [collector]/[mqtt] table, a
        changed store) is refused: the error is logged and the old config keeps running.
        Returns whether the new config was applied."""
        async with self._reload_lock:         # two quick SIGHUPs: applied one after the other
            if self.pipeline is None or self._closing:
                log.error("reload ignored: the collector is not running (starting or stopping)")
                return False
            return await self._reload(cfg)

    async def _reload(self, cfg: SiteConfig) -> bool:
        try:
            options = validate_section(CollectorOptions, cfg, "collector") or CollectorOptions()
            if cfg.storage != self.cfg.storage or cfg.data_dir != self.cfg.data_dir:
                raise MierukaError(f"{cfg.source}: [storage] and site.data_dir cannot change on reload; "
                                   f"restart the collector to move the store")
            restart_mqtt = _mqtt_part(cfg) != _mqtt_part(self.cfg)
            fresh = build_inputs(cfg, options)
        except MierukaError as e:
            log.error("reload refused, still running the previous config: %s", e)
            return False
        keep = [i for i in self.inputs if i.name == "mqtt" and not restart_mqtt]
        new = [i for i in fresh if not (i.name == "mqtt" and not restart_mqtt)]
        for i in fresh:
            if i not in new:
                i.close()                     # built to validate, not needed: the running one stays
        slots: dict = {}
        for inp in [i for i in self.inputs if i not in keep]:
            await self._stop_input(inp)
            slots.update(inp.slots())
        # metadata and counters of the new channels before their first reading
        infos = [i for inp in new for i in inp.channel_infos()]
        if infos:
            self.pipeline.forwarder.add_channels(infos)
        counters = {}
        for inp in new:
            counters.update(inp.counters())
        added = {c: m for c, m in counters.items() if c not in self.tracker.state or self.tracker.modulus[c] != m}
        if added:
            extra = CounterTracker(added, _max_rates(added, infos))
            try:
                await asyncio.to_thread(self.pipeline.forwarder.call, extra.restore, self.store)
            except MierukaError as e:
                log.warning("counter state of new channels not restored (%s)", e)
            self.tracker.modulus.update(extra.modulus)
            self.tracker.max_rate.update(extra.max_rate)
            self.tracker.state.update({c: st for c, st in extra.state.items() if c not in self.tracker.state})
        if self._closing:                     # stopped while the old inputs finished their polls
            for inp in new:
                inp.close()
            return False
        self.inputs = keep + new
        self.pipeline.health.inputs = list(self.inputs)
        for inp in new:
            inp.resume(slots)
            inp.on_channels = self.pipeline.forwarder.add_channels
            self._start_input(inp)
        self.cfg, self.options = cfg, options
        self._reload_demand(cfg)
        self.reloads += 1
        before = {m.id for m in self._meters}
        self._meters = [m for m in cfg.meters if m.enabled]
        after = {m.id for m in self._meters}
        log.warning("reloaded %s: %d meters (%s added, %s removed)", cfg.source, len(after),
                    ", ".join(sorted(after - before)) or "none", ", ".join(sorted(before - after)) or "none")
        return True
