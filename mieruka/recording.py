"""Recording format v1: what an auditor receives from a factory.

CSV, UTF-8, one reading per row::

    time,channel,quantity,value[,equipment_kind,system,unit,quality]

- `time`: ISO 8601 with a UTC offset (`2026-04-01T09:00:00+09:00` or `...Z`).
- `channel`: channel id; `quantity`: one of `mieruka.quantities.QUANTITIES`
  (`power_kw`, `energy_kwh`, `air_flow_m3min`, `air_volume_m3`, `pressure_mpa`, ...).
- `value`: a number; empty only where `quality` is not `ok`.
- optional `equipment_kind` (e.g. compressor, press, lighting, hvac), `system` (pairs a
  compressor with its air meters), `unit` (must match the quantity's unit), `quality`
  (ok, timeout, exception, out_of_range, stale, error; default ok).

Channel metadata comes from these columns, so analysing a recording needs no
site config.  Reading uses Arrow's CSV engine (tens of millions of rows in
seconds); when Arrow refuses a file, a second pass finds the first bad line
and field so the error can name them.
"""
from __future__ import annotations

import csv
import hashlib
import io
import logging
import math
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import InputError
from .ids import channel_id_problem, neutral_text
from .models import TIME_DTYPE, ChannelData, ChannelInfo, Quality, ReadingBatch
from .quantities import QUANTITIES, out_of_range

log = logging.getLogger(__name__)

REQUIRED = ("time", "channel", "quantity", "value")
_SLICE_ROWS = 1 << 20
OPTIONAL = ("equipment_kind", "system", "unit", "quality")
FORMAT_VERSION = 1


@dataclass
class Recording:
    path: Path | None
    sha256: str
    channels: dict[str, ChannelData] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)     # what was read other than as written (encoding, flags)

    @property
    def rows(self) -> int:
        return sum(len(c.time) for c in self.channels.values())

    def infos(self) -> list[ChannelInfo]:
        return [c.info for c in self.channels.values()]

    def to_batch(self) -> ReadingBatch:
        return ReadingBatch.concat([ReadingBatch(c.time, np.full(len(c.time), cid, object), c.value, c.quality)
                                    for cid, c in self.channels.items()])

    def time_range(self) -> tuple[np.datetime64, np.datetime64] | None:
        if not self.channels:
            return None
        return (min(c.time[0] for c in self.channels.values() if len(c.time)),
                max(c.time[-1] for c in self.channels.values() if len(c.time)))


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, hex (read in 1 MiB blocks: any size)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------- reading
# A meter reading outside these years is a clock that was never set, or a typo
# (0001, 9999): refused with its line, not taken into calendars and tariffs.
TIME_MIN = np.datetime64("1970-01-01T00:00", "ms")
TIME_MAX = np.datetime64("2100-01-01T00:00", "ms")
_GZIP_MAGIC = b"\x1f\x8b"


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == _GZIP_MAGIC


def _open_text_bytes(path: Path, gz: bool):
    import gzip
    return gzip.open(path, "rb") if gz else open(path, "rb")


def _encoding(path: Path, gz: bool) -> str:
    """'utf-8', or 'cp932' for a Shift_JIS file (Excel's 'CSV' on Japanese Windows);
    anything else is refused with the line and byte that are not text."""
    import codecs
    dec = codecs.getincrementaldecoder("utf-8")()
    line, done = 1, 0
    try:
        with _open_text_bytes(path, gz) as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                try:
                    dec.decode(chunk)
                except UnicodeDecodeError as e:
                    line += chunk.count(b"\n", 0, e.start)
                    bad = chunk[e.start:e.start + 1]
                    raise _NotUtf8(line, done + e.start, bad) from None
                line += chunk.count(b"\n")
                done += len(chunk)
            dec.decode(b"", final=True)
    except _NotUtf8 as e:
        cp = codecs.getincrementaldecoder("cp932")()
        try:
            with _open_text_bytes(path, gz) as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    cp.decode(chunk)
                cp.decode(b"", final=True)
        except UnicodeDecodeError:
            raise InputError(f"{path}: line {e.line}: byte 0x{e.byte.hex()} is not UTF-8 text, and the file is not "
                             f"Shift_JIS (CP932) either; save it as CSV UTF-8") from None
        return "cp932"
    except (OSError, EOFError) as e:          # e.g. a truncated or corrupt .gz
        raise InputError(f"{path}: cannot be read ({e})") from None
    except UnicodeDecodeError as e:           # the file ends inside a character
        raise InputError(f"{path}: ends in the middle of a UTF-8 character ({e.reason})") from None
    return "utf-8"


