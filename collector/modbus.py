"""Modbus TCP/RTU input: polls each configured meter on its own schedule and hands
readings on as `ReadingBatch`es.  Sample config: `config/examples/demo-site.toml`
(TCP) and `config/examples/modbus-rtu.toml` (RTU); design in docs/collector.md.

- one asyncio task per meter; meters behind one gateway or serial line share a
  `Connection` (requests serialised per attempt, see modbus_conn);
- a meter's polls sit on a drift-free grid aligned to the wall clock
  (t_k = k * interval); readings are stamped with t_k, not with the time the
  answer came; a poll that overruns skips the slots it missed (counted) rather
  than bunching up;
- requests are coalesced (modbus_plan); a block that answers with an exception is
  bisected until the fields at fault are found; those are remembered, flagged
  `exception` each poll (re-probed every `recheck_bad_fields_s`), and the rest of
  the meter keeps being read;
- every reading carries a quality flag; non-OK readings carry NaN.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import math
import struct
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, stop_after_delay, wait_exponential

from mieruka.errors import ConfigError
from mieruka.models import ChannelInfo, Quality, ReadingBatch
from mieruka.quantities import QUANTITIES, bounds

from .inputs import Input
from .modbus_conn import BadReply, Connection, ExceptionReply, LinkDown, ReadTimeout, WriteRefused
from .modbus_plan import Block, plan_reads
from .registers import Field, load_register_map

log = logging.getLogger(__name__)
CLOCK_STEP_S = 2.0       # wall clock off the monotonic clock by this much at once: a step, not drift
_clock_logged: list[float] = [0.0, 0.0]   # (monotonic time, step) of the last step logged (one line per step)
ADDRESS_CODES = (2, 3)   # illegal data address / value: a field the meter does not have -> bisect the read


@dataclass
class DeviceStats:
    """Per-device health, read by `mieruka collect`'s summary and the health module."""

    device: str
    polls: int = 0
    ok_polls: int = 0
    missed_slots: int = 0
    requests: int = 0
    errors: Counter = field(default_factory=Counter)      # quality name -> readings flagged
    last_latency_s: float | None = None
    last_success: float | None = None                      # epoch s of the last poll with every field OK
    problem: str | None = None                             # current problem kind, None when healthy
    problem_since: float | None = None
    problem_polls: int = 0
    bad_fields: dict[str, int] = field(default_factory=dict)   # field -> exception code
    clock_steps: int = 0                                   # system clock steps seen (NTP fix, manual set)


class _Stale:
    """STALE: the same non-zero value for `after_s` or longer on a channel that should move."""

    def __init__(self, after_s: float) -> None:
        self.after_s = after_s
        self.last: dict[str, tuple[float, float]] = {}   # channel -> (value, since epoch s)

    def check(self, ch: str, value: float, t: float) -> bool:
        prev = self.last.get(ch)
        if prev is None or prev[0] != value or value == 0.0:
            self.last[ch] = (value, t)
            return False
        return self.after_s > 0 and t - prev[1] >= self.after_s


