"""RTU framing that survives line noise.

pymodbus's RTU decoder looks for a frame at the first byte that could start one and,
when that candidate's CRC is wrong, throws the whole receive buffer away: a few noise
bytes before an answer (a long RS-485 line, a converter that emits a byte when it
switches direction) then lose the answer itself, and the unit looks absent.  This
decoder hunts instead: it tries every offset, returns the first complete frame whose
CRC is right, consumes the noise before it, and waits for more bytes only while no
complete frame is in the buffer.  A random candidate passing CRC-16 has a 1 in 65536
chance, and must then also carry the unit id and function asked for.
"""
from __future__ import annotations

from pymodbus.framer.rtu import FramerRTU


class HuntingFramerRTU(FramerRTU):
    def decode(self, data: bytes) -> tuple[int, int, int, bytes]:
        n = len(data)
        for start in range(n - self.MIN_SIZE + 1):
            try:
                pdu_class = self.decoder.lookupPduClass(data[start:])
                size = pdu_class.calculateRtuFrameSize(data[start:]) if pdu_class else 0
            except (IndexError, ValueError, KeyError):
                continue
            if not size or start + size > n:
                continue          # not a frame start, or not complete yet: a later offset may be
            crc_at = start + size - 2
            if self.check_CRC(data[start:crc_at], int.from_bytes(data[crc_at:crc_at + 2], "big")):
                return start + size, data[start], 0, data[start + 1:crc_at]
        return 0, 0, 0, self.EMPTY        # no complete frame yet: wait for more bytes
