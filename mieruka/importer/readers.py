"""Reading logger and spreadsheet exports into columns of text.

Every value leaves here as text (an Arrow string column) so that one parser
(:mod:`.parse`) handles blanks, `-`, `***`, thousands separators and units the
same way for CSV and Excel.  CSV goes through Arrow's reader (hundreds of MB/s,
transcoding Shift_JIS on the fly); `.xlsx` through openpyxl's read-only mode,
which streams rows instead of loading the workbook.
"""
from __future__ import annotations

import codecs
import csv
import io
import os
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from .mapping import Source

SAMPLE_BYTES = 1 << 20
BLOCK_BYTES = 8 << 20          # CSV read in blocks of this size (streamed to the parser)
BYTES_PER_READING = 48         # peak memory per imported reading (numbers, sorting; written in windows)
MAX_LINE_CHARS = 1 << 20       # a header or metadata line longer than this is not a logger export
_NAMES = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8 with BOM", "cp932": "Shift_JIS (cp932)", "utf-16": "UTF-16",
          "euc-jp": "EUC-JP", "latin-1": "Latin-1"}


def encoding_name(enc: str) -> str:
    return _NAMES.get(enc, enc)


@dataclass
class RawTable:
    """The columns a mapping needs, as text, with what is needed to name lines."""

    path: Path
    header: list[str]
    units: list[str] | None
    columns: dict[int, "object"]          # column index -> pyarrow string array (one per data row)
    nrows: int
    encoding: str                          # what was used (detected or configured); "xlsx" for workbooks
    delimiter: str = ","
    first_line: int = 1                    # line (CSV) or row (xlsx) of the first data row
    sheet: str | None = None
    time_is_iso: bool = False              # xlsx cells that were real dates
    _lines: list[int] | None = field(default=None, repr=False)
    _source: Source | None = field(default=None, repr=False)

    def where(self) -> str:
        return f"{self.path} [{self.sheet}]" if self.sheet else str(self.path)

    def line_of(self, row: int) -> int:
        """Line number (CSV) or sheet row (xlsx) of data row `row` (0-based)."""
        if self._lines is None and (self.sheet is not None or self._source is None):
            return self.first_line + int(row)
        if self._lines is None:       # blank lines or quoted newlines shift lines: count them once, on demand
            self._lines = _data_lines(self.path, self.encoding, self.delimiter, self.first_line)
        return self._lines[int(row)] if int(row) < len(self._lines) else self.first_line + int(row)


def normalize_name(text: str) -> str:
    return unicodedata.normalize("NFKC", str(text)).strip().strip("\ufeff").strip()


# --------------------------------------------------------------------- encoding
def detect_encoding(path: Path, sample: bytes | None = None) -> str:
    """utf-8-sig (BOM), utf-16 (BOM), utf-8, or cp932 (Shift_JIS), from the first MB."""
    if sample is None:
        with open(path, "rb") as f:
            sample = f.read(SAMPLE_BYTES)
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if sample.startswith(b"\xd0\xcf\x11\xe0"):
        raise InputError(f"{path}: an old binary Excel workbook (.xls): save it as .xlsx or CSV first")
    if b"\x00" in sample[:4096]:
        raise InputError(f"{path}: binary data (NUL bytes), not a CSV/TSV text export")
    cut = sample if len(sample) < SAMPLE_BYTES else sample[: sample.rfind(b"\n") + 1 or len(sample)]
    for enc in ("utf-8", "cp932"):
        try:
            cut.decode(enc)
            return enc
        except UnicodeDecodeError:
            continue
    try:
        cut.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: neither UTF-8 nor Shift_JIS (cp932) text (byte 0x{cut[e.start]:02x} at offset "
                         f"{e.start}); set [source] encoding in the mapping (e.g. \"euc-jp\")") from None
    return "utf-8"


