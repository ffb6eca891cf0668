"""Durable local buffer: every accepted reading lands here (on disk, fsynced)
before anything is sent to the store.

Design: append-only segment files plus a committed-offset file.

- `seg-<seq>.log` holds records; a record is one emitted batch: a 24-byte header
  (magic, payload length, CRC32, readings, oldest time) and the batch as raw
  numpy columns (int64 ms, float64, uint8, uint32 channel codes) behind a small
  JSON table of channel ids.  One write + one fsync per batch, whatever its size.
- `committed` says up to where (segment, byte offset) the sink has confirmed;
  rewritten atomically (tmp + fsync + rename) after each confirmed write.
  Segments wholly before it are deleted.
- On open, segments are scanned; a torn record at the end (kill -9 or power cut
  during a write) fails its length/CRC check and is cut off: it was never
  acknowledged to its sender (MQTT PUBACK is sent after the fsync), so the
  sender still has it.

Why not SQLite: an append-only log needs no index, no page rewrites and no
delete-then-vacuum to give disk back; dropping the oldest data when full is
deleting a file, and the bound is exact.  bench/bench_ingest.py measures it.

Crash between "sink confirmed" and "committed file written" resends those
records: InfluxDB keeps one point per series + timestamp and the embedded store
is idempotent on (channel, time), so a resend never duplicates a reading.

Bounded disk use: `max_mb` over all segments; `when_full = drop_oldest` deletes
the oldest segment (its unforwarded readings are counted as dropped),
`drop_newest` refuses the new batch (counted).  Both are logged, never silent.
"""
from __future__ import annotations

import json
import logging
import os
import struct
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mieruka.models import TIME_DTYPE, ChannelInfo, ReadingBatch

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<4sIIIq")     # magic, payload bytes, crc32, readings, oldest time (ms)
_MAGIC = b"MRB1"
_SEG_PREFIX, _SEG_SUFFIX = "seg-", ".log"


@dataclass(frozen=True, order=True)
class Position:
    seq: int
    offset: int


def encode(batch: ReadingBatch) -> bytes:
    """A batch -> one record (header + payload)."""
    ids, codes = np.unique(batch.channel.astype(str), return_inverse=True)
    table = json.dumps(ids.tolist(), ensure_ascii=False).encode()
    payload = b"".join([struct.pack("<I", len(table)), table,
                        batch.time.astype(np.int64).tobytes(), batch.value.astype(np.float64).tobytes(),
                        batch.quality.astype(np.uint8).tobytes(), codes.astype(np.uint32).tobytes()])
    t_min = int(batch.time.astype(np.int64).min()) if len(batch) else 0
    return _HEADER.pack(_MAGIC, len(payload), zlib.crc32(payload), len(batch), t_min) + payload


def decode(payload: bytes, n: int, _tables: dict[bytes, np.ndarray] | None = None) -> ReadingBatch:
    (tlen,) = struct.unpack_from("<I", payload)
    raw = payload[4:4 + tlen]
    ids = None if _tables is None else _tables.get(raw)
    if ids is None:
        ids = np.array(json.loads(raw), dtype=object)
        if _tables is not None and len(_tables) < 10000:
            _tables[raw] = ids
    o = 4 + tlen
    t = np.frombuffer(payload, np.int64, n, o)
    v = np.frombuffer(payload, np.float64, n, o + 8 * n)
    q = np.frombuffer(payload, np.uint8, n, o + 16 * n)
    c = np.frombuffer(payload, np.uint32, n, o + 17 * n)
    return ReadingBatch(t.astype(TIME_DTYPE), ids[c], v.copy(), q.copy())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


@dataclass
class _Segment:
    seq: int
    size: int           # bytes of valid records
    readings: int       # readings in the whole segment