class ModbusDevice:
    """One meter: its plan of reads, its schedule, its quality checks and stats."""

    def __init__(self, meter, conn: Connection, *, base_dir: str | None = None, per_field: bool = False,
                 stale_after_s: float = 600.0, recheck_bad_fields_s: float = 600.0, register_map=None) -> None:
        self.meter = meter
        self.conn = conn
        # the map as this device lays it out (word order / address base found by `mieruka probe`)
        self.map = register_map or load_register_map(meter.model, base_dir).adapted(
            meter.word_order, meter.address_base)
        self.channels = [(c, self.map.field(c.register_field)) for c in meter.channels]
        self._ids = np.array([c.id for c, _ in self.channels], object)
        # per channel: id, field, channel scale, plausible range (field's and channel's bounds), counter?
        # (the quantity's physical bounds, one place for the collector and recordings: mieruka.quantities)
        self._checks = [(c.id, f.name, c.scale,
                         *bounds(c.quantity, (f.min, f.max), (c.min_value, c.max_value)),
                         f.counter or QUANTITIES[c.quantity].counter) for c, f in self.channels]
        self.counter = {c.id: (f.counter or QUANTITIES[c.quantity].counter) for c, f in self.channels}
        fields = list({f.name: f for _, f in self.channels}.values())
        cap = min(self.map.max_registers_per_read, meter.max_registers_per_read)
        self.plan: list[Block] = plan_reads(fields, cap, meter.fill_holes, per_field)
        self.bad: dict[str, Field] = {}
        self.bad_checked = 0.0
        self.recheck_s = recheck_bad_fields_s
        self.stale = _Stale(stale_after_s)
        self.stats = DeviceStats(meter.id)
        self.where = f"unit {meter.unit_id} at {conn.key}"
        self.last_error = ""
        self.shared = False                  # set when other meters use the same connection
        self._probe_gap, self._next_probe = 1, 0
        self.pause_s = meter.pause_between_requests_ms / 1000.0
        self.last_slot: int | None = None    # k of the last slot emitted
        self.resume_slot: int | None = None  # first slot to poll (a reload hands the schedule on)
        self.stopping = asyncio.Event()      # set: finish the poll in progress, emit it, then return
        self._clock_ref: tuple[float, float] | None = None    # (wall, monotonic) at the last clock check

    # -------------------------------------------------------------- reading
    async def _read(self, block: Block, deadline: float) -> list[int]:
        """One block with retries on timeout (exponential back-off, within the poll's time)."""
        self.stats.requests += 1
        try:                                # the common case, without building a retry controller
            return await self.conn.read(block, self.meter.unit_id, self.meter.timeout_s, self.pause_s)
        except ReadTimeout:
            if self.stats.problem == "timeout" or not self.meter.retries:   # no retries while down
                raise
        attempts = self.meter.retries
        await asyncio.sleep(0.05)           # back off before the first retry too (then 0.1, 0.2 ... 1 s)
        budget = max(0.0, deadline - time.monotonic() - self.meter.timeout_s)
        async for attempt in AsyncRetrying(stop=stop_after_attempt(attempts) | stop_after_delay(budget),
                                           wait=wait_exponential(multiplier=0.1, max=1.0),
                                           retry=retry_if_exception_type(ReadTimeout), reraise=True):
            with attempt:
                self.stats.requests += 1
                return await self.conn.read(block, self.meter.unit_id, self.meter.timeout_s, self.pause_s)
        raise AssertionError("unreachable")

    async def _resolve(self, fields: list[Field], out: dict, deadline: float) -> list[Block]:
        """Bisect fields whose joint read raised an exception; return the blocks that read fine
        (and decode them into `out`), remembering single fields that still fail."""
        block = plan_reads(fields, 125, 1 << 16)[0]
        try:
            regs = await self._read(block, deadline)
        except ExceptionReply as e:
            if e.code not in ADDRESS_CODES:
                out.update({f.name: (math.nan, Quality.EXCEPTION) for f in fields})
                return [block]
            if len(fields) == 1:
                f = fields[0]
                self.bad[f.name] = f
                known = f.name in self.stats.bad_fields          # a re-probe of a known bad field: no new line
                self.stats.bad_fields[f.name] = e.code
                out[f.name] = (math.nan, Quality.EXCEPTION)
                if not known:
                    log.warning("%s: field %s (%s register %d) answers Modbus exception %d; flagged `exception`, "
                                "the meter's other fields are still read", self.meter.id, f.name, f.table, f.address,
                                e.code)
                return []
            mid = len(fields) // 2
            return await self._resolve(fields[:mid], out, deadline) + await self._resolve(fields[mid:], out, deadline)
        self._decode(block, regs, out)
        return [block]

    def _decode(self, block: Block, regs: list[int], out: dict) -> None:
        try:
            for name, v in block.decode(regs):
                out[name] = (v, Quality.OK)
        except (ValueError, OverflowError, struct.error):
            for f in block.fields:
                out[f.name] = (math.nan, Quality.ERROR)

    async def poll(self, t_epoch: float) -> ReadingBatch:
        """Read every field once; readings stamped `t_epoch` (the schedule time)."""
        out: dict[str, tuple[float, Quality]] = {}
        self.last_error = ""
        deadline = time.monotonic() + self.meter.poll_interval_s
        give_up: Quality | None = None
        new_plan: list[Block] = []
        for block in self.plan:
            if give_up is not None:
                out.update({f.name: (math.nan, give_up) for f in block.fields})
                new_plan.append(block)
                continue
            try:
                regs = await self._read(block, deadline)
                self._decode(block, regs, out)
                new_plan.append(block)
            except ExceptionReply as e:
                self.last_error = str(e)
                if e.code not in ADDRESS_CODES:     # busy, device failure: the meter's state, not the address
                    out.update({f.name: (math.nan, Quality.EXCEPTION) for f in block.fields})
                    new_plan.append(block)
                    continue
                try:
                    new_plan.extend(await self._resolve(list(block.fields), out, deadline))
                except (ReadTimeout, LinkDown, BadReply):
                    out.update({f.name: (math.nan, Quality.TIMEOUT) for f in block.fields if f.name not in out})
                    new_plan.append(block)
            except ReadTimeout as e:
                self.last_error = str(e)
                give_up = Quality.TIMEOUT          # a silent unit: do not spend the others' time on it
                out.update({f.name: (math.nan, give_up) for f in block.fields})
                new_plan.append(block)
            except LinkDown as e:
                self.last_error = str(e)
                give_up = Quality.ERROR
                out.update({f.name: (math.nan, give_up) for f in block.fields})
                new_plan.append(block)
            except BadReply as e:
                self.last_error = str(e)
                out.update({f.name: (math.nan, Quality.ERROR) for f in block.fields})
                new_plan.append(block)
        self.plan = new_plan
        await self._recheck_bad(out, deadline, give_up)
        return self._readings(t_epoch, out)

    async def _recheck_bad(self, out: dict, deadline: float, give_up) -> None:
        """Fields that answered exceptions: flagged each poll, re-probed now and then."""
        if not self.bad:
            return
        now = time.monotonic()
        if give_up is None and now - self.bad_checked >= self.recheck_s and self.bad_checked:
            for name, f in list(self.bad.items()):
                del self.bad[name]
                try:
                    blocks = await self._resolve([f], out, deadline)
                except (ReadTimeout, LinkDown, BadReply):
                    blocks = []
                    self.bad[name] = f
                if blocks:
                    self.plan.extend(blocks)
                    if out.get(name, (0, Quality.ERROR))[1] == Quality.OK:
                        self.stats.bad_fields.pop(name, None)
                        log.warning("%s: field %s answers again; read from now on", self.meter.id, name)
        if not self.bad_checked or now - self.bad_checked >= self.recheck_s:
            self.bad_checked = now
        for name in self.bad:
            out.setdefault(name, (math.nan, Quality.EXCEPTION))

    def _readings(self, t_epoch: float, out: dict) -> ReadingBatch:
        n = len(self.channels)
        vals, qual = [math.nan] * n, [0] * n
        err = (math.nan, Quality.ERROR)
        for i, (cid, fname, scale, lo, hi, counter) in enumerate(self._checks):
            v, q = out.get(fname, err)
            if q == 0:
                v *= scale
                if not (math.isfinite(v) and lo <= v <= hi):
                    q = Quality.OUT_OF_RANGE
                elif not counter and self.stale.check(cid, v, t_epoch):
                    q = Quality.STALE
            if q == 0:
                vals[i] = v
            else:
                qual[i] = int(q)
        vals, qual = np.array(vals), np.array(qual, np.uint8)
        t = np.full(n, int(round(t_epoch * 1000)), np.int64).astype("datetime64[ms]")
        return ReadingBatch(t, self._ids, vals, qual)

    # -------------------------------------------------------------- problems
    def _account(self, batch: ReadingBatch, latency_s: float) -> None:
        s = self.stats
        s.polls += 1
        s.last_latency_s = latency_s
        if s.problem is None and not batch.quality.any():      # the common case: all OK
            s.ok_polls += 1
            s.last_success = time.time()
            return
        kinds = Counter(Quality(q).name.lower() for q in batch.quality if q != Quality.OK)
        s.errors.update(kinds)
        flagged_fields = {c.id for c, f in self.channels if f.name in self.bad}
        fresh = [Quality(q).name.lower() for ch, q in zip(batch.channel, batch.quality)
                 if q != Quality.OK and ch not in flagged_fields]
        if not kinds:
            s.ok_polls += 1
            s.last_success = time.time()
        if fresh:
            kind = Counter(fresh).most_common(1)[0][0]
            if s.problem is None:
                s.problem, s.problem_since, s.problem_polls = kind, time.time(), 0
                log.warning("%s (%s): %s on %d of %d channels (%s); problem starts", self.meter.id, self.where,
                            kind, len(fresh), len(batch), self.last_error or "values outside their range")
            s.problem_polls += 1
        elif s.problem is not None:
            log.warning("%s (%s): recovered from %s after %d failed polls (%.0f s)", self.meter.id, self.where,
                        s.problem, s.problem_polls, time.time() - (s.problem_since or time.time()))
            s.problem, s.problem_since, s.problem_polls = None, None, 0

    # -------------------------------------------------------------- schedule
    def _plan_probe(self, k: int) -> None:
        """A meter that stopped answering is probed at growing intervals (2, 4, 8 ... slots, at
        most ~60 s apart): on a shared line each probe costs the others up to one timeout."""
        s = self.stats
        if s.problem == "timeout" and s.problem_polls >= 2:
            self._probe_gap = min(self._probe_gap * 2, max(1, int(60 / self.meter.poll_interval_s)))
            self._next_probe = k + self._probe_gap
        else:
            self._probe_gap, self._next_probe = 1, k + 1

    def _skip_probe(self, k: int) -> bool:
        return self.shared and self.stats.problem == "timeout" and k < self._next_probe

    def _clock_check(self) -> float:
        """Seconds the system clock stepped (+ forward, - back) since the last check,
        beyond what the monotonic clock ran; 0 for none.  Logged once per step."""
        wall, mono = time.time(), time.monotonic()
        ref, self._clock_ref = self._clock_ref, (wall, mono)
        step = 0.0 if ref is None else (wall - ref[0]) - (mono - ref[1])
        if abs(step) < CLOCK_STEP_S:
            return 0.0
        self.stats.clock_steps += 1
        if mono - _clock_logged[0] > 10 or abs(step - _clock_logged[1]) > CLOCK_STEP_S:
            _clock_logged[:] = [mono, step]
            log.warning("the system clock stepped %s by %.0f s (NTP setting it after a power cut?); meters are "
                        "polled on the new clock%s", "forward" if step > 0 else "back", abs(step),
                        "; readings may repeat times already stored" if step < 0 else "")
        return step

    async def run(self, emit) -> None:
        interval = self.meter.poll_interval_s
        k = math.ceil(time.time() / interval)          # slots on the wall-clock grid: t_k = k * interval
        tolerance = min(0.5 * interval, 2.0)           # a slot missed by less than this is still polled
        if self.resume_slot is not None:               # after a reload: the next slot of the old schedule
            k = max(self.resume_slot, math.ceil((time.time() - tolerance) / interval))
        self._clock_check()
        while not self.stopping.is_set():
            t_k = k * interval
            delay = t_k - time.time()
            if delay > interval + tolerance:
                # the next slot is more than an interval away: the clock went back (a step, see
                # _clock_check).  Waiting for the old grid would leave the meter unpolled for as
                # long as the step; the grid starts again on the new clock.
                self._clock_check()
                k = math.ceil(time.time() / interval)
                continue
            if delay > 0:
                try:                                   # stopping while idle: return at once
                    await asyncio.wait_for(self.stopping.wait(), delay)
                    return
                except asyncio.TimeoutError:
                    pass
                step = self._clock_check()
                if step > 0:                           # forward while waiting: on to the new clock's slot
                    k = max(k, math.ceil((time.time() - tolerance) / interval))
                if step:
                    continue
            t0 = time.monotonic()
            if self._skip_probe(k):     # known dead: flag the slot without spending the line's time
                batch = self._readings(t_k, {f.name: (math.nan, Quality.TIMEOUT) for _, f in self.channels})
                self.stats.polls += 1
                self.stats.errors["timeout"] += len(batch)
                self.stats.problem_polls += 1
            else:
                try:
                    batch = await self.poll(t_k)
                except WriteRefused:
                    raise
                except Exception as e:    # a bug or a library surprise must not end a years-long run
                    if self.stats.problem is None:
                        log.exception("%s: unexpected error while polling", self.meter.id)
                    self.last_error = f"{type(e).__name__}: {e}"
                    batch = self._readings(t_k, {})          # every channel flagged `error`
                self._account(batch, time.monotonic() - t0)
                self._plan_probe(k)
                if self.meter.close_after_poll:
                    await self.conn.close_idle()
            r = emit(batch)
            if inspect.isawaitable(r):
                await r
            self.last_slot = k
            nxt = max(k + 1, math.ceil((time.time() - tolerance) / interval))
            if self._clock_check() <= 0:       # slots a forward step jumped over were never due: not missed
                self.stats.missed_slots += nxt - (k + 1)
            k = nxt