def _looks_like(path: Path, encoding: str) -> str:
    """A hint naming the encoding the file seems to be in, when it is not the one used."""
    try:
        seen = detect_encoding(path)
    except InputError:
        return "; set [source] encoding in the mapping (utf-8, cp932, utf-16, euc-jp)"
    if seen == encoding:
        return ""
    return (f"; the start of the file looks like {encoding_name(seen)}: set encoding = \"{seen}\" "
            f"or encoding = \"auto\" in [source]")


def _is_text(path: Path, encoding: str) -> bool:
    try:
        check_text(path, encoding)
        return True
    except InputError:
        return False


def check_text(path: Path, encoding: str) -> None:
    """Refuse a file that is not text in `encoding`, naming the line and the encoding."""
    dec = codecs.getincrementaldecoder(encoding)()
    line = 1
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            try:
                text = dec.decode(chunk)
            except UnicodeDecodeError as e:
                line += chunk[: e.start].count(b"\n")
                hint = _looks_like(path, encoding)
                raise InputError(f"{path}: line {line}: not valid {encoding_name(encoding)} text "
                                 f"(byte 0x{chunk[e.start]:02x}){hint}") from None
            line += text.count("\n")


# -------------------------------------------------------------------------- CSV
def _read_head(path: Path, encoding: str, nlines: int) -> list[str]:
    out = []
    with open(path, "rb") as raw:
        f = io.TextIOWrapper(raw, encoding=encoding, newline="", errors="strict")
        try:
            for i in range(nlines):
                line = f.readline(MAX_LINE_CHARS)
                if not line:
                    break
                if len(line) >= MAX_LINE_CHARS and not line.endswith(("\n", "\r")):
                    raise InputError(f"{path}: line {i + 1}: longer than {MAX_LINE_CHARS:,} characters "
                                     f"(not a logger export, or the wrong header_row)")
                out.append(line.rstrip("\r\n"))
        except UnicodeDecodeError as e:
            raise InputError(f"{path}: line {len(out) + 1}: not valid {encoding_name(encoding)} text "
                             f"(byte 0x{e.object[e.start]:02x}){_looks_like(path, encoding)}") from None
    return out


