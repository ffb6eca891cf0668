"""The embedded store: one SQLite file in WAL mode holding readings as compact
per-channel chunks of numpy arrays.

Why chunks and not one row per reading: SQLite hands rows to Python one by one
(about 1-2 M rows/s at best), far below the 5 M points/s a year of 1-second data
needs to load quickly.  A chunk is up to `CHUNK_POINTS` readings of one channel
stored as three BLOBs (int64 ms times, float64 values, uint8 quality) that
`np.frombuffer` turns into arrays without a Python loop.  SQLite still gives us
what we need from an engine: atomic, durable transactions (a committed batch
survives kill -9 and power loss with `synchronous=FULL`), WAL so that readers in
other processes (the API) never block the collector, and a file people can copy.

Layout (see docs/collector.md "Embedded store"):

- `chunks(channel, t0, t1, n, times, vals, qual)`: the chunks of one channel never
  overlap in time; times inside are strictly increasing (deduplicated).
- `staged(t, channel, v, q)`: small writes (a collector flushing a few readings per
  channel each second) land here as rows keyed on (t, channel): a flush of one
  instant appends to the end of the B-tree and touches a handful of pages (keyed on
  (channel, t) it touched one page per channel: 15x the system time in fsync'd WAL
  writes).  Once `STAGE_ROWS` rows wait they are folded into chunks, all channels in
  one transaction.  A fold appends a new chunk or tops up the channel's last chunk
  when that rewrites little; `compact()` (run with retention) merges runs of small
  chunks, so write amplification stays low and reads see big chunks.
- `channels`: channel metadata (quantity, tags) so that readers need no site config.
- `counter_offsets(channel, t, offset)`: continuous-counter offsets (see
  `mieruka.collector.counters`): from time t on, continuous = raw + offset.
- `meta(key, value)`: facts about the file itself (schema version, when it was
  created and migrated, by which mieruka version).

Schema version: `PRAGMA user_version` holds `SCHEMA_VERSION`.  A store written by an
older mieruka is migrated in place when a writer opens it (one transaction per step,
so a power cut mid-upgrade leaves the old version intact); a store from a newer
mieruka is refused with a clear error instead of being misread.  Version 0 is the
format before versioning (no `meta` table, user_version 0).

Every write is idempotent on (channel, time): the newest write of a (channel, time)
wins, so replaying the same recording twice changes nothing.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigError
from ..models import TIME_DTYPE, ChannelInfo, Quality, ReadingBatch
from .base import Aggregate, Store, TimeLike, to_datetime64

if TYPE_CHECKING:
    from ..site import SiteConfig

log = logging.getLogger(__name__)

CHUNK_POINTS = 8192      # readings per chunk: big enough that per-chunk overhead vanishes on reads
STAGE_ROWS = 50_000      # staged rows (all channels) before they are folded into chunks
TOPUP_FACTOR = 4         # top up the last chunk only if it holds < this x the new points
DIRECT_POINTS = 256      # a write with at least this many points of a channel goes straight to chunks
DB_NAME = "mieruka.sqlite"
_MIN, _MAX = -(1 << 62), 1 << 62

_SCHEMA = """
CREATE TABLE IF NOT EXISTS channel_ids (code INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL);
CREATE TABLE IF NOT EXISTS channels (id TEXT PRIMARY KEY, quantity TEXT NOT NULL, unit TEXT, equipment_kind TEXT,
    system TEXT, breaker TEXT, process TEXT, equipment TEXT, meter TEXT, standby_allowance_kw REAL,
    rated_power_kw REAL, capacity_m3_per_min REAL, always_on INTEGER);
