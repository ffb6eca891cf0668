"""One Modbus transport (a TCP gateway or a serial line) shared by the meters behind it.

A gateway (RS-485-to-TCP) or an RS-485 line answers one request at a time, so the
requests of all its unit ids are serialised here with a lock.  The lock is held for
one attempt only (at most `timeout_s`); retries of a slow unit queue up again behind
the other units' requests, so a dead unit id delays its neighbours by one timeout at
most, never by its whole retry sequence.  A gateway that refuses connections is
marked down with an exponential back-off, and its meters fail fast meanwhile instead
of each waiting for a connect timeout.  Separate gateways never share anything.

Transports: Modbus TCP, Modbus RTU on a serial line, and RTU framing over a TCP
socket (`rtu_over_tcp`, what transparent RS-485/Ethernet converters speak: pymodbus's
TCP client with the RTU framer).  Fussy devices: `pause_after_connect_ms` (a
converter that needs time after accepting), `pause_between_requests_ms` (a quiet
gap on the line before each request to that meter), and `close_after_poll` (see
`close_idle`).

Late answers: RTU framing (serial, rtu_over_tcp) has no transaction id, so an answer
that comes after its request timed out would land in the next request's window: on
an RS-485 line it collides with the next request, and pymodbus's RTU decoder takes
the whole receive buffer as one frame, so a late answer that arrives together with
the next one swallows it.  After a timeout on an RTU-framed link the link stays
quiet for `late_grace_s` (the timeout, at most 1 s) before the next request, so a
late answer arrives while no request waits and is dropped.  Modbus TCP matches
answers by transaction id and needs no gap.

Read-only by construction: this class only issues function codes 3 and 4, and a
`trace_pdu` hook on the pymodbus client refuses to send any other request.
"""
from __future__ import annotations

import asyncio
import logging
import time

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.framer import FramerType

from .modbus_plan import READ_FUNCTION_CODES, Block
from .rtu_framer import HuntingFramerRTU

log = logging.getLogger(__name__)


class ReadTimeout(Exception):
    """The unit did not answer within the timeout."""


class LinkDown(Exception):
    """The gateway or serial port cannot be reached (connection refused, port missing)."""


