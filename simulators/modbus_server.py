"""The simulated meters as a real Modbus server (TCP, or RTU on a serial port).

All meters of a site sit behind one port with one unit id each, like an
RS-485-to-TCP gateway.  Registers are encoded with the meters' register maps
(`collector/registers.py`), so simulator and collector share one statement of
each map.  Faults (timeouts, exceptions, garbage, stuck values) are injected
per meter.

Why a custom request handler on top of pymodbus's server: pymodbus 3.16's
`SimDevice` fills registers through an `action` callback but cannot withhold an
answer (timeout) or delay one without blocking, and its request handler keeps
only the *last* request of a connection, so a delayed answer would go out with
the wrong transaction id.  Here each request is handled as its own task with
its own PDU; framing, transport and serial handling stay pymodbus's.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
from collections import Counter
from contextlib import suppress

import numpy as np
from pymodbus.exceptions import ModbusIOException
from pymodbus.framer import FramerType
from pymodbus.pdu import ExceptionResponse
from pymodbus.pdu.register_message import ReadHoldingRegistersResponse, ReadInputRegistersResponse
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.simulator import DataType, SimData, SimDevice
from pymodbus.transaction import TransactionManager

from mieruka.calendar import SiteCalendar
from mieruka.errors import MierukaError
from mieruka.site import SiteConfig, load_site
from mieruka.collector.registers import RegisterMap, encode_raw, load_register_map

from .live import LiveFactory, LiveFaults
from .scenario import FaultSpec
from .site_link import meter_field_values, scenario_for_site, simulation_section

log = logging.getLogger(__name__)

ILLEGAL_FUNCTION, ILLEGAL_ADDRESS, ILLEGAL_VALUE, GATEWAY_NO_RESPONSE = 1, 2, 3, 0x0B


class SimMeter:
    """One simulated meter: its register map and how to fill it."""

    def __init__(self, meter, regmap: RegisterMap) -> None:
        self.meter = meter
        self.id = meter.id
        self.regmap = regmap
        self.tables: dict[int, list] = {}
        for f in regmap.fields.values():
            self.tables.setdefault(f.function_code, []).append(f)
        # readable span per table: from the first mapped register to the end of the last;
        # holes inside read as 0 (collectors read through small holes), outside -> exception 2
        self.span = {fc: (min(f.address for f in fs), max(f.address + f.count for f in fs))
                     for fc, fs in self.tables.items()}
        self.max_count = min(regmap.max_registers_per_read, 125)
        self.frozen: dict[int, dict[str, float]] = {}    # stuck faults: values at the fault's first read
        self.reset_base: dict[int, dict[str, float]] = {}  # reset faults: counters at the first read after
        self._key = None                                   # sample the cached register words belong to
        self._values: dict[str, float] = {}
        self._tables: dict[int, list[int]] = {}

    def check(self, fc: int, address: int, count: int) -> int | None:
        """The exception code a read gets regardless of values (None: readable)."""
        if fc not in self.tables:
            return ILLEGAL_FUNCTION
        if not 1 <= count <= self.max_count:
            return ILLEGAL_VALUE
        lo, hi = self.span[fc]
        if address < lo or address + count > hi:
            return ILLEGAL_ADDRESS
        return None

    def cached_words(self, key, fc: int, address: int, count: int, values_fn) -> list[int] | int:
        """Healthy reads: each table encoded once per simulated sample, then sliced
        (a poller reading field by field costs one encode per sample, not per request)."""
        bad = self.check(fc, address, count)
        if bad is not None:
            return bad
        if key != self._key:
            self._key, self._values, self._tables = key, values_fn(), {}
        tw = self._tables.get(fc)
        if tw is None:
            lo, hi = self.span[fc]
            tw = self._tables[fc] = self.words(fc, lo, hi - lo, self._values, None, None, limit=False)
        lo = self.span[fc][0]
        return tw[address - lo:address - lo + count]

    def words(self, fc: int, address: int, count: int, values: dict[str, float],
              garbage: str | None, rng: np.random.Generator | None, limit: bool = True) -> list[int] | int:
        bad = self.check(fc, address, count) if limit else None
        if bad is not None:
            return bad
        out = [0] * count
        for f in self.tables[fc]:
            if f.address + f.count <= address or f.address >= address + count:
                continue
            w = _encode(f, values.get(f.name, 0.0), garbage, rng)
            for k, word in enumerate(w):
                j = f.address + k - address
                if 0 <= j < count:
                    out[j] = word
        return out


def _encode(f, value: float, garbage: str | None, rng: np.random.Generator) -> list[int]:
    if garbage == "random":
        return [int(x) for x in rng.integers(0, 65536, f.count)]
    if garbage is not None:
        if f.type.startswith("float"):
            value = float("nan") if garbage == "nan" else 3.0e38 * f.scale
        else:   # integers cannot hold NaN: the largest raw value, as a broken meter sends
            bits = 16 * f.count - (0 if f.type.startswith("uint") else 1)
            return encode_raw((1 << bits) - 1, f.type, f.word_order, f.byte_order)
    if f.type == "float32" and np.isfinite(value):
        value = float(np.clip(value, -3.4e38 * f.scale, 3.4e38 * f.scale))
    return f.encode(value)


class Gateway:
    """All meters behind one address: unit id -> SimMeter, plus the live factory and faults."""

    def __init__(self, cfg: SiteConfig, speed: float = 1.0, faults: list[FaultSpec] | None = None,
                 scenario_path=None, seed: int | None = None, unknown_unit: str | None = None,
                 start=None) -> None:
        sim = simulation_section(cfg)
        self.cfg = cfg
        self.scenario = scenario_for_site(cfg, scenario_path)
        cal = SiteCalendar.from_config(cfg)
        self.seed = sim.seed if seed is None else seed
        self.live = LiveFactory(self.scenario, cal, self.seed, speed, start)
        all_faults = list(self.scenario.faults) + list(sim.faults) + list(faults or [])
        # `count` faults are drawn inside a recording's span: recordings only
        self.faults = LiveFaults([f for f in all_faults if not f.count], cal.tz)
        self.unknown_unit = unknown_unit or sim.unknown_unit
        self.rng = np.random.default_rng(self.seed + 1)
        self.units: dict[int, SimMeter] = {}
        self.connections = 0                 # client connections accepted so far
        self.function_codes: Counter = Counter()   # requests seen per function code (read-only checks)
        base = str(cfg.source.parent) if cfg.source else None
        for m in cfg.meters:
            if not m.enabled or not m.is_modbus:
                continue
            if m.unit_id in self.units:
                raise MierukaError(f"meters {self.units[m.unit_id].id!r} and {m.id!r} share unit id {m.unit_id}; "
                                   f"the simulator serves all meters behind one port")
            # served as this device lays the map out (a meter's word_order / address_base)
            self.units[m.unit_id] = SimMeter(m, load_register_map(m.model, base).adapted(m.word_order,
                                                                                          m.address_base))
        known = {m.id for m in cfg.meters}
        for f in all_faults:
            if f.meter not in known:
                raise MierukaError(f"fault {f.kind}: no meter {f.meter!r} in the site config "
                                   f"(meters: {', '.join(sorted(known))})")
            if not f.count:
                log.info("simulated fault: %s on %s from %s to %s", f.kind, f.meter, f.start or "start",
                         f.end or "end")

    async def read(self, unit: int, fc: int, address: int, count: int) -> list[int] | int | None:
        """Registers, an exception code, or None for no answer at all."""
        sm = self.units.get(unit)
        if sm is None:
            return None if self.unknown_unit == "timeout" else GATEWAY_NO_RESPONSE
        t = self.live.now_ms()
        active = self.faults.active(sm.id, t)
        garbage = None
        stuck = None
        for f in active:
            if f.kind in ("timeout", "gap"):
                if f.delay_s is None:
                    return None
                await asyncio.sleep(f.delay_s)
            elif f.kind == "exception":
                if f.address is None or address <= f.address < address + count:
                    return f.exception_code
            elif f.kind == "garbage":
                garbage = f.garbage
            elif f.kind == "stuck":
                stuck = id(f)
        resets = [f for f in active if f.kind == "reset"]
        live = self.live.values_at(t)

        def fresh() -> dict[str, float]:
            return meter_field_values(sm.meter, sm.regmap, live, self.scenario.scenario, self.rng)

        if stuck is None and garbage is None and not resets:
            return sm.cached_words(self.live.key, fc, address, count, fresh)
        if stuck is not None and stuck in sm.frozen:
            values = sm.frozen[stuck]
        else:
            values = fresh()
            for f in resets:     # the meter's counters restart from zero when the reset begins
                counters = {k: v for k, v in values.items() if sm.regmap.fields[k].counter}
                base = sm.reset_base.setdefault(id(f), counters)
                values.update({k: max(v - base.get(k, 0.0), 0.0) for k, v in counters.items()})
            if stuck is not None:
                sm.frozen[stuck] = values
        return sm.words(fc, address, count, values, garbage, self.rng)


class _Handler(ServerRequestHandler):
    """Handles each request as its own task with its own PDU (see module doc)."""

    def callback_data(self, data: bytes, addr: tuple | None = None) -> int:
        try:
            used = TransactionManager.callback_data(self, data, addr)
        except ModbusIOException as exc:
            self.server_send(ExceptionResponse(exc.fcode or 0, ILLEGAL_FUNCTION, device_id=exc.dev_id,
                                               transaction=exc.transaction_id), addr)
            return len(data)
        if self.last_pdu:
            pdu, a = self.last_pdu, self.last_addr
            self.last_pdu = None
            task = self.loop.create_task(self._answer(pdu, a))
            self.server.tasks.add(task)
            task.add_done_callback(self.server.tasks.discard)
        return used

    async def _answer(self, pdu, addr) -> None:
        fc = pdu.function_code
        self.server.gateway.function_codes[fc] += 1
        if fc in (3, 4):
            res = await self.server.gateway.read(pdu.dev_id, fc, pdu.address, pdu.count)
        else:
            res = ILLEGAL_FUNCTION          # the meters are read-only, as the collector only ever reads
        if res is None:
            return
        if isinstance(res, int):
            resp = ExceptionResponse(fc, res, device_id=pdu.dev_id, transaction=pdu.transaction_id)
        else:
            cls = ReadHoldingRegistersResponse if fc == 3 else ReadInputRegistersResponse
            resp = cls(registers=res, dev_id=pdu.dev_id, transaction_id=pdu.transaction_id)
        if self.transport is None:          # the client went away while we were "slow"
            return
        with suppress(Exception):
            self.server_send(resp, addr)


class _GatewayMixin:
    gateway: Gateway
    tasks: set

    def callback_new_connection(self):
        self.gateway.connections += 1        # counted: tests of `close_after_poll`
        return _Handler(self, self.trace_packet, self.trace_pdu, self.trace_connect)


class _TcpServer(_GatewayMixin, ModbusTcpServer):
    pass


class _SerialServer(_GatewayMixin, ModbusSerialServer):
    pass


def _placeholder_devices() -> list[SimDevice]:
    # pymodbus's server wants devices; ours are answered by the Gateway instead
    return [SimDevice(id=0, simdata=[SimData(0, count=1, values=0, datatype=DataType.REGISTERS)])]


class SimServer:
    """A running simulator server (handle returned by serve_modbus)."""

    def __init__(self, server, gateway: Gateway, host: str | None, port: int | None) -> None:
        self.server, self.gateway, self.host, self.port = server, gateway, host, port

    async def stop(self) -> None:
        for t in list(self.server.tasks):
            t.cancel()
        await self.server.shutdown()


async def serve_modbus(cfg: SiteConfig, host: str = "127.0.0.1", port: int | None = None, speed: float = 1.0,
                       faults: list[FaultSpec] | None = None, rtu_over_tcp: bool = False, **kw) -> SimServer:
    """Start serving the site's simulated meters on Modbus TCP; returns once listening.

    port: None takes the first TCP meter's port from the site file; 0 picks a free port
    (read it from the handle's `.port`).  `rtu_over_tcp`: RTU frames (CRC, no MBAP
    header) over the TCP socket, as a transparent RS-485/Ethernet converter passes them.
    """
    gw = Gateway(cfg, speed, faults, **kw)
    if port is None:
        port = next((m.port for m in cfg.meters if m.protocol in ("modbus_tcp", "rtu_over_tcp")), 502)
    srv = _TcpServer(_placeholder_devices(), address=(host, port), ignore_missing_devices=True,
                     framer=FramerType.RTU if rtu_over_tcp else FramerType.SOCKET)
    srv.gateway, srv.tasks = gw, set()
    if not await srv.listen():
        raise MierukaError(f"cannot listen on {host}:{port} (in use, or not allowed)")
    sock = srv.transport.sockets[0]
    return SimServer(srv, gw, host, sock.getsockname()[1])


async def serve_modbus_rtu(cfg: SiteConfig, serial_port: str, baudrate: int = 9600, parity: str = "N",
                           speed: float = 1.0, faults: list[FaultSpec] | None = None, **kw) -> SimServer:
    """The same meters as Modbus RTU on a serial port (e.g. one end of a socat pty pair)."""
    gw = Gateway(cfg, speed, faults, **kw)
    srv = _SerialServer(_placeholder_devices(), port=serial_port, baudrate=baudrate, parity=parity,
                        ignore_missing_devices=True)
    srv.gateway, srv.tasks = gw, set()
    if not await srv.listen():
        raise MierukaError(f"cannot open serial port {serial_port}")
    return SimServer(srv, gw, None, None)


class ModbusSimulator:
    """The simulator in a background thread, for tests and scripts::

        with ModbusSimulator("config/examples/demo-site.toml", port=0) as sim:
            client = AsyncModbusTcpClient("127.0.0.1", port=sim.port)
    """

    def __init__(self, cfg: SiteConfig | str, port: int | None = 0, host: str = "127.0.0.1", speed: float = 1.0,
                 faults: list[FaultSpec] | None = None, serial_port: str | None = None, baudrate: int = 9600,
                 rtu_over_tcp: bool = False, **kw) -> None:
        self.cfg = load_site(cfg) if isinstance(cfg, str) else cfg
        self.host, self.port, self.speed, self.faults = host, port, speed, faults
        self.serial_port, self.baudrate, self.kw = serial_port, baudrate, kw
        self.rtu_over_tcp = rtu_over_tcp
        self.handle: SimServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> "ModbusSimulator":
        self._thread = threading.Thread(target=self._run, name="modbus-simulator", daemon=True)
        self._thread.start()
        self._ready.wait(15)
        if self._error:
            raise self._error
        if self.handle is None:
            raise RuntimeError("simulator did not start within 15 s")
        self.port = self.handle.port
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)

        async def main():
            try:
                if self.serial_port:
                    self.handle = await serve_modbus_rtu(self.cfg, self.serial_port, self.baudrate,
                                                         speed=self.speed, faults=self.faults, **self.kw)
                else:
                    self.handle = await serve_modbus(self.cfg, self.host, self.port, self.speed, self.faults,
                                                     rtu_over_tcp=self.rtu_over_tcp, **self.kw)
            except BaseException as e:   # reported to the starting thread
                self._error = e
            finally:
                self._ready.set()

        loop.run_until_complete(main())
        if self.handle:
            loop.run_forever()
        with suppress(Exception):
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    def add_fault(self, fault: FaultSpec) -> None:
        """Inject a fault into the running simulator (its window in simulated time, naive =
        site time): a test can place it once the client under test is really polling, not
        at a wall-clock time guessed before anything started."""
        gw = self.handle.gateway
        if fault.meter not in {m.id for m in gw.cfg.meters}:
            raise MierukaError(f"fault {fault.kind}: no meter {fault.meter!r} in the site config")
        done = threading.Event()

        def add() -> None:
            gw.faults.add(fault)
            done.set()
        self._loop.call_soon_threadsafe(add)
        if not done.wait(30):
            raise RuntimeError("the simulator did not take the fault within 30 s")

    def now(self) -> dt.datetime:
        """The simulator's clock (site time, naive), for faults placed relative to it."""
        gw = self.handle.gateway
        return dt.datetime.fromtimestamp(gw.live.now_ms() / 1000, gw.faults.tz).replace(tzinfo=None)

    def stop(self) -> None:
        if self._loop and self.handle:
            fut = asyncio.run_coroutine_threadsafe(self.handle.stop(), self._loop)
            with suppress(Exception):
                fut.result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(5)
        self.handle = None

    def __enter__(self) -> "ModbusSimulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