CREATE TABLE IF NOT EXISTS chunks (channel INTEGER NOT NULL, t0 INTEGER NOT NULL, t1 INTEGER NOT NULL,
    n INTEGER NOT NULL, times BLOB NOT NULL, vals BLOB NOT NULL, qual BLOB NOT NULL,
    PRIMARY KEY (channel, t0)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS staged (channel INTEGER NOT NULL, t INTEGER NOT NULL, v REAL, q INTEGER NOT NULL,
    PRIMARY KEY (t, channel)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counter_offsets (channel INTEGER NOT NULL, t INTEGER NOT NULL, offset REAL NOT NULL,
    PRIMARY KEY (channel, t)) WITHOUT ROWID;
"""
_META = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
SCHEMA_VERSION = 2


def _now_iso() -> str:
    import datetime as dt
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _to_v1(cur: sqlite3.Cursor) -> None:
    """v0 -> v1: add the `meta` table (data tables are unchanged)."""
    cur.execute(_META)


def _to_v2(cur: sqlite3.Cursor) -> None:
    """v1 -> v2: channels.always_on (loads that must run outside production, issue 11)."""
    cols = {r[1] for r in cur.execute("PRAGMA table_info(channels)")}
    if "always_on" not in cols:
        cur.execute("ALTER TABLE channels ADD COLUMN always_on INTEGER")


# version reached -> step from the version before; applied in order, each in its own transaction
_MIGRATIONS = {1: _to_v1, 2: _to_v2}


def store_error(path: Path, e: BaseException, readonly: bool = True) -> ConfigError:
    """A SQLite (or file) failure on an embedded store, worded for people (file and cause)."""
    return ConfigError(_open_error(path, e, readonly))


def schema_version(db: sqlite3.Connection) -> int:
    return db.execute("PRAGMA user_version").fetchone()[0]


@contextlib.contextmanager
def write_transaction(db: sqlite3.Connection):
    """A cursor inside BEGIN IMMEDIATE (the write lock taken at once, so two writers
    queue instead of failing half-way): COMMIT when the block ends, ROLLBACK when it
    raises (disk full, killed thread), so the store holds all of it or none."""
    cur = db.cursor()
    cur.execute("BEGIN IMMEDIATE")
    try:
        yield cur
        cur.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            cur.execute("ROLLBACK")
        raise


def _create_or_migrate(db: sqlite3.Connection, path: Path) -> None:
    """Create a new store at the newest schema, or migrate an older one step by step."""
    from .. import __version__
    with write_transaction(db) as cur:
        version = schema_version(db)
        fresh = cur.execute("SELECT count(*) FROM sqlite_master WHERE name='chunks'").fetchone()[0] == 0
        if version > SCHEMA_VERSION:
            raise ConfigError(f"{path}: embedded store schema version {version} is newer than this mieruka "
                              f"({__version__}) understands ({SCHEMA_VERSION}); upgrade mieruka or restore a backup")
        if fresh:
            for st in _statements(_SCHEMA + _META):
                cur.execute(st)
            cur.executemany("INSERT OR REPLACE INTO meta VALUES (?,?)",
                            [("created", _now_iso()), ("created_by", __version__)])
            cur.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    if fresh:
        return
    while version < SCHEMA_VERSION:
        target = version + 1
        with write_transaction(db) as cur:
            found = schema_version(db)
            if found == version:                # else another writer migrated meanwhile: nothing written
                _MIGRATIONS[target](cur)
                cur.execute("INSERT OR REPLACE INTO meta VALUES (?,?)",
                            (f"migrated_to_{target}", f"{_now_iso()} by mieruka {__version__}"))
                cur.execute(f"PRAGMA user_version={target}")
        if found != version:
            version = found
            continue
        log.warning("%s: embedded store migrated from schema %d to %d", path, version, target)
        version = target


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _ms(t: TimeLike, tz, default: int) -> int:
    v = to_datetime64(t, tz)
    return default if v is None else int(v.astype(np.int64))


def _dedup_last(t: np.ndarray, *cols: np.ndarray) -> tuple[np.ndarray, ...]:
    """Sort by time (stable) and keep the LAST of equal times: later parts win."""
    if len(t) < 2 or (t[1:] > t[:-1]).all():     # the common case: already strictly increasing
        return (t,) + cols
    o = np.argsort(t, kind="stable")
    t = t[o]
    keep = np.r_[t[1:] != t[:-1], True] if len(t) else np.empty(0, bool)
    return (t[keep],) + tuple(c[o][keep] for c in cols)


def _on_readonly_fs(path: Path) -> bool:
    import os
    try:
        return bool(os.statvfs(path.parent).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _open_error(path: Path, e: BaseException, readonly: bool) -> str:
    """Why a store could not be opened, in words a person can act on."""
    why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
    text = why.lower()
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return (f"{path}: not a readable embedded store: it is damaged ({why}); move it aside (keep it: "
                f"`sqlite3 FILE .recover` saves what it can) and start again for a new store, or restore a "
                f"backup (`mieruka restore`)")
    if "locked" in text or "busy" in text:
        return (f"{path}: the embedded store is locked by another process ({why} after waiting 30 s); "
                f"try again when it is released")
    what = "read the embedded store" if readonly else "open the embedded store for writing"
    return f"{path}: cannot {what} ({why}); check the data directory's permissions and free space"


class EmbeddedStore(Store):
    """SQLite (WAL) store of per-channel numpy chunks.  One writer process at a time
    (the collector or a replay); any number of reader processes."""

    def __init__(self, path: str | Path, *, readonly: bool = False, retention_days: float = 0, tz=None,
                 synchronous: str = "FULL", stage_rows: int = STAGE_ROWS) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self.retention_days = retention_days
        self.tz = tz
        self.stage_rows = stage_rows
        self.db = None
        try:
            self._open(synchronous)
        except (sqlite3.DatabaseError, OSError) as e:      # damaged, unreadable, read-only, full disk
            if self.db is not None:
                self.db.close()
                self.db = None
            raise ConfigError(_open_error(self.path, e, readonly)) from None
        self._codes: dict[str, int] = {}

    def _open(self, synchronous: str) -> None:
        readonly = self.readonly
        if readonly:
            if not self.path.exists():
                raise ConfigError(f"{self.path}: no embedded store here yet (run `mieruka collect` or `replay` first)")
            try:
                self.db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30, isolation_level=None,
                                          check_same_thread=False)
                self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except sqlite3.OperationalError:
                if not _on_readonly_fs(self.path) or Path(f"{self.path}-wal").exists():
                    raise
                # a WAL store on a read-only mount (a copy for an auditor, a data dir remounted
                # read-only): SQLite cannot make its shared-memory file; with no WAL file nobody
                # can be writing, so the file is read as it is
                if self.db is not None:
                    self.db.close()
                self.db = sqlite3.connect(f"file:{self.path}?immutable=1", uri=True, isolation_level=None,
                                          check_same_thread=False)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed batch survives power loss too, not only kill -9 (one fsync per batch)
            self.db.execute(f"PRAGMA synchronous={synchronous}")
            self.db.execute("PRAGMA busy_timeout=30000")
            _create_or_migrate(self.db, self.path)                     # all tables or none
        self.db.execute("PRAGMA busy_timeout=30000")
        if readonly and self.db.execute("SELECT count(*) FROM sqlite_master WHERE name='counter_offsets'"
                                        ).fetchone()[0] == 0:
            self.db.close()
            raise ConfigError(f"{self.path}: the embedded store is not initialised yet (its writer is starting)")
        if readonly and schema_version(self.db) > SCHEMA_VERSION:
            v = schema_version(self.db)
            self.db.close()
            raise ConfigError(f"{self.path}: embedded store schema version {v} is newer than this mieruka "
                              f"understands ({SCHEMA_VERSION}); upgrade mieruka")
        self._staged = 0 if readonly else self.db.execute("SELECT count(*) FROM staged").fetchone()[0]

    @classmethod
    def from_site(cls, cfg: "SiteConfig", readonly: bool = False) -> "EmbeddedStore":
        return cls(cfg.data_dir / DB_NAME, readonly=readonly, retention_days=cfg.storage.retention_days, tz=cfg.tz)

    # ------------------------------------------------------------------ codes
    def _code(self, channel: str, create: bool = False) -> int | None:
        c = self._codes.get(channel)
        if c is None:
            row = self.db.execute("SELECT code FROM channel_ids WHERE id=?", (channel,)).fetchone()
            if row is None:
                if not create:
                    return None
                c = self.db.execute("INSERT INTO channel_ids(id) VALUES (?)", (channel,)).lastrowid
            else:
                c = row[0]
            self._codes[channel] = c
        return c

    # ------------------------------------------------------------------ writing
    def write(self, batch: ReadingBatch, counter_offsets: list[tuple[str, np.datetime64, float]] | None = None
              ) -> None:
        """Store a batch in one transaction (durable on return); idempotent on (channel, time).
        `counter_offsets` (channel, time, offset) are committed in the same transaction."""
        if self.readonly:
            raise RuntimeError("store opened read-only")
        if not len(batch) and not counter_offsets:
            return
        import pyarrow as pa
        enc = pa.array(batch.channel, pa.string()).dictionary_encode()
        names = enc.dictionary.to_pylist()
        idx = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64) if len(batch) else np.empty(0, np.int64)
        order = np.argsort(idx, kind="stable")
        bounds = np.searchsorted(idx[order], np.arange(len(names) + 1))
        t_all = batch.time.astype(np.int64)
        counts = np.diff(bounds)
        try:
            with write_transaction(self.db) as cur:
                codes = np.array([self._code(n, create=True) for n in names], np.int64)
                # many points of a channel (replay, bulk load): merged straight into its chunks
                for k in np.flatnonzero(counts >= DIRECT_POINTS):
                    rows = order[bounds[k]:bounds[k + 1]]
                    self._merge(cur, int(codes[k]), t_all[rows], batch.value[rows], batch.quality[rows])
                # a few points of many channels (a collector's flush): one executemany of staged rows
                small = counts[idx] < DIRECT_POINTS if len(idx) else np.empty(0, bool)
                if small.any():
                    cur.executemany("INSERT OR REPLACE INTO staged VALUES (?,?,?,?)",
                                    zip(codes[idx[small]].tolist(), t_all[small].tolist(), batch.value[small].tolist(),
                                        batch.quality[small].tolist()))
                    self._staged += int(small.sum())
                    if self._staged >= self.stage_rows:
                        self._fold_all(cur)
                for ch, t, off in counter_offsets or ():
                    cur.execute("INSERT OR REPLACE INTO counter_offsets VALUES (?,?,?)",
                                (self._code(ch, create=True), int(np.datetime64(t, "ms").astype(np.int64)), float(off)))
        except BaseException:
            self._codes.clear()
            self._staged = self.db.execute("SELECT count(*) FROM staged").fetchone()[0]
            raise

    def _fold_all(self, cur: sqlite3.Cursor) -> None:
        """Move every staged row into its channel's chunks (inside a transaction)."""
        st = cur.execute("SELECT channel, t, v, q FROM staged").fetchall()
        cur.execute("DELETE FROM staged")
        self._staged = 0
        if not st:
            return
        a = np.array(st, dtype=np.float64).reshape(-1, 4)
        ch = a[:, 0].astype(np.int64)
        order = np.argsort(ch, kind="stable")      # rows come in (t, channel) order: stays time-ordered
        ch, a = ch[order], a[order]
        starts = np.flatnonzero(np.r_[True, ch[1:] != ch[:-1]])
        for s0, s1 in zip(starts, np.r_[starts[1:], len(ch)]):
            self._merge(cur, int(ch[s0]), a[s0:s1, 1].astype(np.int64), a[s0:s1, 2], a[s0:s1, 3].astype(np.uint8),
                        staged=False)

    def _merge(self, cur: sqlite3.Cursor, code: int, t: np.ndarray, v: np.ndarray, q: np.ndarray,
               staged: bool = True) -> None:
        """Fold a channel's staged rows and new points into its chunks (inside a transaction).
        Precedence for equal times: new points > staged rows > chunks."""
        st = cur.execute("SELECT t, v, q FROM staged WHERE channel=? ORDER BY t", (code,)).fetchall() \
            if staged and self._staged else []
        if st:
            sa = np.array(st, dtype=np.float64).reshape(-1, 3)
            t = np.concatenate([sa[:, 0].astype(np.int64), t])
            v = np.concatenate([sa[:, 1], v])
            q = np.concatenate([sa[:, 2].astype(np.uint8), q])
            cur.execute("DELETE FROM staged WHERE channel=?", (code,))
            self._staged -= len(st)
        if not len(t):
            return
        t, v, q = _dedup_last(t, v, q)
        lo, hi = int(t[0]), int(t[-1])
        # chunks never overlap: those touching [lo, hi] are the last one starting at or before lo
        # (if it reaches lo) and those starting inside; index range scans only, never the history
        take = [r[0] for r in cur.execute("SELECT t0 FROM chunks WHERE channel=? AND t0>? AND t0<=? ORDER BY t0",
                                          (code, lo, hi))]
        before = cur.execute("SELECT t0, t1, n FROM chunks WHERE channel=? AND t0<=? ORDER BY t0 DESC LIMIT 1",
                             (code, lo)).fetchone()
        # the chunk right before new points is topped up when small, so appends do not leave a trail of
        # tiny chunks (only when that rewrites little: at most TOPUP_FACTOR x the new points)
        if before is not None and (before[1] >= lo or before[2] < min(CHUNK_POINTS - len(t), TOPUP_FACTOR * len(t))):
            take.insert(0, before[0])
        old = [cur.execute("SELECT t0, times, vals, qual FROM chunks WHERE channel=? AND t0=?", (code, x)).fetchone()
               for x in take]
        if old:
            t = np.concatenate([np.frombuffer(o[1], np.int64) for o in old] + [t])
            v = np.concatenate([np.frombuffer(o[2], np.float64) for o in old] + [v])
            q = np.concatenate([np.frombuffer(o[3], np.uint8) for o in old] + [q])
            t, v, q = _dedup_last(t, v, q)
            cur.executemany("DELETE FROM chunks WHERE channel=? AND t0=?", [(code, o[0]) for o in old])
        rows = []
        for s in range(0, len(t), CHUNK_POINTS):
            tt, vv, qq = t[s:s + CHUNK_POINTS], v[s:s + CHUNK_POINTS], q[s:s + CHUNK_POINTS]
            rows.append((code, int(tt[0]), int(tt[-1]), len(tt), tt.tobytes(),
                         np.ascontiguousarray(vv, np.float64).tobytes(), np.ascontiguousarray(qq, np.uint8).tobytes()))
        cur.executemany("INSERT INTO chunks VALUES (?,?,?,?,?,?,?)", rows)

    def flush(self) -> None:
        """Fold every staged row into chunks (on close; after bulk loads)."""
        if self.readonly:
            return
        with write_transaction(self.db) as cur:
            self._fold_all(cur)

    def compact(self) -> int:
        """Merge runs of small neighbouring chunks of each channel into big ones (reads then
        load few large chunks); return the chunks merged away."""
        if self.readonly:
            return 0
        merged = 0
        small = CHUNK_POINTS // 2
        with write_transaction(self.db) as cur:
            for (code,) in cur.execute("SELECT DISTINCT channel FROM chunks WHERE n<?", (small,)).fetchall():
                meta = cur.execute("SELECT t0, n FROM chunks WHERE channel=? ORDER BY t0", (code,)).fetchall()
                runs, run, total = [], [], 0
                for t0, n in meta + [(None, CHUNK_POINTS)]:
                    if n < small and total + n <= CHUNK_POINTS:
                        run.append(t0)
                        total += n
                        continue
                    if len(run) > 1:
                        runs.append(run)
                    run, total = ([t0], n) if n < small else ([], 0)
                for run in runs:
                    rows = [cur.execute("SELECT times, vals, qual FROM chunks WHERE channel=? AND t0=?",
                                        (code, t0)).fetchone() for t0 in run]
                    t = np.concatenate([np.frombuffer(r[0], np.int64) for r in rows])
                    v = np.concatenate([np.frombuffer(r[1], np.float64) for r in rows])
                    q = np.concatenate([np.frombuffer(r[2], np.uint8) for r in rows])
                    cur.executemany("DELETE FROM chunks WHERE channel=? AND t0=?", [(code, t0) for t0 in run])
                    cur.execute("INSERT INTO chunks VALUES (?,?,?,?,?,?,?)",
                                (code, int(t[0]), int(t[-1]), len(t), t.tobytes(), v.tobytes(), q.tobytes()))
                    merged += len(run) - 1
        return merged

    # ------------------------------------------------------------------ reading
    def read_quality(self, channel: str, start: TimeLike = None, end: TimeLike = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(times datetime64[ms] UTC, values, quality) in [start, end), time-ordered, every quality."""
        lo, hi = _ms(start, self.tz, _MIN), _ms(end, self.tz, _MAX)
        code = self._code(channel)
        if code is None:
            return np.empty(0, TIME_DTYPE), np.empty(0), np.empty(0, np.uint8)
        # one read transaction: chunks and staged rows from the same snapshot
        cur = self.db.cursor()
        cur.execute("BEGIN")
        try:
            first = cur.execute("SELECT t0 FROM chunks WHERE channel=? AND t0<=? ORDER BY t0 DESC LIMIT 1",
                                (code, lo)).fetchone()
            chunks = cur.execute("SELECT times, vals, qual FROM chunks WHERE channel=? AND t0>=? AND t0<? ORDER BY t0",
                                 (code, first[0] if first else lo, hi)).fetchall()
            st = cur.execute("SELECT t, v, q FROM staged WHERE channel=? AND t>=? AND t<? ORDER BY t",
                             (code, lo, hi)).fetchall()
        finally:
            cur.execute("COMMIT")
        t = np.concatenate([np.frombuffer(c[0], np.int64) for c in chunks]) if chunks else np.empty(0, np.int64)
        v = np.concatenate([np.frombuffer(c[1], np.float64) for c in chunks]) if chunks else np.empty(0)
        q = np.concatenate([np.frombuffer(c[2], np.uint8) for c in chunks]) if chunks else np.empty(0, np.uint8)
        if chunks and (t[0] < lo or t[-1] >= hi):
            a, b = np.searchsorted(t, lo), np.searchsorted(t, hi)
            t, v, q = t[a:b], v[a:b], q[a:b]
        if st:
            sa = np.array(st, dtype=np.float64).reshape(-1, 3)
            t, v, q = _dedup_last(np.concatenate([t, sa[:, 0].astype(np.int64)]), np.concatenate([v, sa[:, 1]]),
                                  np.concatenate([q, sa[:, 2].astype(np.uint8)]))
        return t.view(TIME_DTYPE), v, q

    def read(self, channel: str, start: TimeLike = None, end: TimeLike = None, *, ok_only: bool = True
             ) -> tuple[np.ndarray, np.ndarray]:
        t, v, q = self.read_quality(channel, start, end)
        if ok_only:
            m = q == Quality.OK
            if not m.all():
                return t[m], v[m]
        return t, v

    def counter_offsets(self, channel: str) -> tuple[np.ndarray, np.ndarray]:
        """(times, offsets) of a counter channel's continuous-counter offsets, time-ordered."""
        code = self._code(channel)
        rows = self.db.execute("SELECT t, offset FROM counter_offsets WHERE channel=? ORDER BY t",
                               (code,)).fetchall() if code is not None else []
        a = np.array(rows, np.float64).reshape(-1, 2)
        return a[:, 0].astype(np.int64).view(TIME_DTYPE), a[:, 1]

    def aggregate(self, channel: str, start: TimeLike, end: TimeLike, every_s: float) -> Aggregate:
        """Mean/min/max/count of OK readings per interval of `every_s` s, intervals aligned on `start`
        (or on the epoch when start is None)."""
        t, v = self.read(channel, start, end)
        step = int(round(every_s * 1000))
        if step <= 0:
            raise ValueError("every_s must be positive")
        finite = np.isfinite(v)
        t, v = t[finite].astype(np.int64), v[finite]
        if not len(t):
            e = np.empty(0)
            return Aggregate(np.empty(0, TIME_DTYPE), e, e, e, np.empty(0, np.int64))
        base = _ms(start, self.tz, 0)
        b = (t - base) // step
        starts = np.flatnonzero(np.r_[True, b[1:] != b[:-1]])
        count = np.diff(np.r_[starts, len(t)])
        return Aggregate(time=(base + b[starts] * step).astype(TIME_DTYPE),
                         mean=np.add.reduceat(v, starts) / count, min=np.minimum.reduceat(v, starts),
                         max=np.maximum.reduceat(v, starts), count=count.astype(np.int64))

    def latest(self, channel: str) -> tuple[np.datetime64, float, int] | None:
        code = self._code(channel)
        if code is None:
            return None
        best = None
        row = self.db.execute("SELECT times, vals, qual FROM chunks WHERE channel=? ORDER BY t0 DESC LIMIT 1",
                              (code,)).fetchone()
        if row:
            best = (int(np.frombuffer(row[0], np.int64)[-1]), float(np.frombuffer(row[1], np.float64)[-1]),
                    int(np.frombuffer(row[2], np.uint8)[-1]))
        st = self.db.execute("SELECT t, v, q FROM staged WHERE channel=? ORDER BY t DESC LIMIT 1", (code,)).fetchone()
        if st and (best is None or st[0] >= best[0]):
            best = (st[0], np.nan if st[1] is None else st[1], st[2])
        return None if best is None else (np.datetime64(best[0], "ms"), best[1], best[2])

    def latest_ok(self, channel: str) -> tuple[np.datetime64, float] | None:
        """The newest OK reading of a channel (counters resume from it after a restart)."""
        code = self._code(channel)
        if code is None:
            return None
        best = None
        for times, vals, qual in self.db.execute(
                "SELECT times, vals, qual FROM chunks WHERE channel=? ORDER BY t0 DESC", (code,)):
            ok = np.flatnonzero(np.frombuffer(qual, np.uint8) == Quality.OK)
            if len(ok):
                best = (int(np.frombuffer(times, np.int64)[ok[-1]]), float(np.frombuffer(vals, np.float64)[ok[-1]]))
                break
        st = self.db.execute("SELECT t, v FROM staged WHERE channel=? AND q=0 ORDER BY t DESC LIMIT 1",
                             (code,)).fetchone()
        if st and (best is None or st[0] >= best[0]):
            best = st
        return None if best is None else (np.datetime64(best[0], "ms"), best[1])

    def count(self, channel: str | None = None) -> int:
        """Readings stored (of one channel, or all), every quality."""
        if channel is not None:
            return len(self.read_quality(channel)[0])
        return sum(len(self.read_quality(c)[0]) for c in self._all_ids())

    def readings_estimate(self, start: TimeLike = None, end: TimeLike = None) -> int:
        """Readings of the chunks that overlap [start, end) plus the staged ones in it
        (from the chunk headers: nothing is decompressed)."""
        lo, hi = _ms(start, self.tz, -(2 ** 62)), _ms(end, self.tz, 2 ** 62)
        a = self.db.execute("SELECT coalesce(sum(n), 0) FROM chunks WHERE t1 >= ? AND t0 < ?", (lo, hi)).fetchone()
        b = self.db.execute("SELECT count(*) FROM staged WHERE t >= ? AND t < ?", (lo, hi)).fetchone()
        return int(a[0]) + int(b[0])

    # ------------------------------------------------------------------ metadata
    def _all_ids(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT id FROM channel_ids ORDER BY code")]

    def _channel_columns(self) -> set[str]:
        return {r[1] for r in self.db.execute("PRAGMA table_info(channels)")}

    def set_channels(self, infos: list[ChannelInfo]) -> None:
        fields = [f.name for f in dataclasses.fields(ChannelInfo)]
        with self.db:
            self.db.executemany(f"INSERT OR REPLACE INTO channels ({','.join(fields)}) VALUES "
                                f"({','.join('?' * len(fields))})",
                                [tuple(getattr(i, f) for f in fields) for i in infos])

    def channels(self) -> list[ChannelInfo]:
        cols = self._channel_columns()      # a read-only store may predate newer fields
        fields = [f.name for f in dataclasses.fields(ChannelInfo) if f.name in cols]
        out = {r[0]: ChannelInfo(**dict(zip(fields, r)))
               for r in self.db.execute(f"SELECT {','.join(fields)} FROM channels ORDER BY id")}
        for cid in self._all_ids():   # seen in data without metadata: quantity unknown
            if cid not in out:
                out[cid] = ChannelInfo(id=cid, quantity="")
        return list(out.values())

    def time_range(self, channel: str | None = None) -> tuple[np.datetime64, np.datetime64] | None:
        where, args = "", ()
        if channel is not None:
            code = self._code(channel)
            if code is None:
                return None
            where, args = " WHERE channel=?", (code,)
        a = self.db.execute(f"SELECT min(t0), max(t1) FROM chunks{where}", args).fetchone()
        b = self.db.execute(f"SELECT min(t), max(t) FROM staged{where}", args).fetchone()
        lo = [x for x in (a[0], b[0]) if x is not None]
        hi = [x for x in (a[1], b[1]) if x is not None]
        if not lo:
            return None
        return np.datetime64(min(lo), "ms"), np.datetime64(max(hi), "ms")

    # ------------------------------------------------------------------ retention
    def apply_retention(self, now: TimeLike = None) -> int:
        """Delete readings older than `retention_days` before `now` (default: the newest
        reading stored, so replayed history is kept relative to itself); return readings deleted."""
        if not self.retention_days or self.readonly:
            return 0
        if now is None:
            rng = self.time_range()
            if rng is None:
                return 0
            now_ms = int(rng[1].astype(np.int64))
        else:
            now_ms = _ms(now, self.tz, 0)
        cut = now_ms - int(self.retention_days * 86400_000)
        deleted = 0
        with write_transaction(self.db) as cur:
            deleted += cur.execute("DELETE FROM staged WHERE t<?", (cut,)).rowcount
            deleted += cur.execute("SELECT coalesce(sum(n),0) FROM chunks WHERE t1<?", (cut,)).fetchone()[0]
            cur.execute("DELETE FROM chunks WHERE t1<?", (cut,))
            for code, t0, times, vals, qual in cur.execute(
                    "SELECT channel, t0, times, vals, qual FROM chunks WHERE t0<?", (cut,)).fetchall():
                t = np.frombuffer(times, np.int64)
                k = int(np.searchsorted(t, cut))
                deleted += k
                cur.execute("DELETE FROM chunks WHERE channel=? AND t0=?", (code, t0))
                cur.execute("INSERT INTO chunks VALUES (?,?,?,?,?,?,?)",
                            (code, int(t[k]), int(t[-1]), len(t) - k, t[k:].tobytes(),
                             np.frombuffer(vals, np.float64)[k:].tobytes(), np.frombuffer(qual, np.uint8)[k:].tobytes()))
        self._staged = self.db.execute("SELECT count(*) FROM staged").fetchone()[0]
        self.compact()
        return deleted

    def integrity_check(self) -> str:
        return self.db.execute("PRAGMA integrity_check").fetchone()[0]

    def close(self) -> None:
        if self.db is None:
            return
        try:
            if not self.readonly:
                self.flush()
        except sqlite3.OperationalError as e:
            # e.g. a full disk: the staged rows are committed already and are folded
            # into chunks at the next flush; closing must not fail for it
            log.warning("store %s: staged rows not folded at close (%s); "
                                                "they are kept and folded later", self.path, e)
        finally:
            self.db.close()
            self.db = None