class _NotUtf8(Exception):
    def __init__(self, line: int, offset: int, byte: bytes) -> None:
        self.line, self.offset, self.byte = line, offset, byte


def read_recording(path: str | Path) -> Recording:
    """Read a recording (`.csv`, or gzip-compressed `.csv.gz`); raise InputError
    naming the file, line and field on bad input.  UTF-8 (with or without BOM);
    a Shift_JIS (CP932) file, as Excel saves "CSV" on Japanese Windows, is read
    too and said so in a warning.  Values outside their quantity's physical bounds
    are flagged `out_of_range` (`Recording.notes` says how many)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such recording file")
    gz = _is_gzip(path)
    try:
        with _open_text_bytes(path, gz) as f:
            raw = f.readline(1 << 16)
            if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
                raise InputError(f"{path}: UTF-16 text (Excel's \"Unicode text\"); save it as CSV UTF-8")
            head = raw.decode("utf-8-sig", errors="replace").strip()
    except (OSError, EOFError) as e:
        raise InputError(f"{path}: cannot be read ({e})") from None
    header = [h.strip() for h in head.split(",")]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise InputError(f"{path}: line 1: header lacks column(s) {', '.join(missing)} "
                         f"(a recording starts with `time,channel,quantity,value`)")
    unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
    if unknown:
        raise InputError(f"{path}: line 1: unknown column {unknown[0]!r} (allowed: {', '.join(REQUIRED + OPTIONAL)})")
    twice = [c for c in header if header.count(c) > 1]
    if twice:
        raise InputError(f"{path}: line 1: column {twice[0]!r} appears twice")
    types = {"time": pa.timestamp("ms", tz="UTC"), "channel": pa.string(), "quantity": pa.string(),
             "value": pa.float64()}
    types.update({c: pa.string() for c in OPTIONAL if c in header})
    encoding = "utf-8"
    notes: list[str] = []

    def arrow_read():
        source = pa.input_stream(str(path), compression="gzip" if gz else None)
        return pcsv.read_csv(source, read_options=pcsv.ReadOptions(block_size=64 << 20, encoding=encoding),
                             convert_options=pcsv.ConvertOptions(column_types=types, strings_can_be_null=True,
                                                                 quoted_strings_can_be_null=True))
    try:
        try:
            table = arrow_read()
        except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError):
            encoding = _encoding(path, gz)
            if encoding == "utf-8":
                raise
            notes.append(f"{path}: read as Shift_JIS (CP932), not UTF-8; save recordings as CSV UTF-8")
            table = arrow_read()
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError, pa.ArrowNotImplementedError):
        _find_bad_line(path, header, gz, encoding)   # raises InputError with line and field
        raise InputError(f"{path}: not a valid recording CSV") from None
    except (pa.ArrowMemoryError, MemoryError):
        raise InputError(f"{path}: too large to read into memory here ({path.stat().st_size / 2**30:.1f} GB "
                         f"on disk); split it by month") from None
    except (pa.ArrowException, OSError, EOFError) as e:   # e.g. a corrupt .gz
        raise InputError(f"{path}: cannot be read ({e})") from None
    sha = file_sha256(path)
    if table.num_rows == 0:
        return Recording(path, sha, notes=notes)

    def nulls(col: str) -> np.ndarray:
        return table[col].is_null().to_numpy(zero_copy_only=False)

    for col in ("time", "channel", "quantity"):
        bad = nulls(col)
        if bad.any():
            raise InputError(f"{path}: line {int(np.argmax(bad)) + 2}: field `{col}` is empty")
    times = table["time"].cast(pa.int64()).to_numpy().astype(TIME_DTYPE)
    bad = (times < TIME_MIN) | (times >= TIME_MAX)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(f"{path}: line {i + 2}: field `time`: {np.datetime_as_string(times[i], unit='s', timezone='UTC')} "
                         f"is outside the years 1970-2099 (a meter clock never set?)")
    values = table["value"].to_numpy(zero_copy_only=False).astype(np.float64)
    value_null = nulls("value")
    values[value_null] = np.nan
    quality = np.zeros(table.num_rows, np.uint8)
    if "quality" in header:
        qcol = table["quality"].dictionary_encode().combine_chunks()
        codes = np.array([_parse_quality(str(v), path, table, "quality") for v in qcol.dictionary.to_pylist()]
                         if len(qcol.dictionary) else [], np.uint8)
        idx = qcol.indices.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        qnull = qcol.indices.is_null().to_numpy(zero_copy_only=False)
        if len(codes):
            quality = np.where(qnull, 0, codes[idx]).astype(np.uint8)
    bad = value_null & (quality == Quality.OK)
    if bad.any():
        raise InputError(f"{path}: line {int(np.argmax(bad)) + 2}: field `value` is empty but quality is ok")
    bad = ~np.isfinite(values) & ~value_null & (quality == Quality.OK)
    if bad.any():
        raise InputError(f"{path}: line {int(np.argmax(bad)) + 2}: field `value` is not a finite number")

    # group rows by channel without a Python loop over rows; text columns stay
    # dictionary-encoded (small integer codes), never millions of Python strings
    ch_idx, names = _codes(table["channel"])
    meta = {c: _codes(table[c]) for c in ("quantity", "equipment_kind", "system", "unit") if c in header}
    rec = Recording(path, sha, notes=notes)
    order = np.argsort(ch_idx, kind="stable")
    bounds = np.searchsorted(ch_idx[order], np.arange(len(names) + 1))
    flagged, first_flagged = 0, None
    conflict = None                   # (line a, line b, channel, time) of the first conflicting duplicate
    for k, name in enumerate(names):
        rows = order[bounds[k]:bounds[k + 1]]
        first = int(rows[0])
        problem = channel_id_problem(name)
        if problem:   # one rule for ids wherever they enter (mieruka.ids)
            raise InputError(f"{path}: line {int(rows.min()) + 2}: field `channel`: {problem}")
        q_codes, q_names = meta["quantity"]
        qty = q_names[q_codes[first]]
        if qty not in QUANTITIES:
            raise InputError(f"{path}: line {first + 2}: field `quantity`: unknown quantity {qty!r} "
                             f"(one of {', '.join(QUANTITIES)})")
        differs = q_codes[rows] != q_codes[first]
        if differs.any():
            raise InputError(f"{path}: line {int(rows[np.argmax(differs)]) + 2}: field `quantity`: channel {name!r} "
                             f"was {qty!r} earlier in the file")
        _check_units(path, meta.get("unit"), rows, qty)
        t, v, q = times[rows], values[rows], quality[rows]
        if len(t) > 1 and (np.diff(t.astype(np.int64)) < 0).any():
            o = np.argsort(t, kind="stable")
            t, v, q, rows = t[o], v[o], q[o], rows[o]
        out = out_of_range(qty, v) & (q == Quality.OK)     # the collector's check (mieruka.quantities)
        if out.any():
            v, q = v.copy(), q.copy()
            v[out], q[out] = np.nan, Quality.OUT_OF_RANGE
            flagged += int(out.sum())
            line = int(rows[out].min()) + 2
            first_flagged = line if first_flagged is None else min(first_flagged, line)
        if len(t) > 1:
            t, v, q, c = _drop_identical_duplicates(t, v, q, rows)
            if c is not None and (conflict is None or c[0] < conflict[0]):
                conflict = (*c, name)
        rec.channels[name] = ChannelData(
            ChannelInfo(id=name, quantity=qty, unit=QUANTITIES[qty].unit,
                        equipment_kind=_first_text(meta.get("equipment_kind"), rows),
                        system=_first_text(meta.get("system"), rows)), t, v, q)
    if conflict is not None:
        a, b, t_dup, name = conflict
        raise InputError(f"{path}: lines {a} and {b}: channel {name!r} has two different readings at "
                         f"{np.datetime_as_string(t_dup, unit='s', timezone='UTC')} (identical repeats are fine; "
                         f"which one is right?)")
    if flagged:
        rec.notes.append(f"{path}: {flagged} readings outside their quantity's physical bounds "
                         f"flagged out_of_range (first at line {first_flagged})")
    for note in rec.notes:
        log.warning("%s", note)
    return rec


def _check_units(path: Path, unit_col: tuple[np.ndarray, list] | None, rows: np.ndarray, qty: str) -> None:
    """Every non-empty `unit` of a channel's rows must be its quantity's unit."""
    if unit_col is None:
        return
    codes, texts = unit_col
    expected = QUANTITIES[qty].unit
    wrong = np.array([t is not None and t.strip() not in ("", expected) for t in texts] + [False])
    bad = wrong[codes[rows]]          # code -1 (empty) looks up the trailing False
    if bad.any():
        i = int(rows[np.argmax(bad)])
        raise InputError(f"{path}: line {i + 2}: field `unit`: {texts[codes[i]]!r} does not fit {qty} "
                         f"(expected {expected})")


def _drop_identical_duplicates(t, v, q, rows):
    """A channel's time-sorted rows without repeats of the same (time, value, quality):
    replaying a recording twice is harmless.  Also returns (line, line, time) of the
    first repeat with a different value, or None."""
    same_t = t[1:] == t[:-1]
    if not same_t.any():
        return t, v, q, None
    same_v = (v[1:] == v[:-1]) | (np.isnan(v[1:]) & np.isnan(v[:-1]))
    same = same_t & same_v & (q[1:] == q[:-1])
    conflict = None
    diff = same_t & ~same
    if diff.any():
        # the earliest line among the conflicting pairs (rows are 0-based data rows)
        pairs = np.flatnonzero(diff)
        a = np.minimum(rows[pairs], rows[pairs + 1])
        j = pairs[int(np.argmin(a))]
        la, lb = sorted((int(rows[j]) + 2, int(rows[j + 1]) + 2))
        conflict = (la, lb, t[j])
    keep = np.r_[True, ~same]
    return t[keep], v[keep], q[keep], conflict


def _codes(column) -> tuple[np.ndarray, list]:
    """A text column as (int codes per row, -1 where empty; the distinct texts)."""
    enc = column.dictionary_encode().combine_chunks()
    idx = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    return idx, enc.dictionary.to_pylist()


def _first_text(col: tuple[np.ndarray, list] | None, rows: np.ndarray) -> str | None:
    """The first non-empty text of a channel's rows in a coded column."""
    if col is None:
        return None
    codes, names = col
    present = codes[rows][codes[rows] >= 0]
    return str(names[present[0]]) if len(present) and names[present[0]] else None


