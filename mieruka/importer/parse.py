"""Text columns -> numbers and UTC times, vectorised with Arrow compute.

Values: surrounding spaces, full-width digits and thousands separators are
accepted; blank, `-`, `--`, `***`, `N/A`, `#N/A`, `ERR`, and fault marks (`inf`, `+OVER`,
`+++++`, `BURNOUT`) ... are missing values
(kept as readings with quality `error`, never dropped); anything else is refused
with its line.  Times: strptime formats (Arrow's parser, with Python's as the
fallback for codes Arrow lacks such as `%f`), `24:00` as the end of a day, and
local time turned into UTC with DST gaps and repeats found and refused (or
resolved as the mapping says).
"""
from __future__ import annotations

import datetime as dt
import re
import zoneinfo

import numpy as np

MISSING = ("", "-", "--", "---", "----", "-----", "*", "**", "***", "****", "*****", "n/a", "na", "#n/a", "nan",
           "-nan", "+nan", "null", "none", "err", "error", "#value!", "#div/0!", "#num!", "#ref!", "#name?", "#null!",
           "―", "‐", "ー", "－", "×", "欠測", "なし",
           # a meter or logger fault, not a reading: overflow and over-range marks (Graphtec `+++++`,
           # `BURNOUT`; `+OVER`/`-OVER`, `OL`), and inf as numpy/pandas/Excel exports write it
           "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity", "∞", "+∞", "-∞", "+++", "++++", "+++++",
           "over", "+over", "-over", "overflow", "overrange", "over range", "ol", "+ol", "-ol", "o.l", "burnout",
           "b.out", "オーバー", "オーバーフロー", "断線")
_MS_H = 3_600_000
_MS_D = 86_400_000


class ParseError(ValueError):
    """A value or time that cannot be read: `row` is the 0-based data row."""

    def __init__(self, row: int, message: str):
        super().__init__(message)
        self.row = row


def _clean_text(arr, decimal: str = "."):
    import pyarrow.compute as pc
    arr = pc.utf8_trim_whitespace(arr)
    if not pc.all(pc.string_is_ascii(arr)).as_py():
        arr = pc.utf8_trim_whitespace(pc.utf8_normalize(arr, form="NFKC"))     # ０-９, full-width minus
    return arr