class DiskBuffer:
    """Append-only, fsynced, bounded.  `append` from the input side, `read` +
    `commit` from the forwarder; thread-safe."""

    def __init__(self, directory: str | Path, *, max_mb: float = 512.0, when_full: str = "drop_oldest",
                 segment_mb: float = 8.0, fsync: bool = True):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = int(max_mb * 1024 * 1024)
        # several segments fit in the bound, so dropping the oldest frees a small part of it
        self.segment_bytes = max(4096, min(int(segment_mb * 1024 * 1024), self.max_bytes // 4))
        self.when_full = when_full
        self.fsync = fsync
        self.lock = threading.RLock()
        self.dropped = 0                 # readings dropped because the buffer was full (since start)
        self.appended = 0                # readings appended since start
        self._tables: dict[bytes, np.ndarray] = {}
        self._last_drop_log = 0.0
        self.segments: list[_Segment] = []
        self._recover()
        self.committed = self._read_committed()
        self.pending = self._count_from(self.committed)
        self._file = open(self._seg_path(self.segments[-1].seq), "ab")

    # ------------------------------------------------------------------ files
    def _seg_path(self, seq: int) -> Path:
        return self.dir / f"{_SEG_PREFIX}{seq:012d}{_SEG_SUFFIX}"

    def _scan(self, path: Path, start: int = 0):
        """(offset, readings, oldest ms, record bytes) of each valid record; stops at a bad one."""
        with open(path, "rb") as f:
            f.seek(start)
            off = start
            while True:
                head = f.read(_HEADER.size)
                if len(head) < _HEADER.size:
                    return
                magic, length, crc, n, t_min = _HEADER.unpack(head)
                if magic != _MAGIC:
                    return
                payload = f.read(length)
                if len(payload) < length or zlib.crc32(payload) != crc:
                    return
                yield off, n, t_min, payload
                off += _HEADER.size + length

    def _recover(self) -> None:
        seqs = sorted(int(p.name[len(_SEG_PREFIX):-len(_SEG_SUFFIX)]) for p in self.dir.glob(f"{_SEG_PREFIX}*{_SEG_SUFFIX}"))
        for seq in seqs:
            path = self._seg_path(seq)
            size, readings = 0, 0
            for off, n, _, payload in self._scan(path):
                size = off + _HEADER.size + len(payload)
                readings += n
            actual = path.stat().st_size
            if actual != size:
                log.warning("buffer %s: cutting %d bytes of a torn record at the end (written during a crash; "
                            "never acknowledged to its sender)", path.name, actual - size)
                with open(path, "r+b") as f:
                    f.truncate(size)
                    os.fsync(f.fileno())
            self.segments.append(_Segment(seq, size, readings))
        if not self.segments:
            self._seg_path(1).touch()
            _fsync_dir(self.dir)
            self.segments.append(_Segment(1, 0, 0))

    def _read_committed(self) -> Position:
        first = Position(self.segments[0].seq, 0)
        try:
            seq, off = (int(x) for x in (self.dir / "committed").read_text().split())
        except (FileNotFoundError, ValueError):
            return first
        pos = Position(seq, off)
        return max(pos, first)

    def _count_from(self, pos: Position) -> int:
        total = 0
        for s in self.segments:
            if s.seq > pos.seq:
                total += s.readings
            elif s.seq == pos.seq:
                total += sum(n for _, n, _, _ in self._scan(self._seg_path(s.seq), pos.offset))
        return total

    # ----------------------------------------------------------------- append
    @property
    def size_bytes(self) -> int:
        return sum(s.size for s in self.segments)

    def append(self, batch: ReadingBatch) -> bool:
        """Write a batch durably (returns after fsync).  False if it was dropped
        because the buffer is full and `when_full = drop_newest`."""
        if not len(batch):
            return True
        rec = encode(batch)
        with self.lock:
            if self.size_bytes + len(rec) > self.max_bytes and not self._make_room(len(rec), len(batch)):
                return False
            if self.segments[-1].size and self.segments[-1].size + len(rec) > self.segment_bytes:
                self._rotate()
            self._file.write(rec)
            self._file.flush()
            if self.fsync:
                os.fsync(self._file.fileno())
            seg = self.segments[-1]
            seg.size += len(rec)
            seg.readings += len(batch)
            self.pending += len(batch)
            self.appended += len(batch)
        return True

    def _rotate(self) -> None:
        self._file.close()
        seq = self.segments[-1].seq + 1
        self._file = open(self._seg_path(seq), "ab")
        _fsync_dir(self.dir)
        self.segments.append(_Segment(seq, 0, 0))

    def _make_room(self, need: int, n: int) -> bool:
        if self.when_full == "drop_newest" or need > self.max_bytes:
            self._count_drop(n, "the newest batch")
            return False
        while self.size_bytes + need > self.max_bytes:
            if len(self.segments) == 1:
                self._rotate()
            old = self.segments.pop(0)
            if old.seq > self.committed.seq:
                lost = old.readings
            elif old.seq == self.committed.seq:
                lost = sum(k for _, k, _, _ in self._scan(self._seg_path(old.seq), self.committed.offset))
            else:
                lost = 0
            self._seg_path(old.seq).unlink(missing_ok=True)
            if self.committed.seq <= old.seq:
                self.committed = Position(self.segments[0].seq, 0)
                _atomic_write(self.dir / "committed", f"{self.committed.seq} {self.committed.offset}\n".encode())
            self.pending -= lost
            self._count_drop(lost, f"the oldest segment ({old.size} bytes)")
        return True

    def _count_drop(self, n: int, what: str) -> None:
        self.dropped += n
        now = time.monotonic()
        if now - self._last_drop_log > 10:
            self._last_drop_log = now
            log.error("buffer full (%.0f MB): dropped %s, %d readings; %d dropped since start "
                      "(policy when_full=%s; is the store reachable?)", self.max_bytes / 2**20, what, n,
                      self.dropped, self.when_full)

    # ------------------------------------------------------- forwarder side
    def read(self, max_readings: int = 5000) -> tuple[ReadingBatch, Position]:
        """The oldest unconfirmed readings (whole records; at least one record even
        if it is larger than max_readings) and the position to commit once stored."""
        with self.lock:
            pos = self.committed
            parts, total = [], 0
            for s in self.segments:
                if s.seq < pos.seq:
                    continue
                start = pos.offset if s.seq == pos.seq else 0
                full = False
                for off, n, _, payload in self._scan(self._seg_path(s.seq), start):
                    if off >= s.size:
                        break
                    if total and total + n > max_readings:
                        full = True
                        break
                    parts.append(decode(payload, n, self._tables))
                    total += n
                    pos = Position(s.seq, off + _HEADER.size + len(payload))
                if full or total >= max_readings:
                    break
            return ReadingBatch.concat(parts), pos

    def commit(self, pos: Position, n: int) -> None:
        """The sink confirmed everything before `pos` (n readings): remember it and
        delete segments wholly before it."""
        with self.lock:
            if pos <= self.committed:
                return
            _atomic_write(self.dir / "committed", f"{pos.seq} {pos.offset}\n".encode())
            self.committed = pos
            self.pending = max(0, self.pending - n)
            while len(self.segments) > 1 and self.segments[0].seq < pos.seq:
                old = self.segments.pop(0)
                self._seg_path(old.seq).unlink(missing_ok=True)

    def oldest_ms(self) -> int | None:
        """Time (UTC ms) of the oldest reading's record not yet confirmed."""
        with self.lock:
            for s in self.segments:
                if s.seq < self.committed.seq:
                    continue
                start = self.committed.offset if s.seq == self.committed.seq else 0
                for off, n, t_min, _ in self._scan(self._seg_path(s.seq), start):
                    return t_min if off < s.size else None
            return None

    # ------------------------------------------------------ channel metadata
    def save_channels(self, infos: list[ChannelInfo]) -> None:
        """Channel metadata (quantity, tags) of channels the inputs discovered, kept
        beside the data so that buffered readings keep their tags across restarts."""
        import dataclasses
        data = json.dumps([dataclasses.asdict(i) for i in infos], ensure_ascii=False, indent=0).encode()
        with self.lock:
            _atomic_write(self.dir / "channels.json", data)

    def load_channels(self) -> list[ChannelInfo]:
        try:
            return [ChannelInfo(**d) for d in json.loads((self.dir / "channels.json").read_text())]
        except FileNotFoundError:
            return []

    def close(self) -> None:
        with self.lock:
            self._file.close()