def _parse_quality(text: str, path: Path, table, col: str) -> int:
    try:
        return int(Quality.parse(text))
    except ValueError as e:
        line = table[col].to_pylist().index(text) + 2
        raise InputError(f"{path}: line {line}: field `quality`: {e}") from None


def _find_bad_line(path: Path, header: list[str], gz: bool = False, encoding: str = "utf-8") -> None:
    """Slow pass over a file Arrow refused, to name the first bad line and field."""
    import datetime as dt
    import gzip
    enc = "utf-8-sig" if encoding == "utf-8" else encoding
    opener = (lambda: gzip.open(path, "rt", encoding=enc, newline="")) if gz else \
        (lambda: open(path, encoding=enc, newline=""))
    with opener() as f:
        reader = csv.reader(f)
        next(reader, None)
        try:
            for line_no, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != len(header):
                    raise InputError(f"{path}: line {line_no}: {len(row)} fields, the header has {len(header)}")
                rec = dict(zip(header, row))
                try:
                    t = dt.datetime.fromisoformat(rec["time"].replace("Z", "+00:00"))
                except ValueError:
                    raise InputError(f"{path}: line {line_no}: field `time`: {rec['time']!r} is not ISO 8601") from None
                if t.tzinfo is None:
                    raise InputError(f"{path}: line {line_no}: field `time`: {rec['time']!r} has no UTC offset "
                                     f"(write e.g. {rec['time']}+09:00)")
                if rec["value"].strip():
                    try:
                        float(rec["value"])
                    except ValueError:
                        raise InputError(f"{path}: line {line_no}: field `value`: {rec['value']!r} is not a number") from None
        except UnicodeDecodeError as e:
            raise InputError(f"{path}: not UTF-8 text ({e.reason})") from None
        except csv.Error as e:
            raise InputError(f"{path}: line {reader.line_num}: {e}") from None


