"""The forwarder: durable buffer -> sink, in order, removed only once confirmed.

    input --emit--> DiskBuffer.append (fsync) --> Forwarder.run --> store.write --> commit

`append` returns once the readings are on disk: an MQTT input acknowledges its
messages (PUBACK) only after that, so a reading is always either with its sender
or on our disk.  `run` reads the oldest unconfirmed readings, writes them to the
store (InfluxDB or the embedded store) and commits the buffer position only after
the store returned.  A failed write is retried with exponential backoff (tenacity)
for as long as it takes; while the store is away the buffer grows (bounded, see
buffer.py).  A batch the store refuses for good (malformed: HTTP 400) cannot be
helped by retrying: it is counted, logged and saved under `rejected/` in the
buffer directory for a person to look at, and forwarding goes on.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field

import numpy as np
from tenacity import AsyncRetrying, retry_if_exception, wait_exponential

from mieruka.models import ChannelInfo, ReadingBatch
from mieruka.store import Store

from .buffer import DiskBuffer

log = logging.getLogger(__name__)


@dataclass
class SinkStats:
    written: int = 0                   # readings the sink confirmed (since start)
    writes: int = 0
    failures: int = 0                  # failed write attempts
    rejected: int = 0                  # readings the sink refused for good (saved under rejected/)
    last_success: float | None = None  # epoch s
    last_error: str | None = None
    last_error_time: float | None = None
    down_since: float | None = None
    recent_errors: list[tuple[float, str]] = field(default_factory=list)


def _retryable(e: BaseException) -> bool:
    return bool(getattr(e, "retry", True))


class Forwarder:
    """Moves readings from the buffer to `store`.  `prepare(batch) -> dict` may add
    keyword arguments for `store.write` (the runner's counter offsets) and, as `batch`,
    the batch to write instead (counter glitches flagged); it is called once per batch,
    in buffer order."""

    def __init__(self, buffer: DiskBuffer, store: Store, *, batch_size: int = 5000, prepare=None,
                 max_backoff_s: float = 5.0) -> None:
        self.buffer = buffer
        self.store = store
        self.batch_size = batch_size
        self.prepare = prepare
        self.max_backoff_s = max_backoff_s
        self.stats = SinkStats()
        self.taps: list = []             # called with each batch the store confirmed (MQTT output)
        # one store call at a time (the embedded store's SQLite connection is shared by threads)
        self.store_lock = threading.Lock()
        self._new_infos: list[ChannelInfo] = []
        # the batch being forwarded, its buffer position and its prepared store arguments:
        # kept until the store confirms it, so a retry sends exactly the same thing and
        # `prepare` (counter tracking) sees each reading once
        self._inflight: tuple[ReadingBatch, object, dict, int] | None = None
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._infos: dict[str, ChannelInfo] = {i.id: i for i in buffer.load_channels()}
        if self._infos:
            store.set_channels(list(self._infos.values()))

    # ------------------------------------------------------------ input side
    def add_channels(self, infos: list[ChannelInfo]) -> None:
        """Channels an input discovered: saved with the buffer (before their readings)
        so that their tags survive a restart, and handed to the store."""
        new = [i for i in infos if self._infos.get(i.id) != i]
        if not new:
            return
        for i in new:
            self._infos[i.id] = i
        self.buffer.save_channels(list(self._infos.values()))
        self._new_infos.extend(new)      # handed to the store by the forwarder, before the next write

    def append(self, batch: ReadingBatch) -> bool:
        """Durably buffer a batch (blocking: fsync).  Thread-safe."""
        ok = self.buffer.append(batch)
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)
        return ok

    async def emit_durable(self, batch: ReadingBatch) -> bool:
        """`emit` for inputs that acknowledge upstream: returns after the fsync."""
        return await asyncio.to_thread(self.append, batch)

    # --------------------------------------------------------- sink side
    def call(self, fn, *args):
        """Run a store call (retention, metadata) without racing the forwarder's writes."""
        with self.store_lock:
            return fn(*args)

    def _write(self, batch: ReadingBatch, kwargs: dict) -> None:
        with self.store_lock:
            if self._new_infos:
                infos, self._new_infos = self._new_infos, []
                self.store.set_channels(infos)
            self.store.write(batch, **kwargs)

    def _failed(self, e: BaseException) -> None:
        now = time.time()
        s = self.stats
        s.failures += 1
        s.last_error, s.last_error_time = str(e), now
        s.recent_errors = (s.recent_errors + [(now, str(e)[:200])])[-10:]
        if s.down_since is None:
            s.down_since = now
            log.error("store write failed, readings stay in the buffer and are retried: %s", e)
        elif s.failures % 30 == 0:
            log.error("store still failing (%d attempts, down %.0f s, %d readings buffered): %s",
                      s.failures, now - s.down_since, self.buffer.pending, e)

    def _reject(self, batch: ReadingBatch, e: BaseException) -> None:
        d = self.buffer.dir / "rejected"
        d.mkdir(exist_ok=True)
        path = d / f"rejected-{time.strftime('%Y%m%dT%H%M%S')}-{self.stats.rejected}.npz"
        np.savez(path, time=batch.time.astype(np.int64), channel=batch.channel.astype(str),
                 value=batch.value, quality=batch.quality)
        self.stats.rejected += len(batch)
        log.error("store refused %d readings for good (%s); saved to %s, forwarding goes on", len(batch), e, path)

    async def forward_once(self, stop: asyncio.Event | None = None) -> int:
        """Forward up to batch_size readings; returns how many were confirmed (0: buffer empty)."""
        if self._inflight is None:
            batch, pos = await asyncio.to_thread(self.buffer.read, self.batch_size)
            if not len(batch):
                return 0
            kwargs = self.prepare(batch) if self.prepare else {}     # once per batch, in buffer order
            n = len(batch)                                            # readings from the buffer
            batch = kwargs.pop("batch", batch)                        # prepare may flag or add readings
            self._inflight = (batch, pos, kwargs, n)
        batch, pos, kwargs, n = self._inflight
        stop = stop or asyncio.Event()

        async def sleep(s: float) -> None:
            try:
                await asyncio.wait_for(stop.wait(), s)
            except asyncio.TimeoutError:
                pass

        retrying = AsyncRetrying(wait=wait_exponential(multiplier=0.2, max=self.max_backoff_s),
                                 retry=retry_if_exception(_retryable), sleep=sleep, reraise=True,
                                 stop=lambda rs: stop.is_set(),
                                 before_sleep=lambda rs: self._failed(rs.outcome.exception()))
        try:
            async for attempt in retrying:
                with attempt:
                    await asyncio.to_thread(self._write, batch, kwargs)
        except Exception as e:
            if _retryable(e):         # stopped while the sink is down: the readings stay buffered
                self._failed(e)
                return 0
            self._reject(batch, e)
        else:
            s = self.stats
            if s.down_since is not None:
                log.warning("store reachable again after %.0f s; forwarding %d buffered readings",
                            time.time() - s.down_since, self.buffer.pending)
            s.down_since = None
            s.written += n
            s.writes += 1
            s.last_success = time.time()
            for tap in self.taps:
                try:
                    tap(batch)
                except Exception as e:    # an output must never hold up storage
                    log.warning("output %s failed: %s", getattr(tap, "__qualname__", tap), e)
        self._inflight = None
        await asyncio.to_thread(self.buffer.commit, pos, n)
        return n

    async def run(self, stop: asyncio.Event) -> None:
        """Forward until `stop` is set."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        while not stop.is_set():
            self._wake.clear()          # before reading: an append during the write wakes the next round
            try:
                n = await self.forward_once(stop)
            except Exception as e:      # e.g. the buffer's disk failing a read: never stop forwarding for good
                log.error("forwarding failed, trying again: %s", e)
                n = 0
            if n == 0 and not stop.is_set():
                waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
                await asyncio.wait(waiters, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
                for w in waiters:
                    w.cancel()

    async def drain(self, timeout_s: float = 5.0, max_s: float = 60.0) -> int:
        """On stop: forward what is left while the store takes it (up to `max_s`); a batch
        the store keeps failing is given `timeout_s` of retries, then everything left
        stays buffered for the next start."""
        loop = asyncio.get_running_loop()
        end = loop.time() + max_s
        total = 0
        while loop.time() < end:
            give_up = asyncio.Event()
            handle = loop.call_later(timeout_s, give_up.set)
            try:
                n = await self.forward_once(give_up)
            finally:
                handle.cancel()
            if n == 0:
                break
            total += n
        left = await asyncio.to_thread(self.buffer.recount)     # from the files, not a running count
        if left != self.buffer.pending:
            log.error("buffer count was %d, its files hold %d unconfirmed readings", self.buffer.pending, left)
            self.buffer.pending = left
        if left:
            log.warning("%d readings stay in the buffer (%s) and are forwarded at the next start",
                        left, self.buffer.dir)
        return total


# --------------------------------------------------------------------------- pipeline
class Pipeline:
    """The path between the inputs' `emit` and the store, for the runner:
    disk buffer + forwarder + health (metrics, status file) + optional MQTT output.

    `emit_for(input, emit)` wraps an input's emit: it counts readings for the health
    metrics and, for inputs that acknowledge upstream (`durable_emit`), appends to
    the disk buffer directly and returns only after the fsync."""

    def __init__(self, cfg, store, inputs: list, *, prepare=None, metrics_port: int | None = None,
                 metrics_host: str = "127.0.0.1", status_interval_s: float = 2.0, account=None,
                 observers: list | None = None) -> None:
        from .health import STATUS_FILE, Health
        bcfg = cfg.storage.buffer
        batch_size = cfg.storage.influxdb.batch_size if cfg.storage.influxdb else 5000
        self.buffer = DiskBuffer(cfg.data_dir / "buffer", max_mb=bcfg.max_mb, when_full=bcfg.when_full)
        self.forwarder = Forwarder(self.buffer, store, batch_size=batch_size, prepare=prepare)
        self.health = Health(inputs=inputs, forwarder=self.forwarder, status_path=cfg.data_dir / STATUS_FILE,
                             interval_s=status_interval_s, site=cfg.site.name)
        self.metrics_port, self.metrics_host = metrics_port, metrics_host
        self.output = None
        for inp in inputs:
            inp.on_channels = self.forwarder.add_channels
            output = inp.output(lambda: self.forwarder._infos)
            if output is not None:
                self.output = output
                self.forwarder.taps.append(output.publish)
        self.account = account           # the runner's per-channel counting of durable emits
        # called with every batch an input emits (live demand): cheap, on the event loop
        self.observers = list(observers or [])
        self.left = 0                    # after close: readings left in the buffer (counted from its files)
        self._tasks: list[asyncio.Task] = []
        self._stop = asyncio.Event()

    def emit_for(self, inp, emit):
        name = inp.name
        if inp.durable_emit:
            async def durable(batch: ReadingBatch) -> bool:
                self.health.count(name, len(batch))
                self._observe(batch)
                ok = await self.forwarder.emit_durable(batch)
                if ok and self.account is not None:
                    self.account(batch)
                return ok
            return durable

        def counted(batch: ReadingBatch):
            self.health.count(name, len(batch))
            self._observe(batch)
            return emit(batch)
        return counted

    def _observe(self, batch: ReadingBatch) -> None:
        for obs in self.observers:
            try:
                obs(batch)
            except Exception as e:      # an observer must never hold up collecting
                log.warning("observer %s failed: %s", getattr(obs, "__qualname__", obs), e)

    def start(self) -> None:
        if self.metrics_port:
            try:
                self.health.serve(self.metrics_port, self.metrics_host)
            except OSError as e:
                log.warning("metrics port %s:%s not available (%s); metrics off, status file still written",
                            self.metrics_host, self.metrics_port, e)
        if self.output is not None:
            self.output.start()
        self._tasks = [asyncio.create_task(self.forwarder.run(self._stop), name="forwarder"),
                       asyncio.create_task(self.health.run(self._stop), name="health")]

    async def close(self, drain_s: float = 5.0) -> None:
        """Stop forwarding, forward what is left (a failing store gets drain_s), close the buffer."""
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.health.stopped_at = time.time()     # the last snapshot: `mieruka status` says "stopped cleanly at"
        await self.forwarder.drain(drain_s)
        self.left = self.buffer.pending
        self.health.write_snapshot()
        if self.output is not None:
            self.output.stop()
        if self.health.server is not None:
            self.health.server[0].shutdown()
        self.buffer.close()
