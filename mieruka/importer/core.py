"""Files + mapping -> channels of readings (recording format v1).

One file at a time: read the wanted columns as text, parse times to UTC and
values to numbers in the quantity's unit, turn interval energy into average
power.  Then, per channel, all files together: sort by time, merge rows that
two files (or one file twice) give alike, refuse those that disagree naming
both files and lines.
"""
from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..models import TIME_DTYPE, ChannelInfo, Quality
from ..outputs import write_atomic
from ..quantities import QUANTITIES
from ..recording import write_channels
from ..units import parse_meter_unit
from . import parse
from .mapping import Column, Mapping
from .readers import RawTable, is_xlsx, normalize_name, read_csv, read_xlsx

_MS_MIN = 60_000
WINDOW_READINGS = 2_000_000     # readings per window when writing a large recording


@dataclass
class ChannelRows:
    info: ChannelInfo
    time_ms: np.ndarray
    value: np.ndarray
    quality: np.ndarray
    file: np.ndarray          # index into ImportResult.files
    row: np.ndarray           # data row in that file (0-based)


@dataclass
class ImportResult:
    files: list[RawTable]
    channels: dict[str, ChannelRows]
    notes: list[str] = field(default_factory=list)       # what was decided (interval, units), for people
    warnings: list[str] = field(default_factory=list)    # what might be wrong (unmatched columns, ...)

    @property
    def rows(self) -> int:
        return sum(len(c.time_ms) for c in self.channels.values())

    def infos(self) -> list[ChannelInfo]:
        return [c.info for c in self.channels.values()]

    def channel_arrays(self) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        return {cid: (c.time_ms.astype(TIME_DTYPE), c.value, c.quality) for cid, c in self.channels.items()}

    def write(self, path: str | Path, tz: str | None = None, progress=None) -> int:
        """Write the recording atomically, in time windows of about WINDOW_READINGS readings
        (the writer's text columns for a 100 M-reading import never sit in memory at once)."""
        path = Path(path)
        infos = self.infos()
        if self.rows <= WINDOW_READINGS:
            n = write_channels(path, self.channel_arrays(), infos, tz=tz)
            if progress is not None:
                progress(1.0)
            return n
        edges = self._window_edges()
        written = 0

        def write_windows(tmp: Path) -> None:
            nonlocal written
            window = tmp.with_name(tmp.name + ".window")
            try:
                with open(tmp, "wb") as out:
                    for k in range(len(edges) - 1):
                        data = {}
                        for cid, c in self.channels.items():
                            a, b = np.searchsorted(c.time_ms, [edges[k], edges[k + 1]], side="left")
                            data[cid] = (c.time_ms[a:b].astype(TIME_DTYPE), c.value[a:b], c.quality[a:b])
                        written += write_channels(window, data, infos, tz=tz)
                        with open(window, "rb") as f:
                            if k:
                                f.readline()          # one header, from the first window
                            shutil.copyfileobj(f, out, 1 << 20)
                        if progress is not None:
                            progress((k + 1) / (len(edges) - 1))
            finally:
                window.unlink(missing_ok=True)

        write_atomic(path, writer=write_windows)
        return written

    def _window_edges(self) -> np.ndarray:
        """Time edges [t0, ..., t_end + 1) cutting the readings into windows of ~WINDOW_READINGS."""
        sample = np.concatenate([c.time_ms[:: max(1, len(c.time_ms) // 20_000)] for c in self.channels.values()])
        n_windows = max(1, -(-self.rows // WINDOW_READINGS))
        inner = np.unique(np.quantile(sample, np.linspace(0, 1, n_windows + 1)[1:-1]).astype(np.int64))
        lo = min(int(c.time_ms[0]) for c in self.channels.values() if len(c.time_ms))
        hi = max(int(c.time_ms[-1]) for c in self.channels.values() if len(c.time_ms)) + 1
        return np.unique(np.concatenate([[lo], inner[(inner > lo) & (inner < hi)], [hi]]))


def import_files(paths: list[str | Path], mapping: Mapping, mapping_path: str | Path = "mapping",
                 memory_limit: int | None = None, progress=None) -> ImportResult:
    """Read every file with the mapping; InputError naming file, line and field on bad input.
    `progress(done_fraction)` is called as the files are read (for a progress bar)."""
    if not paths:
        raise InputError("no input files")
    from .readers import check_total_memory
    check_total_memory([Path(p) for p in paths if not is_xlsx(Path(p))],
                       1 if mapping.source.layout == "long" else len(mapping.columns), memory_limit)
    files: list[RawTable] = []
    per_file: list[dict[str, tuple]] = []
    notes: list[str] = []
    warnings: list[str] = []
    for k, p in enumerate(paths):
        tick = None if progress is None else (lambda f, k=k: progress((k + f) / len(paths)))
        table, chans = _import_one(Path(p), mapping, mapping_path, memory_limit, notes, warnings, tick)
        files.append(table)
        per_file.append({cid: (*v, np.full(len(v[0]), k, np.int32)) for cid, v in chans.items()})
    infos = {c.channel: _info(c, files) for c in mapping.columns}
    channels: dict[str, ChannelRows] = {}
    for cid, info in infos.items():
        parts = [pf[cid] for pf in per_file if cid in pf]
        if not parts:
            col = next(c.column for c in mapping.columns if c.channel == cid)
            warnings.append(f"channel {cid!r} ({col!r} in the mapping) has no rows in any file")
            continue
        t, v, q, row, f = (np.concatenate([p[i] for p in parts]) for i in range(5))
        channels[cid] = _merge(cid, ChannelRows(info, t, v, q, f, row), files, mapping.time.duplicates, warnings)
    return ImportResult(files, channels, _dedupe(notes), _dedupe(warnings))


def _dedupe(xs: list[str]) -> list[str]:
    return list(dict.fromkeys(xs))


def _info(c: Column, files: list[RawTable]) -> ChannelInfo:
    q = c.quantity
    return ChannelInfo(id=c.channel, quantity=q, unit=QUANTITIES[q].unit, equipment_kind=c.equipment_kind,
                       system=c.system)


class _Batches:
    """Parses blocks of text columns as they stream in: times to local ms, values to numbers."""

    def __init__(self, m: Mapping, value_columns: list[str]):
        self.m, self.value_columns = m, value_columns
        self.reset()

    def reset(self) -> None:
        self.local: list[np.ndarray] = []
        self.absolute: set[bool] = set()
        self.offsets: list[tuple[int, int]] = []       # (UTC ms, offset min) of a sample of times with offsets
        self.values: dict[str, list[np.ndarray]] = {c: [] for c in self.value_columns}
        self.missing: dict[str, list[np.ndarray]] = {c: [] for c in self.value_columns}

    def __call__(self, table: RawTable, cols: dict, row0: int) -> None:
        if row0 == 0:
            self.reset()           # a first block (again, after an encoding retry)
        idx = table.wanted_index               # type: ignore[attr-defined]
        names = self.m.time.names
        try:
            text = parse.join_time_columns([cols[idx[n]] for n in names])
            local, absolute = parse.parse_local_times(text, "iso" if table.time_is_iso else self.m.time.format)
        except parse.ParseError as e:
            raise InputError(f"{table.where()}: line {table.line_of(e.row + row0)}: field {'+'.join(names)!r}: {e}") \
                from None
        self.local.append(local)
        self.absolute.add(absolute)
        if absolute:
            self.offsets += _offset_sample(text, local)
        if len(self.absolute) > 1:
            raise InputError(f"{table.where()}: line {table.line_of(row0)}: field {'+'.join(names)!r}: some times "
                             f"carry a UTC offset and some do not")
        for c in self.value_columns:
            v, miss = _values(table, cols[idx[c]], c, self.m, row0)
            self.values[c].append(v)
            self.missing[c].append(miss)

    def result(self):
        cat = lambda xs, dt: np.concatenate(xs) if xs else np.empty(0, dt)     # noqa: E731
        return (cat(self.local, np.int64), bool(self.absolute and self.absolute.pop()),
                {c: (cat(self.values[c], np.float64), cat(self.missing[c], bool)) for c in self.value_columns})


def _offset_sample(text, utc_ms: np.ndarray, each: int = 200) -> list[tuple[int, int]]:
    """(UTC ms, UTC offset in minutes) of up to `each` times of a block that carry an offset."""
    import datetime as dt
    out = []
    for i in np.unique(np.linspace(0, len(text) - 1, min(len(text), each)).astype(np.int64)):
        s = str(text[int(i)].as_py()).strip()
        try:
            t = dt.datetime.fromisoformat(s[:-1] + "+00:00" if s.endswith(("Z", "z")) else s)
        except ValueError:
            continue
        if t.tzinfo is not None:
            out.append((int(utc_ms[int(i)]), int(t.utcoffset().total_seconds() // 60)))
    return out


def _zone_warning(where: str, zone: str, sample: list[tuple[int, int]]) -> str | None:
    """A warning when the UTC offsets the file's times carry do not fit the mapping's
    zone: the recording is written with that zone's offsets, and `analyze` reads
    them as the site's clock (nights and shifts would be hours off)."""
    from ..timezones import informative, zone_fits, zones_fitting
    if not sample:
        return None
    t = np.array([x[0] for x in sample], np.int64)
    o = np.array([x[1] for x in sample], np.int64)
    if not informative(o):
        return None
    fixed = re.match(r"^([+-])(\d{2}):(\d{2})$", zone)
    if fixed:
        off = (1 if fixed.group(1) == "+" else -1) * (int(fixed.group(2)) * 60 + int(fixed.group(3)))
        if (o == off).all():
            return None
    else:
        try:
            if zone_fits(zone, t, o):
                return None
        except (KeyError, ValueError, OSError):
            pass
    fit = zones_fitting(t, o, limit=3)
    seen = ", ".join(f"{'+' if x >= 0 else '-'}{abs(x) // 60:02d}:{abs(x) % 60:02d}" for x in sorted(set(o.tolist())))
    return (f"{where}: the times carry UTC offsets {seen}, which do not fit [time] zone {zone!r}"
            + (f" but fit {', '.join(fit)}" if fit else "")
            + f"; the instants are kept, but the recording states them in {zone} time, which analyze and replay "
              f"take as the site's clock: set [time] zone to the logger's zone")


def _import_one(path: Path, m: Mapping, mapping_path, memory_limit, notes, warnings, progress=None):
    long = m.source.layout == "long"
    wanted = list(m.time.names)
    if long:
        wanted += [m.long.channel_column, m.long.value_column] + ([m.long.unit_column] if m.long.unit_column else [])
        value_columns = [m.long.value_column]
    else:
        wanted += [c.column for c in m.columns]
        value_columns = [c.column for c in m.columns]
    batches = _Batches(m, value_columns)
    try:
        if is_xlsx(path):
            table = read_xlsx(path, m.source, wanted, m.time.names)
        else:
            table = read_csv(path, m.source, wanted, memory_limit, on_batch=None if long else batches,
                             progress=progress)
    except InputError as e:
        if "no column" in str(e) and not long:
            raise InputError(f"{e} (mapping {mapping_path})") from None
        raise
    if table.columns or long:
        batches(table, table.columns, 0)           # read whole (xlsx, long layout): one block
    local, absolute, values = batches.result()
    if local.size == 0:
        raise InputError(f"{table.where()}: no data rows below the header (line {table.first_line - 1}); "
                         f"check header_row, skip_after_header and skip_footer")
    idx = table.wanted_index                 # type: ignore[attr-defined]
    col = lambda name: table.columns[idx[name]]       # noqa: E731
    where = table.where()

    # --- unmatched columns: listed, never silently dropped
    used = set(idx.values())
    ignored = {normalize_name(x) for x in m.ignore}
    extra = [h for i, h in enumerate(table.header) if i not in used and h and h not in ignored]
    if extra:
        warnings.append(f"{where}: column(s) not in the mapping, not imported: {', '.join(map(repr, extra))} "
                        f"(list them under `ignore` to silence this)")

    # --- times
    if m.time.midnight == "end_of_day" and not absolute:
        local = local + np.where(local % 86_400_000 == 0, 86_400_000, 0)
    if absolute:
        utc = local
        w = _zone_warning(where, m.time.zone, batches.offsets)
        if w:
            warnings.append(w)
    else:
        try:
            utc = parse.localize(local, m.time.zone, m.time.ambiguous)
        except parse.ParseError as e:
            raise InputError(f"{where}: line {table.line_of(e.row)}: field {'+'.join(m.time.names)!r}: {e}") \
                from None
    back = np.flatnonzero(np.diff(utc) < 0) if not long else np.empty(0, np.int64)
    if back.size:
        r = int(back[0]) + 1
        hint = (' (00:00 stamps dated the day they end? set midnight = "end_of_day" in [time])'
                if local[r] % 86_400_000 == 0 and m.time.midnight == "start_of_day" else "")
        warnings.append(f"{where}: line {table.line_of(r)}: time goes back ({back.size} time(s) in the file); "
                        f"rows are put in time order{hint}")

    chans: dict[str, tuple] = {}
    if long:
        _long_rows(table, m, col, utc, values[m.long.value_column], chans, warnings, where)
    else:
        step_s = m.time.interval_s() or _usual_step_s(utc)
        if step_s and not m.time.interval and any(c.kind == "interval_energy" for c in m.columns):
            d = np.diff(np.unique(utc))
            odd = int((d != int(round(step_s * 1000))).sum())
            if odd:
                warnings.append(f"{where}: {odd} of {d.size} time steps differ from the interval {_dur(step_s)} used "
                                f"for interval energy (gaps, or a changed logging interval); set [time] interval "
                                f"if the logger's interval is another")
        for c in m.columns:
            unit = c.unit or _unit_from_file(table, idx[c.column], c)
            v, miss = values[c.column]
            scale, offset = c.conversion(unit)
            v = v * scale + offset
            t = _start_of(utc, c, m, step_s, where)
            if c.kind == "interval_energy":
                v = _interval_to_rate(v, c, m, step_s, where, notes)
            if unit and unit != (c.unit or ""):
                notes.append(f"{c.channel}: unit {unit} read from the file's header")
            q = _quality(c, v, miss, np.arange(len(t)), table, warnings)
            chans[c.channel] = (t, v, q, np.arange(len(t), dtype=np.int64))
    return table, chans


def _unit_from_file(table: RawTable, i: int, c: Column) -> str | None:
    """The unit a units row or the header text gives (`P(kW)`, `電力量[kWh]`), if any."""
    from .guess import unit_in_header
    texts = []
    if table.units is not None and i < len(table.units):
        texts.append(table.units[i])
    texts.append(table.header[i])
    for t in texts:
        u = unit_in_header(t)
        if u is not None:
            try:
                c.conversion(u)
                return u
            except ValueError:
                continue
    return None


def _values(table: RawTable, arr, name: str, m: Mapping, row0: int = 0) -> tuple[np.ndarray, np.ndarray]:
    try:
        return parse.parse_values(arr, m.source.decimal)
    except parse.ParseError as e:
        raise InputError(f"{table.where()}: line {table.line_of(e.row + row0)}: field {name!r}: {e}") from None


def _usual_step_s(utc: np.ndarray) -> float | None:
    """The most common positive step between successive distinct times (the logging interval)."""
    u = utc[: 200_001]                       # the logging interval shows in any stretch of the file
    d = np.diff(u)
    if not (d > 0).all():
        u = np.unique(u)
        d = np.diff(u)
    if d.size == 0:
        return None
    d, counts = np.unique(d, return_counts=True)
    return float(d[np.argmax(counts)]) / 1000


def _need_step(step_s, c: Column, where: str) -> float:
    if step_s is None:
        raise InputError(f"{where}: column {c.column!r}: the interval is needed (interval values or times stamped "
                         f"at the interval end) but the file has one time only; set [time] interval = \"15min\"")
    return step_s


def _start_of(utc: np.ndarray, c: Column, m: Mapping, step_s: float | None, where: str) -> np.ndarray:
    """Readings are written at the start of the interval they describe."""
    if (c.stamp or m.time.stamp) != "end":
        return utc
    return utc - int(round(_need_step(step_s, c, where) * 1000))


def _interval_to_rate(v, c: Column, m: Mapping, step_s: float | None, where: str, notes: list[str]):
    """Energy (or volume) per interval -> average rate over the interval."""
    step_s = _need_step(step_s, c, where)
    per_s = 60.0 if c.quantity == "air_flow_m3min" else 3600.0       # kWh -> kW, kvarh -> kvar, m3 -> m3/h
    rate = v * (per_s / step_s)
    how = "the mapping's [time] interval" if m.time.interval else "the time column's usual step"
    notes.append(f"{c.channel}: {c.column!r} is energy per interval; interval {_dur(step_s)} ({how}), "
                 f"times mark the interval {c.stamp or m.time.stamp}; written as average {c.quantity} at the interval start")
    return rate


def _dur(s: float) -> str:
    if s % 3600 == 0:
        return f"{int(s // 3600)} h"
    if s % 60 == 0:
        return f"{int(s // 60)} min"
    return f"{s:g} s"


def _long_rows(table: RawTable, m: Mapping, col, utc, parsed, chans, warnings, where):
    import pyarrow.compute as pc
    names = pc.utf8_trim_whitespace(col(m.long.channel_column))
    enc = pc.dictionary_encode(names)
    codes = enc.indices.to_numpy(zero_copy_only=False)
    present = [normalize_name(x) for x in enc.dictionary.to_pylist()]
    by_name = {normalize_name(c.column): c for c in m.columns}
    unmatched = [p for p in present if p not in by_name and p not in {normalize_name(x) for x in m.ignore}]
    if unmatched:
        warnings.append(f"{where}: channel name(s) in {m.long.channel_column!r} not in the mapping, not imported: "
                        f"{', '.join(map(repr, unmatched[:20]))}{' ...' if len(unmatched) > 20 else ''}")
    values, miss = parsed
    units = col(m.long.unit_column) if m.long.unit_column else None
    for k, p in enumerate(present):
        c = by_name.get(p)
        if c is None:
            continue
        rows = np.flatnonzero(codes == k)
        unit = c.unit
        if unit is None and units is not None:
            found = {normalize_name(u) for u in pc.take(units, rows).to_pylist()} - {""}
            if len(found) > 1:
                raise InputError(f"{where}: channel {p!r} comes in several units ({', '.join(sorted(found))})")
            if found:
                try:
                    unit = parse_meter_unit(found.pop()).name
                except ValueError as e:
                    raise InputError(f"{where}: line {table.line_of(int(rows[0]))}: field "
                                     f"{m.long.unit_column!r}: {e}") from None
        scale, offset = c.conversion(unit)
        t = utc[rows]
        v = values[rows] * scale + offset
        step_s = m.time.interval_s() or _usual_step_s(t)
        t = _start_of(t, c, m, step_s, where)
        if c.kind == "interval_energy":
            v = _interval_to_rate(v, c, m, step_s, where, [])
        q = _quality(c, v, miss[rows], rows, table, warnings)
        chans[c.channel] = (t, v, q, rows.astype(np.int64))


def _quality(c: Column, v: np.ndarray, miss: np.ndarray, rows: np.ndarray, table: RawTable,
             warnings: list[str]) -> np.ndarray:
    """ok; error where the cell was blank/-/***; out_of_range where no meter could give the
    value (the physical bounds the collector and the recording reader use): kept, flagged, said."""
    from ..quantities import out_of_range
    q = np.where(miss, np.uint8(Quality.ERROR), np.uint8(Quality.OK)).astype(np.uint8)
    bad = out_of_range(c.quantity, v) & ~miss
    if bad.any():
        first = int(np.argmax(bad))
        q[bad] = Quality.OUT_OF_RANGE
        v[bad] = np.nan
        warnings.append(f"{table.where()}: line {table.line_of(int(rows[first]))}: field {c.column!r}: "
                        f"{int(bad.sum()):,} value(s) outside what a {c.quantity} meter can give, kept as "
                        f"out_of_range (check the unit: {c.unit or 'none given'})")
    return q


def _merge(cid: str, ch: ChannelRows, files: list[RawTable], duplicates: str = "raise",
           warnings: list[str] | None = None) -> ChannelRows:
    """Sort by time; of rows at the same time keep one if they agree, refuse if not
    (or keep the first/last in file order when `duplicates` says so, with a warning)."""
    if (np.diff(ch.time_ms) > 0).all():      # one file in time order: nothing to sort or merge
        return ch
    order = np.lexsort((ch.row, ch.file, ch.time_ms))
    t, v, q, f, r = ch.time_ms[order], ch.value[order], ch.quality[order], ch.file[order], ch.row[order]
    dup = np.flatnonzero(t[1:] == t[:-1])
    if dup.size == 0:
        return ChannelRows(ch.info, t, v, q, f, r)
    a, b = dup, dup + 1
    both = (q[a] == Quality.OK) & (q[b] == Quality.OK)
    close = np.isclose(v[a], v[b], rtol=1e-9, atol=1e-12)
    bad = both & ~close
    if bad.any():
        i, j = int(a[np.argmax(bad)]), int(b[np.argmax(bad)])
        when = str(np.datetime64(int(t[i]), "ms").astype("datetime64[s]")) + "Z"
        fi, fj = files[f[i]], files[f[j]]
        where = f"{fi.where()}: line {fi.line_of(r[i])} and {fj.where()}: line {fj.line_of(r[j])}"
        if duplicates == "raise":
            why = ("overlapping files must agree" if f[i] != f[j] else
                   "one file gives two values for one instant: a clock set back, or repeating an hour when "
                   "daylight saving time ends (then set [time] zone to the logger's zone and ambiguous = "
                   "\"infer\"); or set [time] duplicates = \"first\" or \"last\" to keep one")
            raise InputError(f"{where} disagree on channel {cid!r} at {when}: {v[i]:g} vs {v[j]:g} ({why})")
        if warnings is not None:
            warnings.append(f"{where}: {int(bad.sum()):,} time(s) with two different values on channel {cid!r} "
                            f"(first at {when}: {v[i]:g} vs {v[j]:g}); kept the {duplicates} in file order "
                            f"([time] duplicates)")
    # drop one of each agreeing pair: the not-OK one if only one is OK, else the second
    drop = np.zeros(t.size, bool)
    drop_a = (q[a] != Quality.OK) & (q[b] == Quality.OK)
    if duplicates == "last":
        drop_a |= bad
    drop[a[drop_a]] = True
    drop[b[~drop_a]] = True
    # a run of three equal times: the loop above compares neighbours pairwise, which is enough
    keep = ~drop
    out = ChannelRows(ch.info, t[keep], v[keep], q[keep], f[keep], r[keep])
    return _merge(cid, out, files, duplicates) if (out.time_ms[1:] == out.time_ms[:-1]).any() else out
