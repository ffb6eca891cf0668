"""A small Modbus TCP server that misbehaves on purpose, for testing what `mieruka
scan` / `probe` (and the collector) make of fussy and broken devices.

Each unit id gets a behaviour (the default one for ids not listed):

    "ok"          answer read requests with registers (value = address & 0xFFFF)
    "absent"      never answer
    ("exc", n)    answer exception code n
    ("slow", s)   answer correctly, but s seconds late
    "wrong_unit"  answer with the unit id plus one in the reply header
    "wrong_tid"   answer with another transaction id (Modbus TCP only)
    "short"       answer fewer registers than asked
    "wrong_fc"    answer a read of holding registers as if input registers were asked (and back)
    "garbage"     send random bytes instead of an answer
    ("noise", n)  answer correctly, after n random bytes (line noise before the frame)
    "close"       close the connection without answering

`rtu=True` speaks RTU framing (CRC, no MBAP header) over the socket, as transparent
RS-485/Ethernet converters do; `serial_port=PATH` serves RTU on one end of a pty pair
(`tests.helpers.proc.socat_pty_pair`) instead of TCP.  Requests seen are counted per function code in
`function_codes`.  Runs in its own thread; loopback only.
"""
from __future__ import annotations

import random
import select
import socket
import struct
import threading
import time
from collections import Counter


def crc16(data: bytes) -> bytes:
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return struct.pack("<H", crc)


class HostileServer:
    def __init__(self, port: int | None, behaviours: dict[int, object] | None = None, default: object = "ok",
                 rtu: bool = False, seed: int = 1, serial_port: str | None = None) -> None:
        self.port = port
        self.serial_port = serial_port
        rtu = rtu or serial_port is not None
        self.behaviours = dict(behaviours or {})
        self.default = default
        self.rtu = rtu
        self.rng = random.Random(seed)
        self.function_codes: Counter = Counter()
        self.units_asked: Counter = Counter()
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------ life cycle
    def __enter__(self) -> "HostileServer":
        if self.serial_port is not None:
            t = threading.Thread(target=self._serve, args=(_Pty(self.serial_port),), daemon=True)
            t.start()
            self._threads.append(t)
            return self
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(8)
        s.settimeout(0.1)
        self._sock = s
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(5)
        if self._sock is not None:
            self._sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (socket.timeout, OSError):
                continue
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    # ------------------------------------------------------------ one client
    def _serve(self, conn: socket.socket) -> None:
        """Requests are answered in order, one at a time, like a converter in front of an
        RS-485 line.  Answers ready together leave in one send: a late answer is glued to
        the next one when the next request came while the late one was still pending."""
        conn.settimeout(0.1)
        buf = b""
        with conn:
            while not self._stop.is_set():
                try:
                    data = conn.recv(4096)
                except socket.timeout:
                    continue
                except OSError:
                    return
                if not data:
                    return
                buf += data
                out = b""
                while True:
                    frame, buf = self._split(buf)
                    if frame is None:
                        try:                       # what came meanwhile is answered in the same send
                            ready = select.select([conn], [], [], 0)[0]
                            more = conn.recv(4096) if ready else b""
                        except OSError:
                            more = b""
                        if not more:
                            break
                        buf += more
                        continue
                    reply = self._answer(*frame)
                    if reply is None:              # "close"
                        if out:
                            conn.sendall(out)
                        return
                    out += reply
                if out:
                    try:
                        conn.sendall(out)
                    except OSError:
                        return

    def _split(self, buf: bytes):
        if self.rtu:
            if len(buf) < 8:
                return None, buf
            return (0, buf[0], buf[1:6]), buf[8:]
        if len(buf) < 7:
            return None, buf
        tid, _, length, unit = struct.unpack(">HHHB", buf[:7])
        if len(buf) < 6 + length:
            return None, buf
        return (tid, unit, buf[7:6 + length]), buf[6 + length:]

    def _frame(self, tid: int, unit: int, pdu: bytes) -> bytes:
        if self.rtu:
            body = bytes([unit]) + pdu
            return body + crc16(body)
        return struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu

    def _answer(self, tid: int, unit: int, pdu: bytes) -> bytes | None:
        """The bytes to send for one request (b"": nothing; None: close the connection)."""
        fc = pdu[0]
        self.function_codes[fc] += 1
        self.units_asked[unit] += 1
        how = self.behaviours.get(unit, self.default)
        kind, arg = (how if isinstance(how, tuple) else (how, None))
        if kind == "absent":
            return b""
        if kind == "close":
            return None
        if kind == "garbage":
            return bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(3, 40)))
        if kind == "exc":
            return self._frame(tid, unit, bytes([fc | 0x80, arg]))
        if fc not in (3, 4) or len(pdu) < 5:
            return self._frame(tid, unit, bytes([fc | 0x80, 1]))
        address, count = struct.unpack(">HH", pdu[1:5])
        if kind == "short":
            count = max(count - 1, 0)
        words = b"".join(struct.pack(">H", (address + i) & 0xFFFF) for i in range(count))
        reply_unit = (unit % 247) + 1 if kind == "wrong_unit" else unit
        reply_tid = (tid + 7) & 0xFFFF if kind == "wrong_tid" else tid
        if kind == "wrong_fc":
            fc = 7 - fc                   # 3 <-> 4
        if kind == "slow":
            time.sleep(arg)
        noise = bytes(self.rng.randrange(256) for _ in range(arg)) if kind == "noise" else b""
        return noise + self._frame(reply_tid, reply_unit, bytes([fc, len(words)]) + words)


class _Pty:
    """The few socket methods `_serve` uses, over a serial device (a pty end)."""

    def __init__(self, path: str) -> None:
        import os
        self._os = os
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)

    def fileno(self) -> int:
        return self.fd

    def settimeout(self, t: float) -> None:
        self.timeout = t

    def recv(self, n: int) -> bytes:
        if not select.select([self.fd], [], [], self.timeout)[0]:
            raise socket.timeout()
        return self._os.read(self.fd, n)

    def sendall(self, data: bytes) -> None:
        self._os.write(self.fd, data)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._os.close(self.fd)