def sniff_delimiter(line: str) -> str:
    counts = {d: line.count(d) for d in (",", "\t", ";")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _split(line: str, delimiter: str) -> list[str]:
    return next(csv.reader([line], delimiter=delimiter), [])


def read_csv(path: Path, src: Source, wanted: list[str], memory_limit: int | None = None,
             on_batch=None, progress=None) -> RawTable:
    """The header, the units row and the wanted columns (by header text) of a CSV/TSV.

    With `on_batch(table, {column index: text array}, first row)`, the rows are
    streamed to it in blocks and not kept (the text of a large file never sits in
    memory whole); `progress(fraction)` is called as blocks are read."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    if not path.is_file():
        raise InputError(f"{path}: no such file")
    size = path.stat().st_size
    with open(path, "rb") as f:
        sample = f.read(SAMPLE_BYTES)
    enc = detect_encoding(path, sample) if src.encoding == "auto" else src.encoding
    head = _read_head(path, enc, src.header_row + src.skip_after_header)
    if len(head) < src.header_row:
        raise InputError(f"{path}: has {len(head)} lines, the mapping's header_row is {src.header_row}")
    delim = sniff_delimiter(head[src.header_row - 1]) if src.delimiter == "auto" else src.delimiter
    header = [normalize_name(h) for h in _split(head[src.header_row - 1], delim)]
    units = None
    if src.units_row is not None and len(head) >= src.units_row:
        units = [normalize_name(u) for u in _split(head[src.units_row - 1], delim)]
    idx = resolve_columns(path, header, wanted)
    keep = sorted(set(idx.values()))
    _check_memory(path, size, sample, len(keep), len(header), memory_limit, streamed=on_batch is not None)
    names = [f"c{i}" for i in range(len(header))]
    first = src.header_row + src.skip_after_header + 1
    ro = pcsv.ReadOptions(skip_rows=first - 1, column_names=names, encoding="utf8" if enc == "utf-8" else enc,
                          block_size=BLOCK_BYTES)
    po = pcsv.ParseOptions(delimiter=delim)
    co = pcsv.ConvertOptions(column_types={n: pa.string() for n in names}, include_columns=[names[i] for i in keep],
                             strings_can_be_null=False, quoted_strings_can_be_null=False)
    if enc == "utf-8-sig":
        ro.encoding = "utf8"          # the BOM sits in the skipped header line
    rt = RawTable(path, header, units, {}, 0, enc, delim, first, _source=src)
    rt.wanted_index = idx     # type: ignore[attr-defined]
    footer = src.skip_footer
    source = path
    cut = _footer_start(path, footer) if footer and not enc.startswith("utf-16") else None
    if cut is not None:     # the footer is never parsed: a line cut short by a power loss is no error there
        source = pa.BufferReader(pa.memory_map(str(path)).read_buffer(cut))
        footer = 0
    try:
        if on_batch is None:
            table = pcsv.read_csv(source, read_options=ro, parse_options=po, convert_options=co)
            n = max(table.num_rows - footer, 0)
            rt.columns = {i: table[names[i]].combine_chunks().slice(0, n) for i in keep}
            rt.nrows = n
        else:
            rt.nrows = _stream(source, ro, po, co, names, keep, footer, rt, on_batch, progress, size, sample)
    except (pa.ArrowInvalid, UnicodeDecodeError) as e:
        if src.encoding == "auto" and enc == "utf-8" and not _is_text(path, "utf-8") and _is_text(path, "cp932"):
            # the first MB was plain ASCII; Shift_JIS text comes later in the file
            return read_csv(path, src.model_copy(update={"encoding": "cp932"}), wanted, memory_limit, on_batch,
                            progress)
        check_text(path, enc)
        _find_ragged(path, enc, delim, first, len(header))
        raise InputError(f"{path}: cannot read as {encoding_name(enc)} CSV: {str(e).splitlines()[0][:200]}") from None
    return rt


def _footer_start(path: Path, lines: int) -> int | None:
    """Byte offset where the last `lines` non-empty lines begin (None: the file is shorter)."""
    size = path.stat().st_size
    span = 1 << 16
    with open(path, "rb") as f:
        while True:
            start = max(0, size - span)
            f.seek(start)
            tail = f.read(size - start)
            ends = [i for i, b in enumerate(tail) if b == 0x0A]     # 0x0A is never inside a cp932/UTF-8 character
            # line starts after each newline; drop empty lines and the (possibly partial) first one
            starts = [e + 1 for e in ends if e + 1 < len(tail) and tail[e + 1: e + 2] not in (b"\n", b"\r")]
            if len(starts) >= lines:
                return start + starts[-lines]
            if start == 0:
                return None
            span *= 4


def _stream(path, ro, po, co, names, keep, skip_footer, rt, on_batch, progress, size, sample) -> int:
    """Feed blocks to on_batch, holding back enough rows to drop the footer at the end."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    reader = pcsv.open_csv(path, read_options=ro, parse_options=po, convert_options=co)
    line_bytes = max(len(sample) / max(sample.count(b"\n"), 1), 1.0)
    est_rows = size / line_bytes
    held: list = []
    row0 = 0
    for batch in reader:
        held.append(batch)
        while len(held) > 1 and sum(b.num_rows for b in held[1:]) >= skip_footer:
            b = held.pop(0)
            on_batch(rt, {i: b.column(names[i]) for i in keep}, row0)
            row0 += b.num_rows
            if progress is not None:
                progress(min(row0 / est_rows, 1.0))
    if held:
        tail = pa.Table.from_batches(held).combine_chunks()
        n = max(tail.num_rows - skip_footer, 0)
        if n or row0 == 0:
            on_batch(rt, {i: tail[names[i]].combine_chunks().slice(0, n) for i in keep}, row0)
        row0 += n
    if progress is not None:
        progress(1.0)
    return row0


def resolve_columns(path: Path, header: list[str], wanted: list[str]) -> dict[str, int]:
    """Header text (or `#N`, the N-th column from 1) -> column index; refuse a missing or doubled name."""
    out: dict[str, int] = {}
    for w in wanted:
        key = normalize_name(w)
        hits = [i for i, h in enumerate(header) if h == key]
        if not hits:       # `P(KW)` for `P(kW)`, `Usage_KWH`: case is not meaning in a column name
            hits = [i for i, h in enumerate(header) if h.casefold() == key.casefold()]
        if not hits and key.startswith("#") and key[1:].isdigit() and 1 <= int(key[1:]) <= len(header):
            hits = [int(key[1:]) - 1]
        if not hits:
            shown = ", ".join(repr(h) for h in header[:30])
            raise InputError(f"{path}: no column {w!r} in the header (columns: {shown}); "
                             f"check the mapping's header_row and column names")
        if len(hits) > 1:
            raise InputError(f"{path}: column {w!r} appears {len(hits)} times in the header (columns "
                             f"{', '.join(str(h + 1) for h in hits)}); name it by position, e.g. \"#{hits[0] + 1}\"")
        out[w] = hits[0]
    return out


def _check_memory(path: Path, size: int, sample: bytes, used_cols: int, all_cols: int, limit: int | None,
                  streamed: bool = True) -> None:
    """Fail fast, before reading, on a file whose readings would not fit in memory."""
    if limit is None:
        limit = _available_memory() // 2
    rows = size / max(len(sample) / max(sample.count(b"\n"), 1), 1.0)
    # per reading: value, time, quality, file and row while importing and merging; the recording
    # is written in time windows, so its text columns add a bounded amount (see core.WINDOW_READINGS)
    need = int(rows * max(used_cols - 1, 1) * BYTES_PER_READING)
    if not streamed:
        need += int(size * used_cols / max(all_cols, 1) * 3)           # the text of the wanted columns
    if limit and need > limit:
        raise InputError(f"{path}: {size / 1e9:.1f} GB; importing it needs about {need / 1e9:.1f} GB of memory, "
                         f"{limit / 1e9:.1f} GB may be used: split the export by time (one file per day or week) "
                         f"and import the parts into separate recordings")


def check_total_memory(paths: list[Path], value_columns: int, limit: int | None) -> None:
    """Fail fast when several files together would not fit (each is also checked alone)."""
    if limit is None:
        limit = _available_memory() // 2
    need = 0
    for p in paths:
        try:
            size = p.stat().st_size
            with open(p, "rb") as f:
                sample = f.read(1 << 16)
        except OSError:
            continue           # named later, when the file is read
        need += int(size / max(len(sample) / max(sample.count(b"\n"), 1), 1.0) * value_columns * BYTES_PER_READING)
    if limit and need > limit and len(paths) > 1:
        raise InputError(f"{len(paths)} files ({sum(p.stat().st_size for p in paths if p.exists()) / 1e9:.1f} GB): "
                         f"importing them together needs about {need / 1e9:.1f} GB of memory, {limit / 1e9:.1f} GB "
                         f"may be used: import them in groups (e.g. a week each) into separate recordings")


def _available_memory() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError):
        return 0


