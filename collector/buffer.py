"""Durable local buffer: every accepted reading lands here (on disk, fsynced)
before anything is sent to the store.

Design: append-only segment files plus a committed-offset file.

- `seg-<seq>.log` holds records; a record is one emitted batch: a 32-byte header
  (magic, payload length, CRC32 over header and payload, readings, oldest time,
  record sequence number) and the batch as raw numpy columns (int64 ms, float64,
  uint8, uint32 channel codes) behind a small JSON table of channel ids.  One
  write + one fsync per batch, whatever its size.
- An append lands whole or not at all: it is written with plain `os.write` on an
  O_APPEND descriptor (no user-space buffer that could keep half a record and write
  it again later) and, when the write or fsync fails (disk full, I/O error), the
  segment is cut back to its last good length before the error is raised.  So the
  buffer's counts (bytes, readings) always agree with what is in its files.
- Every record carries a sequence number that only grows.  A record whose number
  is not above the last one seen (a duplicated tail) is skipped on read, and the
  `committed` file keeps the number of the last record the sink confirmed, so a
  reading already forwarded is never forwarded twice.
- `committed` says up to where (segment, byte offset, record number) the sink has
  confirmed; rewritten atomically (tmp + fsync + rename) after each confirmed write.
  Segments wholly before it are deleted.
- On open, segments are scanned; a torn record at the end (kill -9 or power cut
  during a write) fails its length/CRC check and is cut off: it was never
  acknowledged to its sender (MQTT PUBACK is sent after the fsync), so the
  sender still has it.  Damaged bytes in the middle of a segment (a disk fault) are
  skipped up to the next valid record: they cost that record only, not the ones after.
- A `committed` file that is damaged or names no place a commit can leave (inside a
  record, past the files, a record number the files do not have) is not trusted:
  everything the buffer holds is forwarded again (the store keeps one reading per
  channel and time), instead of skipping readings never confirmed.  Stray files
  (`seg-copy.log`, a directory) are left alone; a damaged `channels.json` is logged
  and the inputs announce their channels again.

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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mieruka.models import TIME_DTYPE, ChannelInfo, ReadingBatch
from mieruka.outputs import fsync_dir

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<4sIIIqQ")    # magic, payload bytes, crc32, readings, oldest time (ms), record number
_MAGIC = b"MRB2"
_HEADER_V1 = struct.Struct("<4sIIIq")  # buffers written before record numbers (read, never written)
_MAGIC_V1 = b"MRB1"
_SEG_PREFIX, _SEG_SUFFIX = "seg-", ".log"


@dataclass(frozen=True, order=True)
class Position:
    seq: int
    offset: int
    rseq: int = field(default=0, compare=False)     # number of the last record before it


def _crc(n: int, t_min: int, rseq: int, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(struct.pack("<IqQ", n, t_min, rseq)))


def encode(batch: ReadingBatch, rseq: int = 0) -> bytes:
    """A batch -> one record (header + payload); `rseq` is its record number."""
    return frame(*encode_payload(batch), rseq)


def frame(payload: bytes, n: int, t_min: int, rseq: int) -> bytes:
    """Header + payload: the CRC covers the header fields too, so a record number or
    count torn or changed on disk is caught like a damaged payload."""
    return _HEADER.pack(_MAGIC, len(payload), _crc(n, t_min, rseq, payload), n, t_min, rseq) + payload


def encode_payload(batch: ReadingBatch) -> tuple[bytes, int, int]:
    """(payload, readings, oldest time ms) of a batch."""
    ids, codes = np.unique(batch.channel.astype(str), return_inverse=True)
    table = json.dumps(ids.tolist(), ensure_ascii=False).encode()
    payload = b"".join([struct.pack("<I", len(table)), table,
                        batch.time.astype(np.int64).tobytes(), batch.value.astype(np.float64).tobytes(),
                        batch.quality.astype(np.uint8).tobytes(), codes.astype(np.uint32).tobytes()])
    t_min = int(batch.time.astype(np.int64).min()) if len(batch) else 0
    return payload, len(batch), t_min


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


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)      # a full disk must not leave half a file behind
        raise
    fsync_dir(path.parent)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


@dataclass(frozen=True)
class _Record:
    offset: int          # where the record starts in its segment
    end: int             # where the next one starts
    readings: int
    t_min: int           # oldest time (ms)
    rseq: int            # record number (-1: an old record without one)
    payload: bytes
    dup: bool = False    # repeats a record already seen: skipped


@dataclass
class _Segment:
    seq: int
    size: int           # bytes of valid records
    readings: int       # readings in the whole segment (duplicated records not counted)


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
        self.failed_appends = 0          # appends refused by the disk (full, I/O error), cut back
        self._tables: dict[bytes, np.ndarray] = {}
        self._last_drop_log = 0.0
        self._committed_stale = False    # the committed file could not be rewritten (disk full)
        self.segments: list[_Segment] = []
        self.last_rseq = 0               # the newest record's number
        self.committed, self.committed_rseq = Position(0, 0), 0
        self._recover()
        self.pending = self._count_from(self.committed)
        self._fd = self._open_segment(self.segments[-1].seq)

    # ------------------------------------------------------------------ files
    def _seg_path(self, seq: int) -> Path:
        return self.dir / f"{_SEG_PREFIX}{seq:012d}{_SEG_SUFFIX}"

    def _open_segment(self, seq: int) -> int:
        # O_APPEND and no user-space buffer: a failed write leaves nothing behind that a
        # later write could flush (the cause of duplicated records on a full disk)
        return os.open(self._seg_path(seq), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _scan(self, path: Path, start: int = 0, after: int = 0, damaged: list | None = None):
        """The valid records of a segment from byte `start`.  Bytes that are no valid record
        (torn or corrupt) are skipped up to the next valid record, if one follows (damage
        in the middle of a file must not cost the records after it); `damaged` gets
        (offset, bytes) of each such stretch.  A record numbered `after` or lower, or not
        above one before it, repeats a record already seen: it comes with `dup` set."""
        with open(path, "rb") as f:
            f.seek(start)
            off = start
            while True:
                rec = self._record_at(f, off)
                if rec is None:
                    nxt = self._resync(f, off)
                    if nxt is None:
                        return
                    if damaged is not None:
                        damaged.append((off, nxt - off))
                    off = nxt
                    f.seek(off)
                    rec = self._record_at(f, off)
                n, t_min, rseq, payload, end = rec
                dup = 0 <= rseq <= after
                yield _Record(off, end, n, t_min, rseq, payload, dup)
                after = max(after, rseq)
                off = end
                f.seek(off)

    @staticmethod
    def _record_at(f, off: int):
        """(readings, oldest ms, record number, payload, end) of a valid record at `off`, else None."""
        f.seek(off)
        head = f.read(_HEADER.size)
        if head[:4] == _MAGIC and len(head) == _HEADER.size:
            _, length, crc, n, t_min, rseq = _HEADER.unpack(head)
            payload = f.read(length)
            if len(payload) < length or _crc(n, t_min, rseq, payload) != crc:
                return None
            return n, t_min, rseq, payload, off + _HEADER.size + length
        if head[:4] == _MAGIC_V1 and len(head) >= _HEADER_V1.size:
            _, length, crc, n, t_min = _HEADER_V1.unpack(head[:_HEADER_V1.size])
            f.seek(off + _HEADER_V1.size)
            payload = f.read(length)
            if len(payload) < length or zlib.crc32(payload) != crc:
                return None
            return n, t_min, -1, payload, off + _HEADER_V1.size + length
        return None

    def _resync(self, f, off: int) -> int | None:
        """Where the next valid record after damaged bytes at `off` starts, or None."""
        f.seek(off + 1)
        rest = f.read()
        i = 0
        while True:
            i2, i1 = rest.find(_MAGIC, i), rest.find(_MAGIC_V1, i)
            cands = [x for x in (i2, i1) if x >= 0]
            if not cands:
                return None
            i = min(cands)
            if self._record_at(f, off + 1 + i) is not None:
                return off + 1 + i
            i += 1

    def _recover(self) -> None:
        seqs = []
        for p in self.dir.glob(f"{_SEG_PREFIX}*{_SEG_SUFFIX}"):
            digits = p.name[len(_SEG_PREFIX):-len(_SEG_SUFFIX)]
            if digits.isdigit() and p.is_file():
                seqs.append(int(digits))
            else:       # not ours (a copy, a stray directory): never read, never deleted
                log.warning("buffer: ignoring %s (not a segment file this buffer wrote)", p)
        seqs.sort()
        self.committed, self.committed_rseq = self._read_committed(seqs)
        ends: dict[int, int] = {}            # committed segment: record end -> the number a commit there writes
        first = None                         # committed segment: its first record's number
        for seq in seqs:
            path = self._seg_path(seq)
            size, readings, dups, damaged = 0, 0, 0, []
            for r in self._scan(path, 0, self.last_rseq, damaged):
                size = r.end
                if r.dup:
                    dups += 1
                else:
                    readings += r.readings
                    self.last_rseq = max(self.last_rseq, r.rseq)
                if seq == self.committed.seq:
                    ends[r.end] = self.last_rseq
                    first = r.rseq if first is None else first
            if dups:
                log.warning("buffer %s: %d records repeat earlier ones; they are skipped", path.name, dups)
            for off, n in damaged:
                log.error("buffer %s: %d damaged bytes at offset %d skipped (a disk fault); the records after "
                          "them are kept", path.name, n, off)
            actual = path.stat().st_size
            if actual > size:
                log.warning("buffer %s: cutting %d bytes of a torn record at the end (written during a crash "
                            "or a failed write; never acknowledged to its sender)", path.name, actual - size)
                with open(path, "r+b") as f:
                    f.truncate(size)
                    os.fsync(f.fileno())
            self.segments.append(_Segment(seq, size, readings))
        c = self.committed
        if seqs and (c.seq > seqs[-1] or (c.seq in seqs and (
                ends.get(c.offset) != self.committed_rseq if c.offset
                else first is not None and first >= 0 and self.committed_rseq >= first))):
            # not a place a commit can have left (a damaged or hand-edited `committed` file):
            # everything still here is sent again (the store keeps one reading per channel and
            # time), rather than skipping readings never confirmed
            log.error("buffer: the committed position (%d %d %d) does not match the segment files; "
                      "forwarding everything the buffer holds again", c.seq, c.offset, self.committed_rseq)
            self.committed, self.committed_rseq = Position(seqs[0], 0), 0
        self.last_rseq = max(self.last_rseq, self.committed_rseq)
        if not self.segments:
            self._seg_path(1).touch()
            fsync_dir(self.dir)
            self.segments.append(_Segment(1, 0, 0))
        # a position before the first segment (its segment was dropped when full) means its start
        self.committed = max(self.committed, Position(self.segments[0].seq, 0))

    def _read_committed(self, seqs: list[int]) -> tuple[Position, int]:
        try:
            parts = [int(x) for x in (self.dir / "committed").read_text().split()]
            seq, off = parts[0], parts[1]
            rseq = parts[2] if len(parts) > 2 else 0
            if min(seq, off, rseq) < 0:
                raise ValueError("negative")
        except FileNotFoundError:
            return Position(seqs[0] if seqs else 1, 0), 0
        except (ValueError, IndexError, UnicodeDecodeError, OSError) as e:
            log.error("buffer: the committed file is damaged (%s); forwarding everything the buffer holds "
                      "again (the store keeps one reading per channel and time)", e)
            return Position(seqs[0] if seqs else 1, 0), 0
        return Position(seq, off), rseq

    def _count_from(self, pos: Position) -> int:
        total = 0
        for s in self.segments:
            if s.seq > pos.seq:
                total += s.readings
            elif s.seq == pos.seq:
                total += sum(r.readings for r in self._scan(self._seg_path(s.seq), pos.offset, self.committed_rseq)
                             if not r.dup)
        return total

    # ----------------------------------------------------------------- append
    @property
    def size_bytes(self) -> int:
        return sum(s.size for s in self.segments)

    def append(self, batch: ReadingBatch) -> bool:
        """Write a batch durably (returns after fsync).  False if it was dropped
        because the buffer is full and `when_full = drop_newest`.  An OSError (disk
        full) leaves the buffer exactly as it was: the caller keeps the batch and
        tries again later."""
        if not len(batch):
            return True
        body = encode_payload(batch)       # outside the lock: the forwarder may read meanwhile
        with self.lock:
            rec = frame(*body, self.last_rseq + 1)
            if self.size_bytes + len(rec) > self.max_bytes and not self._make_room(len(rec), len(batch)):
                return False
            if self.segments[-1].size and self.segments[-1].size + len(rec) > self.segment_bytes:
                self._rotate()
            seg = self.segments[-1]
            try:
                _write_all(self._fd, rec)
                if self.fsync:
                    os.fsync(self._fd)
            except OSError:
                self.failed_appends += 1
                self._cut_back(seg)
                raise
            seg.size += len(rec)
            seg.readings += len(batch)
            self.last_rseq += 1
            self.pending += len(batch)
            self.appended += len(batch)
        return True

    def _cut_back(self, seg: _Segment) -> None:
        """After a failed write: the segment back to its last good length, so a part of
        the record never stays behind (a later append would follow a torn record)."""
        try:
            os.ftruncate(self._fd, seg.size)
        except OSError as e:                 # cannot happen on Linux file systems; be loud if it does
            log.error("buffer %s: could not cut a failed write back to %d bytes (%s); "
                      "the torn record is cut at the next start", self._seg_path(seg.seq).name, seg.size, e)
            # new records go to a fresh segment: nothing valid ever follows the torn bytes
            os.close(self._fd)
            self._fd = self._open_segment(seg.seq + 1)
            self.segments.append(_Segment(seg.seq + 1, 0, 0))

    def _rotate(self) -> None:
        seq = self.segments[-1].seq + 1
        fd = self._open_segment(seq)
        os.close(self._fd)
        self._fd = fd
        self.segments.append(_Segment(seq, 0, 0))
        fsync_dir(self.dir)

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
                lost = sum(r.readings for r in self._scan(self._seg_path(old.seq), self.committed.offset,
                                                            self.committed_rseq) if not r.dup)
            else:
                lost = 0
            self._seg_path(old.seq).unlink(missing_ok=True)
            if self.committed.seq <= old.seq:
                # the committed file keeps pointing at the deleted segment: at the next
                # start, a position before the first segment means "from its start"
                self.committed = Position(self.segments[0].seq, 0)
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
        if it is larger than max_readings) and the position to commit once stored.
        """
        with self.lock:
            pos, rseq = self.committed, self.committed_rseq
            parts, total = [], 0
            for s in self.segments:
                if s.seq < pos.seq:
                    continue
                start = pos.offset if s.seq == pos.seq else 0
                full = False
                for r in self._scan(self._seg_path(s.seq), start, rseq):
                    if r.offset >= s.size:
                        break
                    if r.dup:
                        pos = Position(s.seq, r.end, rseq)
                        continue
                    if total and total + r.readings > max_readings:
                        full = True
                        break
                    parts.append(decode(r.payload, r.readings, self._tables))
                    total += r.readings
                    rseq = max(rseq, r.rseq)
                    pos = Position(s.seq, r.end, rseq)
                if full or total >= max_readings:
                    break
            return ReadingBatch.concat(parts), pos

    def commit(self, pos: Position, n: int) -> None:
        """The sink confirmed everything before `pos` (n readings, records up to
        number `pos.rseq`): remember it and delete segments wholly before it.  If the disk is too
        full to rewrite the committed file, the position is kept in memory (and written
        at the next commit): forwarding goes on and frees space."""
        with self.lock:
            if pos <= self.committed:
                return
            rseq = max(pos.rseq, self.committed_rseq)
            self.committed, self.committed_rseq = pos, rseq
            self.pending = max(0, self.pending - n)
            while len(self.segments) > 1 and self.segments[0].seq < pos.seq:
                old = self.segments.pop(0)
                self._seg_path(old.seq).unlink(missing_ok=True)
            try:
                _atomic_write(self.dir / "committed", f"{pos.seq} {pos.offset} {rseq}\n".encode())
                if self._committed_stale:
                    log.warning("buffer: committed position written again")
                self._committed_stale = False
            except OSError as e:
                if not self._committed_stale:
                    log.error("buffer: could not write the committed position (%s); kept in memory. "
                              "After a crash now, confirmed readings would be sent again (the store "
                              "keeps one per channel and time, so nothing is counted twice)", e)
                self._committed_stale = True

    def recount(self) -> int:
        """Readings not yet confirmed, counted from the files (checks `pending`)."""
        with self.lock:
            return self._count_from(self.committed)

    def oldest_ms(self) -> int | None:
        """Time (UTC ms) of the oldest reading's record not yet confirmed."""
        with self.lock:
            for s in self.segments:
                if s.seq < self.committed.seq:
                    continue
                start = self.committed.offset if s.seq == self.committed.seq else 0
                for r in self._scan(self._seg_path(s.seq), start, self.committed_rseq):
                    if r.offset >= s.size:
                        return None
                    if not r.dup:
                        return r.t_min
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
        path = self.dir / "channels.json"
        try:
            return [ChannelInfo(**d) for d in json.loads(path.read_text())]
        except FileNotFoundError:
            return []
        except (ValueError, TypeError, UnicodeDecodeError) as e:     # damaged: the inputs announce theirs again
            log.error("buffer %s is damaged (%s); channel metadata comes again from the inputs", path, e)
            return []

    def close(self) -> None:
        with self.lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
