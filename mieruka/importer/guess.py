"""`mieruka import --guess`: a starter mapping read off a file, for a person to check.

It finds the encoding, the delimiter, the header row under a logger's metadata
block, a units row, the time column(s) and their format, and the unit in each
column's name (`P(kW)`, `電力量[kWh]`, `流量 m3/min`), and writes them as a
mapping TOML with comments.  Nothing here is trusted blindly: the output says
what to check.
"""
from __future__ import annotations

import datetime as dt
import re
import unicodedata
from pathlib import Path

from ..errors import InputError
from ..units import QUANTITY_DIMENSION, parse_meter_unit
from .readers import (SAMPLE_BYTES, _read_head, _split, detect_encoding, encoding_name, is_xlsx, normalize_name,
                      sniff_delimiter)

SAMPLE_ROWS = 60
DATETIME_FORMATS = ["%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M",
                    "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y/%m/%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S.%f",
                    "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M",
                    "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%Y.%m.%d %H:%M:%S", "%Y.%m.%d %H:%M",
                    "%Y年%m月%d日 %H:%M:%S", "%Y年%m月%d日 %H:%M", "%y/%m/%d %H:%M:%S", "%y/%m/%d %H:%M"]
DATE_FORMATS = ["%Y/%m/%d", "%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%Y.%m.%d", "%Y年%m月%d日", "%y/%m/%d"]
TIME_FORMATS = ["%H:%M:%S", "%H:%M", "%H:%M:%S.%f", "%H時%M分%S秒", "%H時%M分"]
_BRACKETS = re.compile(r"[\(\[<{]([^\)\]>}]+)[\)\]>}]\s*$")
_DEFAULT_QUANTITY = {"power": "power_kw", "energy": "energy_kwh", "air_flow": "air_flow_m3min",
                     "volume": "air_volume_m3", "pressure": "pressure_mpa", "temperature": "temperature_c",
                     "voltage": "voltage_v", "current": "current_a", "ratio": "power_factor",
                     "frequency": "frequency_hz", "reactive_power": "reactive_power_kvar",
                     "reactive_energy": "reactive_power_kvar"}


def unit_in_header(text: str) -> str | None:
    """The unit a column name states: `P(kW)`, `電力量[kWh]`, `流量 m3/min`, `圧力_MPa`; None if none."""
    s = unicodedata.normalize("NFKC", str(text)).strip()
    cands = []
    m = _BRACKETS.search(s)
    if m:
        cands.append(m.group(1))
    parts = re.split(r"[\s_]+", s)
    if len(parts) > 1:
        cands.append(parts[-1])
    m = re.search(r"(k?W|[kM]?Wh|m3/min|L/min|m3/h|[kM]?Pa|bar|℃|kvarh?)$", s)
    if m and m.start() > 0:
        cands.append(m.group(1))
    cands.append(s)
    for c in cands:
        try:
            return parse_meter_unit(c).name
        except ValueError:
            continue
    return None


def _quantity_from_name(name: str) -> str | None:
    from ..quantities import parse_quantity
    base = _BRACKETS.sub("", unicodedata.normalize("NFKC", name)).strip()
    for cand in (base, re.split(r"[\s_]+", base)[-1], re.split(r"[\s_]+", base)[0]):
        try:
            return parse_quantity(cand)
        except ValueError:
            continue
    low = base.lower().replace("_", " ")
    if "power factor" in low or low.split()[-1:] == ["pf"]:
        return "power_factor"
    for word, q in (("電力量", "energy_kwh"), ("電力", "power_kw"), ("流量", "air_flow_m3min"), ("圧力", "pressure_mpa"),
                    ("温度", "temperature_c"), ("電圧", "voltage_v"), ("電流", "current_a"), ("力率", "power_factor")):
        if word in base:
            return q
    return None


def _all_units(cells: list[str]) -> bool:
    """A units row: every non-empty cell is a unit by itself (`kW`, `m3/min`, `℃`)."""
    seen = 0
    for x in cells:
        if not x.strip():
            continue
        try:
            parse_meter_unit(x)
            seen += 1
        except ValueError:
            return False
    return seen > 0


def _is_number(s: str) -> bool:
    s = unicodedata.normalize("NFKC", s).strip().replace(",", "")
    try:
        float(s)
        return True
    except ValueError:
        return False


def _fits(values: list[str], fmt: str) -> bool:
    ok = 0
    for v in values:
        v = v.strip()
        if v in ("",):
            continue
        try:
            dt.datetime.fromisoformat(v) if fmt == "iso" else dt.datetime.strptime(v, fmt)
            ok += 1
        except ValueError:
            return False
    return ok > 0