def _data_lines(path: Path, enc: str, delim: str, first: int) -> list[int]:
    lines = []
    with open(path, encoding=enc, newline="", errors="replace") as f:
        for _ in range(first - 1):
            f.readline()
        reader = csv.reader(f, delimiter=delim)
        prev = first - 1
        for row in reader:
            start = prev + 1
            prev = first - 1 + reader.line_num
            if row:
                lines.append(start)
    return lines


def _find_ragged(path: Path, enc: str, delim: str, first: int, ncols: int) -> None:
    with open(path, encoding=enc, newline="", errors="replace") as f:
        for _ in range(first - 1):
            f.readline()
        reader = csv.reader(f, delimiter=delim)
        prev = first - 1
        try:
            bad, more = None, False
            for row in reader:
                start = prev + 1
                prev = first - 1 + reader.line_num
                if bad is not None:
                    if row:
                        more = True
                        break
                elif row and len(row) != ncols:
                    bad = (start, len(row))
            if bad is not None:
                hint = "" if more else " (the last line: cut short, or a footer? set skip_footer = 1 in [source])"
                raise InputError(f"{path}: line {bad[0]}: {bad[1]} fields, the header has {ncols}{hint}")
        except csv.Error as e:
            raise InputError(f"{path}: line {prev + 1}: {e}") from None