def parse_values(arr, decimal: str = ".") -> tuple[np.ndarray, np.ndarray]:
    """(float64 values, missing mask) of a text column; ParseError on text that is
    neither a number nor a missing-value mark."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if decimal == ".":
        try:            # the usual case, plain numbers in every cell: one pass
            v = pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)
            if np.isfinite(v).all():
                return v, np.zeros(v.size, bool)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    arr = _clean_text(arr)
    missing = pc.is_in(pc.utf8_lower(arr), value_set=pa.array(MISSING)).to_numpy(zero_copy_only=False)
    if decimal == ",":
        arr = pc.replace_substring(pc.replace_substring(arr, ".", ""), ",", ".")
    elif pc.any(pc.match_substring(arr, ",")).as_py():
        arr = pc.replace_substring(arr, ",", "")      # thousands separators: 1,234.5
    if pc.any(pc.starts_with(arr, "+")).as_py():
        arr = pc.replace_substring_regex(arr, r"^\+", "")
    arr = pc.if_else(pa.array(missing), pa.scalar(None, pa.string()), arr)
    try:
        num = pc.cast(arr, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        num = None
    if num is None:
        ok = pc.match_substring_regex(arr, r"^[-]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
        bad = ~pc.fill_null(ok, True).to_numpy(zero_copy_only=False)
        row = int(np.argmax(bad))
        raise ParseError(row, f"{arr[row].as_py()!r} is not a number")
    v = num.to_numpy(zero_copy_only=False).astype(np.float64)
    v[missing] = np.nan
    bad = ~np.isfinite(v) & ~missing
    if bad.any():
        row = int(np.argmax(bad))
        raise ParseError(row, f"{arr[row].as_py()!r} is not a finite number")
    return v, missing


# ------------------------------------------------------------------------ times
def _round_serial_ms(ms: np.ndarray, arr) -> np.ndarray:
    """Serial-day times rounded to what their printed decimals can resolve: a day
    printed with 6 decimals resolves 86 ms, so 45418.614583 is 14:45:00.0 and not
    14:44:59.957 (each reading would otherwise sit off the logger's grid)."""
    import pyarrow.compute as pc
    dot = pc.find_substring(arr, ".").to_numpy(zero_copy_only=False)
    length = pc.utf8_length(arr).to_numpy(zero_copy_only=False)
    decimals = np.where(dot >= 0, length - dot - 1, 0)
    if pc.any(pc.match_substring_regex(arr, "[eE]")).as_py() or decimals.size == 0:
        return np.round(ms).astype(np.int64)
    resolution_ms = _MS_D * 10.0 ** -int(decimals.max())
    q = next((q for q in (1, 10, 100, 1000) if q >= resolution_ms), 1000)
    return (np.round(ms / q) * q).astype(np.int64)


def join_time_columns(arrays: list):
    import pyarrow.compute as pc
    if len(arrays) == 1:
        return arrays[0]
    return pc.binary_join_element_wise(*arrays, " ")


def parse_local_times(arr, fmt: str) -> tuple[np.ndarray, bool]:
    """(int64 ms, absolute): local wall-clock times, or UTC when every text carries
    an offset (`absolute` True).  ParseError naming the first text that does not fit."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = _clean_text(arr)
    empty = pc.equal(arr, "").to_numpy(zero_copy_only=False)
    if empty.any():
        raise ParseError(int(np.argmax(empty)), "the time is empty")
    # 24:00 (end of the day) as 00:00 of the next day
    h24 = pc.match_substring_regex(arr, r"(^|[ T])24:00(:00)?(\.0+)?$").to_numpy(zero_copy_only=False)
    if h24.any():
        arr = pc.replace_substring_regex(arr, r"( |T|^)24:00", r"\100:00")
    absolute = False
    if fmt in ("excel", "unix", "unix_ms"):
        try:
            x = pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)
        except pa.ArrowInvalid:
            ok = pc.match_substring_regex(arr, r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$").to_numpy(zero_copy_only=False)
            row = int(np.argmax(~ok))
            raise ParseError(row, f"time {arr[row].as_py()!r} is not a number ({fmt} time)") from None
        if fmt == "excel":        # days since 1899-12-30 (Excel's 1900 system, as Excel itself counts them)
            return _round_serial_ms((x - 25569.0) * _MS_D, arr), False
        return np.round(x * (1000.0 if fmt == "unix" else 1.0)).astype(np.int64), True
    if fmt == "iso":
        try:
            ms = pc.cast(arr, pa.timestamp("ms")).cast(pa.int64()).to_numpy(zero_copy_only=False)
        except pa.ArrowInvalid:
            try:
                ms = pc.cast(arr, pa.timestamp("ms", "UTC")).cast(pa.int64()).to_numpy(zero_copy_only=False)
                absolute = True
            except pa.ArrowInvalid:
                ms = _python_times(arr, None)
                absolute = _has_offset(arr)
    elif fmt.endswith(".%f") and "%f" not in fmt[:-3]:
        ms = _with_fraction(arr, fmt[:-3])
    else:
        try:
            ts = pc.strptime(arr, format=fmt, unit="ms", error_is_null=True)
            ms = ts.cast(pa.int64()).to_numpy(zero_copy_only=False)
            nulls = ts.is_null().to_numpy(zero_copy_only=False)
            if nulls.any():
                ms = _python_times(arr, fmt)        # Arrow refused some: let Python say which and why
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            ms = _python_times(arr, fmt)
        if "%z" in fmt:
            absolute = True
    ms = np.asarray(ms, np.int64)
    if h24.any():
        ms = ms + np.where(h24, _MS_D, 0)
    return ms, absolute


def _with_fraction(arr, fmt: str) -> np.ndarray:
    """`... 09:00:00.250` with format `....%f`: Arrow parses the seconds, numpy adds the
    fraction (Arrow's strptime has no %f; Python's, once per row, is 50x slower)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    frac = pc.extract_regex(arr, r"\.(?P<f>\d{1,9})$")
    has = frac.is_valid().to_numpy(zero_copy_only=False)
    base = pc.replace_substring_regex(arr, r"\.\d{1,9}$", "")
    ts = pc.strptime(base, format=fmt, unit="ms", error_is_null=True)
    nulls = ts.is_null().to_numpy(zero_copy_only=False)
    if nulls.any() or not has.all():
        return _python_times(arr, fmt + ".%f")      # names the first row that does not fit
    digits = pc.struct_field(frac, "f")
    padded = pc.utf8_slice_codeunits(pc.utf8_rpad(digits, 3, "0"), 0, 3)
    extra = pc.cast(padded, pa.int64()).to_numpy(zero_copy_only=False)
    return ts.cast(pa.int64()).to_numpy(zero_copy_only=False) + extra


def _has_offset(arr) -> bool:
    import pyarrow.compute as pc
    return bool(pc.all(pc.match_substring_regex(arr, r"(Z|[+-]\d\d:?\d\d)$")).as_py())


def _python_times(arr, fmt: str | None) -> np.ndarray:
    """The slow path, once per distinct text: datetime.strptime / fromisoformat."""
    import pyarrow.compute as pc
    enc = pc.dictionary_encode(arr).combine_chunks() if hasattr(arr, "combine_chunks") else pc.dictionary_encode(arr)
    texts = enc.dictionary.to_pylist()
    out = np.empty(len(texts), np.int64)
    aware: set[bool] = set()
    for k, s in enumerate(texts):
        try:
            t = dt.datetime.fromisoformat(s.replace("Z", "+00:00")) if fmt is None else dt.datetime.strptime(s, fmt)
        except ValueError:
            row = int(np.argmax(enc.indices.to_numpy(zero_copy_only=False) == k))
            want = "ISO 8601 (2026-04-01 09:00:00)" if fmt is None else f"the format {fmt!r}"
            raise ParseError(row, f"time {s!r} does not match {want}") from None
        aware.add(t.tzinfo is not None)
        if t.tzinfo is not None:
            t = t.astimezone(dt.timezone.utc).replace(tzinfo=None)
        out[k] = (t - dt.datetime(1970, 1, 1)) // dt.timedelta(milliseconds=1)
    if len(aware) > 1:
        raise ParseError(0, "some times carry a UTC offset and some do not")
    return out[enc.indices.to_numpy(zero_copy_only=False)]


def _fixed_offset_ms(zone: str) -> int | None:
    m = re.match(r"^([+-])(\d{2}):(\d{2})$", zone)
    if not m:
        return None
    ms = (int(m.group(2)) * 60 + int(m.group(3))) * 60_000
    return ms if m.group(1) == "+" else -ms


def _offset_table(tz: zoneinfo.ZoneInfo, h0: int, h1: int) -> np.ndarray:
    """UTC offset (ms) in force at each whole UTC hour h0..h1 (offsets change on the hour
    in the zones factories are in; one Python call per hour of the span, 8,760 a year)."""
    jan = dt.datetime(2024, 1, 15, tzinfo=tz).utcoffset()
    jul = dt.datetime(2024, 7, 15, tzinfo=tz).utcoffset()
    a = dt.datetime.fromtimestamp(h0 * 3600, tz).utcoffset()
    b = dt.datetime.fromtimestamp(h1 * 3600, tz).utcoffset()
    if jan == jul == a == b:
        return np.full(h1 - h0 + 1, int(a.total_seconds() * 1000), np.int64)
    return np.array([dt.datetime.fromtimestamp(h * 3600, tz).utcoffset().total_seconds() * 1000
                     for h in range(h0, h1 + 1)], np.int64)


def localize(local_ms: np.ndarray, zone: str, ambiguous: str = "raise",
             order_groups: np.ndarray | None = None) -> np.ndarray:
    """Local wall-clock ms -> UTC ms.  A time skipped by a DST change is refused
    (ParseError with its row); a repeated one is refused unless `ambiguous` is
    `earlier`, `later` or `infer` (in file order, the first of two equal local
    times is the earlier instant, the second the later)."""
    fixed = _fixed_offset_ms(zone)
    if fixed is not None:
        return local_ms - fixed
    if local_ms.size == 0:
        return local_ms
    tz = zoneinfo.ZoneInfo(zone)
    h0 = int(local_ms.min()) // _MS_H - 30
    h1 = int(local_ms.max()) // _MS_H + 30
    table = _offset_table(tz, h0, h1)
    cands = np.unique(table)
    if cands.size == 1:
        return local_ms - cands[0]
    valid = []
    for o in cands:                     # u = L - o is a reading of L if the zone's offset at u is o
        u = local_ms - o
        valid.append(table[np.floor_divide(u, _MS_H) - h0] == o)
    valid = np.array(valid)             # (offsets, rows)
    n = valid.sum(axis=0)
    if (n == 0).any():
        row = int(np.argmax(n == 0))
        raise ParseError(row, f"local time {_fmt(local_ms[row])} does not exist in {zone} (skipped when the "
                              f"clocks went forward); if the logger's clock ignores DST, give its fixed offset "
                              f"as zone (e.g. \"+01:00\")")
    # earlier instant = larger offset among the valid ones; later = smaller
    big = np.where(valid, cands[:, None], np.iinfo(np.int64).min).max(axis=0)
    small = np.where(valid, cands[:, None], np.iinfo(np.int64).max).min(axis=0)
    amb = n > 1
    if not amb.any():
        return local_ms - big
    if ambiguous == "raise":
        row = int(np.argmax(amb))
        raise ParseError(row, f"local time {_fmt(local_ms[row])} occurs twice in {zone} (the hour repeated when "
                              f"the clocks went back); set ambiguous = \"earlier\", \"later\" or \"infer\" in [time]")
    if ambiguous == "earlier":
        off = big
    elif ambiguous == "later":
        off = small
    else:   # infer: repeats of the same local time within a file are the later instant
        off = big.copy()
        idx = np.flatnonzero(amb)
        groups = np.zeros(local_ms.size, np.int64) if order_groups is None else order_groups
        keys = np.stack([groups[idx], local_ms[idx]])
        _, first = np.unique(keys, axis=1, return_index=True)
        later = np.ones(idx.size, bool)
        later[first] = False
        off[idx[later]] = small[idx[later]]
    return local_ms - off


def _fmt(ms: int) -> str:
    return str(np.datetime64(int(ms), "ms").astype("datetime64[s]")).replace("T", " ")