def _numeric_time_format(values: list[str]) -> str | None:
    """"excel" (serial days since 1899-12-30, local), "unix" or "unix_ms" (UTC) for a
    column of numbers that rise in whole-second steps within a plausible span of
    years; None otherwise (a counter or an index column)."""
    try:
        x = [float(v.strip()) for v in values if v.strip()]
    except ValueError:
        return None
    if len(x) < 3 or any(b <= a for a, b in zip(x, x[1:])):
        return None
    for fmt, lo, hi, per_s in (("excel", 25569.0, 62091.0, 86400.0),            # 1970 .. 2069
                               ("unix", 6.3e8, 3.2e9, 1.0), ("unix_ms", 6.3e11, 3.2e12, 0.001)):
        if all(lo <= v <= hi for v in x):
            steps = [(b - a) * per_s for a, b in zip(x, x[1:])]
            # a logging interval: whole seconds under a minute, else whole minutes (serial days
            # printed with 6+ decimals are within 0.1 s); a counter's steps are neither
            if all(abs(st - round(st)) < 0.1 and st >= 0.9 and (st < 60 or round(st) % 60 == 0) for st in steps) \
                    and (fmt != "unix" or all(float(v).is_integer() for v in x)):
                return fmt
    return None


def _format_of(values: list[str], formats: list[str]) -> str | None:
    for f in formats:
        if _fits(values, f):
            return f
    return None


MIDNIGHT_ROWS = 3000     # rows read to see a few midnights of 15-minute data


def _time_texts(path: Path, enc: str, delim: str | None, data_start: int, time_cols: list[int],
                data: list[list[str]]) -> list[str]:
    """The time texts of the first MIDNIGHT_ROWS data rows (a day past the 12th tells
    day/month from month/day), or of the sample rows for a workbook."""
    if enc == "xlsx":
        return [" ".join(x[c] for c in time_cols) for x in data]
    out = []
    for line in _read_head(path, enc, data_start + MIDNIGHT_ROWS)[data_start:]:
        cells = _split(line, delim or ",")
        if len(cells) > max(time_cols) and cells[time_cols[0]].strip():
            out.append(" ".join(cells[c].strip() for c in time_cols))
    return out


def _midnight_closes_day(path: Path, enc: str, delim: str | None, data_start: int, time_cols: list[int],
                         fmt: str) -> bool:
    """True when the times step back exactly at 00:00 rows, each dated with the day it
    closes (`01/01/2018 0:00` after `01/01/2018 23:45`): the logger writes 24:00 as 00:00
    of the same date, i.e. it stamps interval ends."""
    lines = _read_head(path, enc, data_start + MIDNIGHT_ROWS)[data_start:]
    times = []
    for line in lines:
        cells = _split(line, delim or ",")
        try:
            times.append(dt.datetime.strptime(" ".join(cells[c].strip() for c in time_cols), fmt))
        except (ValueError, IndexError):
            continue
    back = [i for i in range(1, len(times)) if times[i] < times[i - 1]]
    return bool(back) and all(times[i].time() == dt.time(0, 0) and times[i].date() == times[i - 1].date()
                              for i in back)