# --------------------------------------------------------------------- writing
def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def format_times(times: np.ndarray, tz: str | None = None) -> np.ndarray:
    """ISO 8601 texts with the offset of `tz` (UTC 'Z' when None), vectorised."""
    t = np.asarray(times).astype(TIME_DTYPE)
    whole_seconds = bool((t.astype(np.int64) % 1000 == 0).all()) if t.size else True
    unit = "s" if whole_seconds else "ms"
    if tz is None or tz == "UTC":
        return np.datetime_as_string(t, unit=unit, timezone="UTC")
    from .calendar import SiteCalendar
    offsets = SiteCalendar(timezone=tz)._offsets_ms(t.astype(np.int64)) if t.size else np.empty(0, np.int64)
    local = np.datetime_as_string((t.astype(np.int64) + offsets).astype(TIME_DTYPE), unit=unit)
    out = np.empty(t.shape, dtype=object)
    for off in np.unique(offsets):
        m = offsets == off
        mins = int(off) // 60000
        suffix = f"{'+' if mins >= 0 else '-'}{abs(mins) // 60:02d}:{abs(mins) % 60:02d}"
        out[m] = np.strings.add(local[m], suffix)
    return out


def write_recording(path: str | Path, batch: ReadingBatch, infos: dict[str, ChannelInfo] | list[ChannelInfo],
                    tz: str | None = None, with_quality: bool = True) -> int:
    """Write a recording (sorted by time, then channel) atomically; return rows written.

    `tz` chooses the offset written in `time` (the site zone reads best for people);
    the instant is the same whatever it is."""
    import pyarrow as pa

    if isinstance(infos, list):
        infos = {i.id: i for i in infos}
    enc = pa.array(batch.channel, pa.string()).dictionary_encode()
    present = enc.dictionary.to_pylist()
    unknown = set(present) - set(infos)
    if unknown:
        raise ValueError(f"no channel metadata for {sorted(unknown)[:3]}")
    ids = list(infos)
    remap = np.array([ids.index(c) for c in present], np.int32)
    codes = remap[enc.indices.to_numpy(zero_copy_only=False)] if len(batch) else np.empty(0, np.int32)
    return write_columns(path, batch.time, codes, batch.value, batch.quality, [infos[c] for c in ids],
                         tz, with_quality)