# ------------------------------------------------------------------------- xlsx
def read_xlsx(path: Path, src: Source, wanted: list[str], time_names: list[str]) -> RawTable:
    """The wanted columns of one sheet, streamed with openpyxl's read-only mode."""
    import datetime as dt
    import pyarrow as pa
    from openpyxl import load_workbook

    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as e:      # noqa: BLE001  openpyxl raises many kinds on a damaged workbook
        raise InputError(f"{path}: not an .xlsx workbook ({e})") from None
    try:
        if src.sheet is None:
            ws = wb.worksheets[0]
        elif isinstance(src.sheet, int):
            if not 0 <= src.sheet < len(wb.worksheets):
                raise InputError(f"{path}: no sheet {src.sheet} (the workbook has {len(wb.worksheets)}, from 0)")
            ws = wb.worksheets[src.sheet]
        else:
            if src.sheet not in wb.sheetnames:
                raise InputError(f"{path}: no sheet {src.sheet!r} (sheets: {', '.join(wb.sheetnames)})")
            ws = wb[src.sheet]
        rows = ws.iter_rows(values_only=True)
        header: list[str] = []
        units = None
        r = 0
        for r, row in enumerate(rows, start=1):
            if r == src.header_row:
                header = [normalize_name("" if c is None else c) for c in row]
            if src.units_row is not None and r == src.units_row:
                units = [normalize_name("" if c is None else c) for c in row]
            if r >= src.header_row + src.skip_after_header:
                break
        if not header:
            raise InputError(f"{path} [{ws.title}]: has {r} rows, the mapping's header_row is {src.header_row}")
        idx = resolve_columns(path, header, wanted)
        keep = sorted(set(idx.values()))
        time_idx = {idx[n] for n in time_names if n in idx}
        cols: dict[int, list] = {i: [] for i in keep}
        iso = True
        lines: list[int] = []
        for r, row in enumerate(rows, start=src.header_row + src.skip_after_header + 1):
            if not any(c is not None and c != "" for c in row):
                continue       # Excel leaves empty rows at the end of used ranges
            lines.append(r)
            for i in keep:
                c = row[i] if i < len(row) else None
                if i in time_idx:
                    if (len(time_idx) > 1 and isinstance(c, dt.datetime) and c.time() == dt.time(0)
                            and i == min(time_idx)):
                        c = c.date().isoformat()          # a date cell beside a time cell
                    elif isinstance(c, (dt.datetime, dt.date, dt.time)):
                        c = c.isoformat(sep=" ") if isinstance(c, dt.datetime) else c.isoformat()
                    else:
                        iso = False
                        c = "" if c is None else str(c)
                elif c is None:
                    c = ""
                elif isinstance(c, float):
                    c = repr(c)
                else:
                    c = str(c)
                cols[i].append(c)
        title = ws.title
    except InputError:
        raise
    except Exception as e:      # noqa: BLE001  a damaged sheet: one line, not a traceback
        raise InputError(f"{path}: cannot read the sheet: {e}") from None
    finally:
        wb.close()
    n = len(cols[keep[0]]) - src.skip_footer if keep else 0
    n = max(n, 0)
    arrays = {i: pa.array(v[:n], pa.string()) for i, v in cols.items()}
    rt = RawTable(path, header, units, arrays, n, "xlsx", first_line=src.header_row + src.skip_after_header + 1,
                  sheet=title, time_is_iso=iso and bool(time_idx), _lines=lines[:n])
    rt.wanted_index = idx     # type: ignore[attr-defined]
    return rt


def is_xlsx(path: Path) -> bool:
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return True
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"PK\x03\x04"
    except OSError:
        return False