def _located_map(m, i: int, base_dir: str | None, where: str):
    """The meter's register map with every channel's field in it, or a ConfigError
    naming the site config and the key (`meters[0:pm1].channels[2:p].register`)."""
    key = f"{where}: meters[{i}:{m.id}]"
    if not m.model:
        raise ConfigError(f"{key}.model: required for Modbus meters (a register map name or file)")
    try:
        rmap = load_register_map(m.model, base_dir).adapted(m.word_order, m.address_base)
    except ConfigError as e:
        raise ConfigError(f"{key}.model: {e}") from None
    for j, c in enumerate(m.channels):
        if c.register_field not in rmap.fields:
            raise ConfigError(f"{key}.channels[{j}:{c.id}].register: register map {m.model!r} has no field "
                              f"{c.register_field!r}; it has: {', '.join(rmap.fields)}")
    return rmap


class ModbusInput(Input):
    """All Modbus meters (TCP and RTU) of a site, one scheduler per device; `stats` per device."""

    name = "modbus"

    @classmethod
    def from_site(cls, cfg, options) -> "ModbusInput | None":
        """The site's enabled Modbus meters with channels, or None when it has none."""
        inp = cls(cfg, per_field_meters=frozenset(options.request_per_field), stale_after_s=options.stale_after_s,
                  recheck_bad_fields_s=options.recheck_bad_fields_s, tcp_connection=options.tcp_connection)
        return inp if inp.devices else None

    def __init__(self, cfg, *, per_field_meters: frozenset[str] = frozenset(), stale_after_s: float = 600.0,
                 recheck_bad_fields_s: float = 600.0, tcp_connection: str = "per_meter") -> None:
        """`tcp_connection`: "per_meter" opens one TCP connection per meter (gateways queue them, and
        a silent unit then delays nobody); "per_gateway" shares one per host:port for gateways
        that accept a single client."""
        base_dir = str(cfg.source.parent) if cfg.source else None
        self.connections: dict[str, Connection] = {}
        self.devices: list[ModbusDevice] = []
        where = str(cfg.source or "<config>")
        for i, m in enumerate(cfg.meters):
            if not m.enabled or not m.is_modbus or not m.channels:
                continue
            rmap = _located_map(m, i, base_dir, where)
            if m.protocol == "modbus_rtu":
                key = m.serial_port                     # one RS-485 line: one request at a time, always
            elif m.protocol == "rtu_over_tcp":          # an RS-485 line behind a converter: the same
                key = f"rtu:{m.host}:{m.port}"
            elif tcp_connection == "per_gateway":
                key = f"{m.host}:{m.port}"
            else:
                key = f"{m.host}:{m.port}#{m.unit_id}"
            if key in self.connections:
                self.connections[key].add_meter(m)
            conn = self.connections.setdefault(key, Connection(key, m))
            try:
                self.devices.append(ModbusDevice(m, conn, base_dir=base_dir, per_field=m.id in per_field_meters,
                                                 stale_after_s=stale_after_s, recheck_bad_fields_s=recheck_bad_fields_s,
                                                 register_map=rmap))
            except ValueError as e:     # a field longer than the meter's read limit
                raise ConfigError(f"{where}: meters[{i}:{m.id}].max_registers_per_read: {e}") from None
        users = Counter(d.conn.key for d in self.devices)
        for d in self.devices:
            d.shared = users[d.conn.key] > 1
        self.stats = {d.meter.id: d.stats for d in self.devices}

    def channel_infos(self) -> list[ChannelInfo]:
        return [c.info(d.meter.id) for d in self.devices for c, _ in d.channels]

    def counters(self) -> dict[str, float | None]:
        """Counter channels -> wrap modulus in scaled units (None: float counter, cannot wrap)."""
        return {c.id: (f.wrap_raw * f.scale * c.scale if f.wrap_raw else None)
                for d in self.devices for c, f in d.channels if d.counter[c.id]}

    def stop_after_poll(self) -> bool:
        """Let every meter finish (and emit) the poll in progress, then end `run` (reload)."""
        for d in self.devices:
            d.stopping.set()
        return True

    def slots(self) -> dict[str, tuple[float, int]]:
        """meter id -> (poll interval, last slot emitted)."""
        return {d.meter.id: (d.meter.poll_interval_s, d.last_slot) for d in self.devices if d.last_slot is not None}

    def resume(self, slots: dict[str, tuple[float, int]]) -> None:
        """Continue the schedules of another input (the one a reload replaces): a meter
        polled on the same interval picks up at the slot after the last one emitted, so
        a reload neither repeats nor skips a slot."""
        for d in self.devices:
            prev = slots.get(d.meter.id)
            if prev is not None and prev[0] == d.meter.poll_interval_s:
                d.resume_slot = prev[1] + 1

    def requests_per_cycle(self) -> int:
        return sum(len(d.plan) for d in self.devices)

    async def run(self, emit) -> None:
        try:
            await asyncio.gather(*(d.run(emit) for d in self.devices))
        finally:
            self.close()

    def close(self) -> None:
        for c in self.connections.values():
            c.close()