def write_channels(path: str | Path, data: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray | None]],
                   infos: list[ChannelInfo], tz: str | None = None, with_quality: bool = True) -> int:
    """Write per-channel arrays {id: (times, values, quality or None)} as one recording
    (the fast path for simulators: no per-row channel strings are ever built)."""
    ids = [i.id for i in infos]
    parts = [(np.asarray(t, TIME_DTYPE), np.full(len(t), ids.index(c), np.int32), np.asarray(v, np.float64),
              np.zeros(len(t), np.uint8) if q is None else np.asarray(q, np.uint8)) for c, (t, v, q) in data.items()]
    cols = [np.concatenate([p[k] for p in parts]) if parts else np.empty(0) for k in range(4)]
    return write_columns(path, cols[0], cols[1], cols[2], cols[3], infos, tz, with_quality)


def write_columns(path: str | Path, time: np.ndarray, channel_code: np.ndarray, value: np.ndarray,
                  quality: np.ndarray, infos: list[ChannelInfo], tz: str | None = None,
                  with_quality: bool = True) -> int:
    """Write rows given as columns; `channel_code[i]` indexes `infos`."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    path = Path(path)
    n = len(time)
    ti = np.asarray(time).astype(TIME_DTYPE).astype(np.int64)
    order = np.lexsort((channel_code, ti)) if n else np.empty(0, np.int64)
    ti, idx = ti[order], np.asarray(channel_code, np.int32)[order]
    v, q = np.asarray(value, np.float64)[order], np.asarray(quality, np.uint8)[order]
    for info in infos:   # written unquoted below: refuse what would break a CSV field
        problem = channel_id_problem(info.id)
        if problem:      # every way in checks the rule; a store written before it may not have
            raise InputError(f"channel {info.id!r} cannot be written to a recording: {problem}")
        for attr in ("equipment_kind", "system"):
            val = getattr(info, attr) or ""
            if any(x in val for x in ',"\r\n'):
                raise InputError(f"channel {info.id!r}: {attr} {val!r} contains a comma, quote or newline")
    # free-text tags: no leading formula trigger reaches a spreadsheet (OWASP CSV injection)
    tag = {a: [neutral_text(getattr(i, a) or "") for i in infos] for a in ("equipment_kind", "system")}
    # format each distinct time once (a time is shared by all channels sampled then)
    first = np.r_[True, ti[1:] != ti[:-1]] if n else np.empty(0, bool)
    time_idx = np.cumsum(first) - 1
    time_text = format_times(ti[first].astype(TIME_DTYPE), tz).astype(str) if n else np.empty(0, str)
    pidx = pa.array(idx, pa.int32())

    def coded(texts: list[str]) -> pa.Array:
        return pa.DictionaryArray.from_arrays(pidx, pa.array(texts, pa.string())).cast(pa.string())

    cols = {
        "time": pa.DictionaryArray.from_arrays(pa.array(time_idx), pa.array(time_text, pa.string())).cast(pa.string()),
        "channel": coded([i.id for i in infos]),
        "quantity": coded([i.quantity for i in infos]),
        "value": pa.array(v, mask=~np.isfinite(v)),
        "equipment_kind": coded(tag["equipment_kind"]),
        "system": coded(tag["system"]),
        "unit": coded([QUANTITIES[i.quantity].unit for i in infos]),
    }
    if with_quality:
        names = [x.name.lower() for x in Quality]
        cols["quality"] = pa.DictionaryArray.from_arrays(pa.array(q.astype(np.int32)), pa.array(names)).cast(pa.string())
    table = pa.table(cols)
    options = pcsv.WriteOptions(include_header=False, quoting_style="none", batch_size=1 << 16)

    def render(part: "pa.Table") -> bytes:
        buf = io.BytesIO()
        pcsv.write_csv(part, buf, options)
        return buf.getvalue()

    # Number formatting dominates; Arrow releases the GIL, so slices render in parallel.
    slices = [table.slice(i, _SLICE_ROWS) for i in range(0, max(n, 1), _SLICE_ROWS)]
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".rec-", suffix=".csv", dir=path.parent or ".")
        with os.fdopen(fd, "wb") as f:
            f.write((",".join(table.column_names) + "\n").encode())
            with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
                for chunk in pool.map(render, slices):
                    f.write(chunk)
        os.chmod(tmp, 0o666 & ~_umask())   # mkstemp makes 0600; a recording is an ordinary file
        os.replace(tmp, path)
    except OSError as e:
        # name the recording asked for, not the hidden temporary file beside it
        raise InputError(f"{path}: cannot write the recording: {e.strerror or e}") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    return n