def _zone_of(path: Path, enc: str, delim: str | None, texts: list[str], col: int) -> tuple[str, str]:
    """(zone, comment) for ISO times: the zone whose UTC offsets the times carry
    (`+01:00` in winter and `+02:00` in summer: Europe/Berlin), read at places spread
    over a plain CSV (to see DST changes) or in the sample rows."""
    from ..timezones import informative, offsets_sample, zones_fitting
    t_ms, off = [], []
    for x in texts:
        x = x.strip()
        try:
            t = dt.datetime.fromisoformat(x[:-1] + "+00:00" if x.endswith(("Z", "z")) else x)
        except ValueError:
            continue
        if t.tzinfo is not None:
            t_ms.append(int(t.timestamp() * 1000))
            off.append(int(t.utcoffset().total_seconds() // 60))
    import numpy as np
    t_a, o_a = np.array(t_ms, np.int64), np.array(off, np.int64)
    if delim == "," and enc in ("utf-8", "utf-8-sig", "ascii"):
        try:
            t2, o2 = offsets_sample(path, col)
            t_a, o_a = np.concatenate([t_a, t2]), np.concatenate([o_a, o2])
        except (OSError, ValueError):
            pass
    if not informative(o_a):
        return "Asia/Tokyo", ("the times are UTC (or carry no offset): they say nothing about the site's zone; "
                              "analyze with --timezone")
    fit = zones_fitting(t_a, o_a, limit=4)
    if not fit:
        return "Asia/Tokyo", "CHECK: no zone fits the times' UTC offsets"
    also = f" (also fit: {', '.join(fit[1:])})" if len(fit) > 1 else ""
    return fit[0], f"from the times' UTC offsets{also}: CHECK"


def _sample_rows(path: Path) -> tuple[list[list[str]], str, str | None]:
    """(rows of text, encoding or 'xlsx', delimiter)"""
    if is_xlsx(path):
        from openpyxl import load_workbook
        try:
            wb = load_workbook(path, read_only=True, data_only=True)
        except Exception as e:          # noqa: BLE001  (openpyxl raises many kinds on a bad workbook)
            raise InputError(f"{path}: not an .xlsx workbook ({e})") from None
        rows = []
        for row in wb.worksheets[0].iter_rows(values_only=True, max_row=SAMPLE_ROWS):
            rows.append(["" if c is None else (c.isoformat(sep=" ") if isinstance(c, dt.datetime)
                                               else c.isoformat() if isinstance(c, (dt.date, dt.time)) else str(c))
                         for c in row])
        wb.close()
        return rows, "xlsx", None
    enc = detect_encoding(path)
    lines = _read_head(path, enc, SAMPLE_ROWS)
    delim = sniff_delimiter("\n".join(lines[-10:]))
    return [_split(x, delim) for x in lines], enc, delim


def _slug(name: str, taken: set[str], unit: str | None = None) -> str:
    s = unicodedata.normalize("NFKC", name)
    s = _BRACKETS.sub("", s).strip()
    if unit:           # `流量 m3/min`, `Usage_kWh`: the unit is not part of the channel's name
        s = re.sub(r"[\s_]+" + re.escape(unit) + r"$", "", s, flags=re.IGNORECASE) or s
    s = re.sub(r"[^A-Za-z0-9_.:\-\u3040-\u30ff\u4e00-\u9fff]+", "_", s).strip("_-").lower() or "ch"
    out, k = s, 2
    while out in taken:
        out, k = f"{s}_{k}", k + 1
    taken.add(out)
    return out


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def guess_mapping(path: str | Path) -> str:
    """A starter mapping (TOML text) for the file at `path`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    rows, enc, delim = _sample_rows(path)
    if not rows:
        raise InputError(f"{path}: empty file")
    width = max(len(r) for r in rows)
    # data rows: the last rows of the sample, which share one field count and start with a time
    tail_width = len(rows[-1])
    data_start = None
    time_cols: list[int] = []
    fmt = None
    for r in range(len(rows)):
        block = [x for x in rows[r:r + 10] if len(x) == tail_width]
        if len(rows[r]) != tail_width or len(block) < min(3, len(rows) - r):
            continue
        for c in range(min(3, tail_width)):
            vals = [x[c] for x in block]
            if not vals[0].strip():
                continue
            f = _format_of(vals, DATETIME_FORMATS + ["iso"]) or (_numeric_time_format(vals) if c < 2 else None)
            if f:
                time_cols, fmt = [c], f
                break
            fd = _format_of(vals, DATE_FORMATS)
            if fd and c + 1 < tail_width:
                ft = _format_of([x[c + 1] for x in block], TIME_FORMATS)
                if ft:
                    time_cols, fmt = [c, c + 1], f"{fd} {ft}"
                    break
        if time_cols:
            data_start = r
            break
    if data_start is None:
        raise InputError(f"{path}: found no time column in the first {len(rows)} rows "
                         f"(tried formats such as 2026/04/01 09:00:00 and 01/04/2026 9:00); write the mapping by hand")
    header_row = None
    for r in range(data_start - 1, -1, -1):
        cells = [x for x in rows[r] if x.strip()]
        if len(rows[r]) == tail_width and cells and sum(not _is_number(x) for x in cells) >= len(cells) * 0.8:
            header_row = r
            # the row directly under the data's header may be a units row: prefer the upper of two text rows
            if r >= 1 and len(rows[r - 1]) == tail_width and _all_units(rows[r][max(time_cols) + 1:]):
                header_row = r - 1
            break
    if header_row is None:
        header_row = max(data_start - 1, 0)
    header = [normalize_name(h) for h in rows[header_row]]
    units_row = None
    if data_start - header_row == 2 and _all_units(rows[header_row + 1][max(time_cols) + 1:]):
        units_row = header_row + 1
    data = [x for x in rows[data_start:] if len(x) == tail_width]
    out = [f"# Starter mapping for {path.name}, written by `mieruka import --guess`.",
           "# CHECK every line before use: channel ids, quantities, units, interval/stamp, zone.",
           "", "[source]",
           f"encoding = {_q(enc if enc != 'xlsx' else 'auto')}    # detected: {encoding_name(enc)}"]
    if delim and delim != ",":
        out.append(f"delimiter = {_q('tab' if delim == chr(9) else delim)}")
    out.append(f"header_row = {header_row + 1}" + (f"    # line of the column names; the {header_row} line(s) above are "
                                                    f"skipped" if header_row else ""))
    if data_start - header_row - 1:
        out.append(f"skip_after_header = {data_start - header_row - 1}")
    if units_row is not None:
        out.append(f"units_row = {units_row + 1}")
    out += ["", "[time]"]
    if len(time_cols) == 1:
        out.append(f"column = {_q(header[time_cols[0]])}")
    else:
        out.append(f"columns = [{', '.join(_q(header[c]) for c in time_cols)}]")
    out.append(f"format = {_q(fmt)}")
    if fmt and fmt.startswith("%d/%m") and _fits(_time_texts(path, enc, delim, data_start, time_cols, data),
                                                  fmt.replace("%d/%m", "%m/%d")):
        out.append("# both day/month and month/day fit the sample: check which the logger writes")
    midnight_end = enc != "xlsx" and fmt not in ("iso", "excel", "unix", "unix_ms") and \
        _midnight_closes_day(path, enc, delim, data_start, time_cols, fmt)
    zone, zone_note = _zone_of(path, enc, delim, [x[time_cols[0]] for x in data], time_cols[0]) \
        if fmt == "iso" else ("Asia/Tokyo", "the zone of the logger's clock")
    out += [f'zone = "{zone}"    # {zone_note}',
            ('stamp = "end"    # the 00:00 rows are dated with the day they close: times mark interval ends'
             if midnight_end else
             'stamp = "start"    # "end" if each time closes its interval (usual for interval kWh)')]
    if midnight_end:
        out.append('midnight = "end_of_day"    # "24:00" written as 00:00 of the day it ends (time goes back there)')
    out.append("")
    taken: set[str] = set()
    ignore = []
    unknown: list[str] = []
    for i, name in enumerate(header):
        if i in time_cols or i >= tail_width:
            continue
        vals = [x[i] for x in data]
        if not any(_is_number(v) for v in vals):
            ignore.append(name or f"#{i + 1}")
            continue
        unit = unit_in_header(name)
        if unit is None and units_row is not None and i < len(rows[units_row]):
            unit = unit_in_header(rows[units_row][i])
        kind = "instant"
        quantity = None
        if unit is not None:
            dim = parse_meter_unit(unit).dimension
            quantity = _DEFAULT_QUANTITY.get(dim)
            if dim in ("energy", "volume", "reactive_energy"):
                nums = [float(unicodedata.normalize("NFKC", v).replace(",", "")) for v in vals if _is_number(v)]
                rising = len(nums) > 2 and all(b >= a for a, b in zip(nums, nums[1:])) and nums[-1] > nums[0]
                if not rising or dim == "reactive_energy":
                    kind = "interval_energy"
                    quantity = {"energy": "power_kw", "volume": "air_flow_m3min",
                                "reactive_energy": "reactive_power_kvar"}[dim]
                else:
                    kind = "counter"
        if quantity is None:
            quantity = _quantity_from_name(name)
            if quantity == "power_factor" and unit is None:
                nums = [abs(float(unicodedata.normalize("NFKC", v).replace(",", ""))) for v in vals if _is_number(v)]
                unit = "%" if nums and max(nums) > 1.5 else "1"
        block = [f"column = {_q(name or f'#{i + 1}')}", f"channel = {_q(_slug(name, taken, unit))}"]
        if quantity is None:
            # no unit and no quantity name: left out (the import lists it in a warning) until a person says
            unknown.append(name or f"#{i + 1}")
            out += ["# CHECK: what is this column? no unit or quantity found in its name", "# [[columns]]"]
            out += [f"# {x}" for x in block] + ['# quantity = "power_kw"', ""]
            continue
        out.append("[[columns]]")
        out += block
        out.append(f"quantity = {_q(quantity)}")
        if unit:
            out.append(f"unit = {_q(unit)}")
        else:
            out.append("# CHECK: quantity from the column name, no unit found (the quantity's own unit is assumed)")
        if kind != "instant":
            out.append(f'kind = "{kind}"    # {"values per interval" if kind == "interval_energy" else "a running total"}: CHECK')
        out.append('# equipment_kind = "compressor"   system = "air1"')
        out.append("")
    if ignore:
        out.append(f"ignore = [{', '.join(_q(x) for x in ignore)}]    # columns without numbers")
    # `ignore` must come before any table: move it up
    text = "\n".join(out) + "\n"
    if ignore:
        lines = text.splitlines()
        ign = lines.pop(next(k for k, x in enumerate(lines) if x.startswith("ignore = [")))
        at = next(k for k, x in enumerate(lines) if x == "[source]")
        lines.insert(at, ign)
        lines.insert(at + 1, "")
        text = "\n".join(lines) + "\n"
    return text