class ExceptionReply(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(f"Modbus exception {code}")
        self.code = code


class BadReply(Exception):
    """A reply that does not fit the request (wrong length, undecodable frame)."""


class WriteRefused(AssertionError):
    """Raised if anything ever tries to send a non-read request: the collector never writes."""


def _only_reads(sending: bool, pdu):
    if sending and pdu.function_code not in READ_FUNCTION_CODES:
        raise WriteRefused(f"the collector only reads; refused to send function code {pdu.function_code}")
    return pdu


class Connection:
    """A shared, lazily (re)connected pymodbus client with request serialisation."""

    def __init__(self, key: str, meter) -> None:
        self.key = key
        self.timeout_s = meter.timeout_s
        self.meter = meter
        self.client = None            # made on first use: pymodbus clients need a running event loop
        self.lock = asyncio.Lock()
        self.down_until = 0.0
        self.backoff_s = 1.0
        self.requests = 0
        self.last_done = 0.0          # monotonic time the last request on this link ended
        self.connect_pause_s = meter.pause_after_connect_ms / 1000.0
        self.rtu_framing = meter.protocol in ("modbus_rtu", "rtu_over_tcp")
        self.late_grace_s = min(meter.timeout_s, 1.0) if self.rtu_framing else 0.0
        self.quiet_until = 0.0        # monotonic time before which no request goes out (after a timeout)

    def _make_client(self):
        meter, key = self.meter, self.key
        if meter.protocol == "modbus_rtu":
            self.client = AsyncModbusSerialClient(
                meter.serial_port, framer=FramerType.RTU, baudrate=meter.baudrate, bytesize=meter.bytesize,
                parity=meter.parity, stopbits=meter.stopbits, timeout=meter.timeout_s, retries=0,
                reconnect_delay=0, trace_pdu=_only_reads, name=key)
        else:
            framer = FramerType.RTU if meter.protocol == "rtu_over_tcp" else FramerType.SOCKET
            self.client = AsyncModbusTcpClient(meter.host, port=meter.port, framer=framer, timeout=meter.timeout_s,
                                               retries=0, reconnect_delay=0, trace_pdu=_only_reads, name=key)
        if meter.protocol in ("modbus_rtu", "rtu_over_tcp"):     # noise before a frame must not lose it
            self.client.ctx.framer = HuntingFramerRTU(self.client.ctx.framer.decoder)
        # a silent unit id must not make pymodbus drop the link the other units share
        self.client.set_max_no_responses(1 << 30)

    async def _ensure_connected(self) -> None:
        if self.client is None:
            self._make_client()
        if self.client.connected:
            return
        now = time.monotonic()
        if now < self.down_until:
            raise LinkDown(f"{self.key} down, next connect attempt in {self.down_until - now:.0f} s")
        try:
            ok = await asyncio.wait_for(self.client.connect(), self.timeout_s + 1)
        except (asyncio.TimeoutError, OSError, ModbusException):
            ok = False
        if not ok:
            self.down_until = time.monotonic() + self.backoff_s
            self.backoff_s = min(self.backoff_s * 2, 30.0)
            what = (f"cannot open serial port {self.key}" if self.meter.protocol == "modbus_rtu"
                    else f"cannot connect to {self.meter.host}:{self.meter.port}")
            raise LinkDown(what)
        self.backoff_s = 1.0
        if self.connect_pause_s:
            await asyncio.sleep(self.connect_pause_s)
    def add_meter(self, meter) -> None:
        """Another meter on this transport: the client waits as long as the slowest needs;
        each request is cut at its own meter's timeout (see `read`)."""
        self.timeout_s = max(self.timeout_s, meter.timeout_s)
        self.connect_pause_s = max(self.connect_pause_s, meter.pause_after_connect_ms / 1000.0)

    async def read(self, block: Block, unit_id: int, timeout_s: float | None = None, pause_s: float = 0.0) -> list[int]:
        """One read attempt; raises ReadTimeout, ExceptionReply, BadReply or LinkDown.
        `pause_s`: the link stays quiet this long after the previous request before this one."""
        if block.fc not in READ_FUNCTION_CODES:
            raise WriteRefused(f"function code {block.fc} is not a read")
        async with self.lock:
            try:
                return await self._read_locked(block, unit_id, timeout_s, pause_s)
            finally:
                self.last_done = time.monotonic()

    async def _read_locked(self, block: Block, unit_id: int, timeout_s: float | None, pause_s: float) -> list[int]:
        await self._ensure_connected()
        wait = max(self.last_done + pause_s, self.quiet_until) - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        fn = self.client.read_input_registers if block.fc == 4 else self.client.read_holding_registers
        self.requests += 1
        try:
            if timeout_s is not None and timeout_s < self.timeout_s:   # a faster meter on a shared line
                rr = await asyncio.wait_for(fn(block.address, count=block.count, device_id=unit_id), timeout_s)
            else:
                rr = await fn(block.address, count=block.count, device_id=unit_id)   # pymodbus times out
        except (asyncio.TimeoutError, ModbusIOException) as e:
            if isinstance(e, ModbusIOException) and "No response" not in str(e):
                raise BadReply(str(e)) from None
            if self.rtu_framing:      # a late answer must not meet the next request (module doc)
                self.quiet_until = time.monotonic() + self.late_grace_s
            raise ReadTimeout(f"unit {unit_id} at {self.key}: no answer in {timeout_s or self.timeout_s} s") from None
        except (ConnectionException, OSError) as e:
            self.client.close()
            raise LinkDown(f"{self.key}: {e}") from None
        except ModbusException as e:
            raise BadReply(str(e)) from None
        fc_back = int(getattr(rr, "function_code", block.fc) or block.fc) & 0x7F
        if fc_back != block.fc:       # pymodbus does not check: input registers must not pass for holding ones
            raise BadReply(f"unit {unit_id} at {self.key}: asked function {block.fc}, the reply is for "
                           f"function {fc_back}")
        if rr.isError():
            raise ExceptionReply(int(getattr(rr, "exception_code", 0)))
        regs = list(getattr(rr, "registers", []) or [])
        if len(regs) != block.count:
            raise BadReply(f"asked {block.count} registers at {block.address}, got {len(regs)}")
        return regs

    async def close_idle(self) -> None:
        """Close the link between polls (`close_after_poll`): waits for a request in
        progress on a shared link; the next request connects again."""
        async with self.lock:
            if self.client is not None and self.client.connected:
                self.client.close()

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
