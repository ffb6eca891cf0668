"""The mapping file: how a logger's or a spreadsheet's export becomes readings.

A TOML file, validated with pydantic; every error names the file and the key::

    ignore = ["NSM", "Load_Type"] # columns known and not wanted (no warning); before any table

    [source]                      # how to read the file (these keys may also stand at the top)
    encoding = "auto"             # auto | utf-8 | utf-8-sig | cp932 (= shift_jis) | utf-16 | euc-jp
    delimiter = "auto"            # auto | "," | "\\t" | ";"
    sheet = "Data"                # .xlsx: a sheet name, or its index from 0
    header_row = 5                # line (row) of the column names, from 1; lines above are skipped
    skip_after_header = 1         # e.g. a units row under the names
    units_row = 6                 # optional: a row of units, read for columns without `unit`
    skip_footer = 0
    decimal = "."                 # "," for 1.234,5 (then "." separates thousands)
    layout = "wide"               # wide: one column per channel; long: one row per reading

    [time]
    column = "日時"               # or columns = ["日付", "時刻"] (joined with a space)
    format = "%Y/%m/%d %H:%M:%S"  # strptime codes, "iso", "excel" (serial days, local) or "unix"/"unix_ms" (UTC)
    zone = "Asia/Tokyo"           # the zone of local times (a time with an offset keeps its own)
    ambiguous = "raise"           # raise | earlier | later | infer: a repeated local hour (DST end)
    stamp = "start"               # start | end: does a row's time mark the start or the end of
                                  # the interval its values describe (averages, interval kWh)?
                                  # "end": readings are written at the interval start
    midnight = "start_of_day"     # end_of_day: a 00:00 stamp closes the day it is dated
    interval = "15min"            # optional; default: the time column's usual step

    [[columns]]                   # one per channel (`[[channels]]` is read the same)
    column = "P(kW)"              # the header text (wide) or the channel name (long)
    channel = "press1_power"
    quantity = "power_kw"         # or 電力, 電力量, 流量, 圧力 ...
    unit = "kW"                   # converted to the quantity's unit
    kind = "instant"              # instant | counter | interval_energy
    stamp = "start"               # optional, overrides [time] stamp for this column
    scale = 1.0                   # e.g. a CT ratio the logger did not apply
    equipment_kind = "press"
    system = "air1"

    [long]                        # layout = "long" only
    channel_column = "ch"
    value_column = "value"
"""
from __future__ import annotations

import re
import zoneinfo
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import ConfigError
from ..ids import validate_channel_id
from ..quantities import QUANTITIES, parse_quantity
from ..units import METER_UNITS, QUANTITY_DIMENSION, meter_conversion, parse_meter_unit

ENCODINGS = {"auto": "auto", "utf-8": "utf-8", "utf8": "utf-8", "utf-8-sig": "utf-8-sig", "utf-8-bom": "utf-8-sig",
             "cp932": "cp932", "shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932", "ms932": "cp932",
             "windows-31j": "cp932", "utf-16": "utf-16", "utf-16le": "utf-16-le", "utf-16-le": "utf-16-le",
             "utf-16be": "utf-16-be", "utf-16-be": "utf-16-be", "euc-jp": "euc-jp", "latin-1": "latin-1",
             "iso-8859-1": "latin-1"}
# rate quantity -> the dimension of the amount per interval it is made from
INTERVAL_QUANTITIES = {"power_kw": "energy", "reactive_power_kvar": "reactive_energy", "air_flow_m3min": "volume",
                       "gas_flow_m3h": "volume"}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|min|m|h|hour)\s*$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Source(_Model):
    encoding: str = "auto"
    delimiter: str = "auto"
    sheet: str | int | None = None
    header_row: int = Field(1, ge=1, description="line of the column names, from 1")
    skip_after_header: int = Field(0, ge=0)
    units_row: int | None = Field(None, ge=1)
    skip_footer: int = Field(0, ge=0)
    layout: Literal["wide", "long"] = "wide"
    decimal: Literal[".", ","] = "."

    @field_validator("encoding")
    @classmethod
    def _enc(cls, v: str) -> str:
        key = v.strip().lower().replace("_", "-") if v.strip().lower() != "shift_jis" else "shift_jis"
        if key not in ENCODINGS and v.strip().lower() not in ENCODINGS:
            raise ValueError(f"unknown encoding {v!r}; one of auto, utf-8, utf-8-sig, cp932 (shift_jis), utf-16, euc-jp")
        return ENCODINGS.get(key) or ENCODINGS[v.strip().lower()]

    @field_validator("delimiter")
    @classmethod
    def _delim(cls, v: str) -> str:
        v = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";"}.get(v, v)
        if v != "auto" and len(v) != 1:
            raise ValueError(f"delimiter must be one character, 'tab' or 'auto', not {v!r}")
        return v

    @model_validator(mode="after")
    def _units_row(self) -> "Source":
        if self.units_row is not None and not (self.header_row < self.units_row <= self.header_row
                                               + self.skip_after_header):
            raise ValueError(f"units_row ({self.units_row}) must be one of the rows skipped after the header "
                             f"(header_row {self.header_row}, skip_after_header {self.skip_after_header})")
        return self


class TimeSpec(_Model):
    column: str | None = None
    columns: list[str] | None = None
    format: str = "iso"
    zone: str = "Asia/Tokyo"
    ambiguous: Literal["raise", "earlier", "later", "infer"] = "raise"
    stamp: Literal["start", "end"] = "start"
    midnight: Literal["start_of_day", "end_of_day"] = "start_of_day"
    interval: str | None = None
    # rows at the same instant for a channel that disagree: refuse (default), or keep the
    # first/last in file order (a logger that writes a second reading at the same second)
    duplicates: Literal["raise", "first", "last"] = "raise"

    @model_validator(mode="after")
    def _one_of(self) -> "TimeSpec":
        if (self.column is None) == (self.columns is None):
            raise ValueError("give either `column` (one date-time column) or `columns` (e.g. [\"date\", \"time\"])")
        if self.columns is not None and not 1 <= len(self.columns) <= 3:
            raise ValueError("`columns` lists 1 to 3 columns (date, time)")
        return self

    @field_validator("zone")
    @classmethod
    def _zone(cls, v: str) -> str:
        if re.match(r"^[+-]\d{2}:\d{2}$", v):
            return v
        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (e.g. Asia/Tokyo, Europe/Berlin, or a fixed offset +09:00)") \
                from None
        return v

    @field_validator("format")
    @classmethod
    def _format(cls, v: str) -> str:
        if v not in ("iso", "excel", "unix", "unix_ms") and "%" not in v:
            raise ValueError(f"time format {v!r} has no strptime code (e.g. \"%Y/%m/%d %H:%M:%S\"), nor is it "
                             f"\"iso\", \"excel\" (serial days) or \"unix\" (seconds since 1970, UTC)")
        return v

    @field_validator("interval")
    @classmethod
    def _interval(cls, v: str | None) -> str | None:
        if v is not None:
            parse_duration_s(v)
        return v

    @property
    def names(self) -> list[str]:
        return [self.column] if self.column is not None else list(self.columns or [])

    def interval_s(self) -> float | None:
        return None if self.interval is None else parse_duration_s(self.interval)


MAX_INTERVAL_S = 31 * 86400


def parse_duration_s(text: str) -> float:
    m = _DURATION.match(str(text))
    if not m or float(m.group(1)) <= 0:
        raise ValueError(f"interval {text!r} is not a duration like \"15min\", \"30s\" or \"1h\"")
    n, u = float(m.group(1)), m.group(2)
    seconds = n * {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600}[u]
    if seconds > MAX_INTERVAL_S:     # no logger averages over more than a month; 1e20 h overflowed the times
        raise ValueError(f"interval {text!r} is longer than 31 days")
    return seconds


class Column(_Model):
    column: str = Field(min_length=1)
    channel: str
    quantity: str | None = None
    unit: str | None = None
    kind: Literal["instant", "counter", "interval_energy"] = "instant"
    scale: float = 1.0
    stamp: Literal["start", "end"] | None = None      # default: [time] stamp
    equipment_kind: str | None = None
    system: str | None = None

    @field_validator("channel")
    @classmethod
    def _channel(cls, v: str) -> str:
        return validate_channel_id(v)      # the one id rule (mieruka.ids)

    @field_validator("equipment_kind", "system")
    @classmethod
    def _text(cls, v: str | None) -> str | None:
        if v is not None and any(c in v for c in ',"\r\n'):
            raise ValueError(f"{v!r} contains a comma, quote or newline")
        return v

    @field_validator("quantity")
    @classmethod
    def _quantity(cls, v: str | None) -> str | None:
        return None if v is None else parse_quantity(v)

    @field_validator("unit")
    @classmethod
    def _unit(cls, v: str | None) -> str | None:
        return None if v is None else parse_meter_unit(v).name

    @model_validator(mode="after")
    def _fit(self) -> "Column":
        if self.kind == "interval_energy":
            if self.quantity is None:
                self.quantity = "power_kw"
            if self.quantity not in INTERVAL_QUANTITIES:
                raise ValueError(f"kind = \"interval_energy\" gives a rate ({', '.join(INTERVAL_QUANTITIES)}); "
                                 f"{self.quantity} is not one")
            if self.unit is not None:
                self.conversion(self.unit)
            return self
        if self.quantity is None:
            raise ValueError("`quantity` is required (power_kw, energy_kwh, air_flow_m3min, pressure_mpa, ... or 電力, 流量)")
        if self.kind == "counter" and not QUANTITIES[self.quantity].counter:
            raise ValueError(f"kind = \"counter\" needs a counter quantity (energy_kwh, air_volume_m3, ...), "
                             f"not {self.quantity}")
        if self.unit is not None:
            meter_conversion(self.unit, self.quantity)
        return self

    def conversion(self, unit: str | None) -> tuple[float, float]:
        """(scale, offset) to the output quantity's unit; for interval energy, to the amount
        whose rate the quantity is (kWh for power_kw, m3 for air_flow_m3min, kvarh for kvar)."""
        if unit is None:
            return self.scale, 0.0
        if self.kind == "interval_energy":
            u = parse_meter_unit(unit)
            want = INTERVAL_QUANTITIES[self.quantity]
            if u.dimension != want:
                raise ValueError(f"unit {u.name} is not an amount per interval for {self.quantity} "
                                 f"(use {', '.join(n for n, x in METER_UNITS.items() if x.dimension == want)})")
            return u.to_base * self.scale, 0.0
        s, o = meter_conversion(unit, self.quantity)
        return s * self.scale, o


class Long(_Model):
    channel_column: str
    value_column: str
    unit_column: str | None = None


_SOURCE_KEYS = ("encoding", "delimiter", "sheet", "header_row", "skip_after_header", "units_row", "skip_footer",
                "decimal", "layout", "skip_rows")


class Mapping(_Model):
    source: Source = Source()
    time: TimeSpec
    columns: list[Column] = Field(min_length=1)
    ignore: list[str] = []
    long: Long | None = None

    @model_validator(mode="before")
    @classmethod
    def _spellings(cls, data):
        """Other spellings people use: source keys at the top level (`encoding = "cp932"`),
        `[[channels]]` for `[[columns]]`, `skip_rows` (lines above the names), `timezone`."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        top = {k: data.pop(k) for k in list(data) if k in _SOURCE_KEYS}
        if top:
            src = dict(data.get("source") or {})
            for k, v in top.items():
                if k in src:
                    raise ValueError(f"`{k}` is given both at the top level and in [source]")
                src[k] = v
            data["source"] = src
        if "channels" in data and "columns" not in data:
            data["columns"] = data.pop("channels")
        if not data.get("columns") and (data.get("source") or {}).get("layout", "wide") != "long":
            raise ValueError("no [[columns]] table: map at least one column (column, channel, quantity, unit); "
                             "`mieruka import --guess` leaves the columns it could not read as commented blocks "
                             "to complete")
        src = data.get("source")
        if isinstance(src, dict) and "skip_rows" in src:
            src = dict(src)
            if "header_row" in src:
                raise ValueError("give `header_row` or `skip_rows`, not both")
            n = src.pop("skip_rows")
            src["header_row"] = n + 1 if isinstance(n, int) and not isinstance(n, bool) else n
            data["source"] = src
        t = data.get("time")
        if isinstance(t, dict):
            t = dict(t)
            for alias in ("timezone", "tz"):
                if alias in t and "zone" not in t:
                    t["zone"] = t.pop(alias)
            data["time"] = t
        return data

    @model_validator(mode="after")
    def _check(self) -> "Mapping":
        if self.source.layout == "long" and self.long is None:
            raise ValueError("layout = \"long\" needs a [long] table (channel_column, value_column)")
        seen: dict[str, str] = {}
        for c in self.columns:
            if c.channel in seen and seen[c.channel] != c.column:
                raise ValueError(f"channel {c.channel!r} is given to two columns ({seen[c.channel]!r} and {c.column!r})")
            seen[c.channel] = c.column
        names = [c.column for c in self.columns]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"column {sorted(dup)[0]!r} is mapped twice")
        return self


def load_mapping(path: str | Path) -> Mapping:
    """Read and validate a mapping file; ConfigError naming the file and key."""
    from ..site import format_validation_error, line_of, read_toml
    data = read_toml(path, "mapping")
    cols = data.get("columns")
    seen: dict[object, tuple[int, object]] = {}
    for i, c in enumerate(cols if isinstance(cols, list) else []):
        # the same channel (or column) twice, with the lines of both: the model's own check
        # has only the whole file to point at
        if not isinstance(c, dict):
            continue
        for key in ("channel", "column"):
            v = c.get(key)
            if isinstance(v, (str, int)) and (key, v) in seen and not (key == "channel" and seen[(key, v)][1] == c.get("column")):
                j = seen[(key, v)][0]
                n, n0 = line_of(path, ("columns", i, key)), line_of(path, ("columns", j, key))
                raise ConfigError(f"{path}: {f'line {n}: ' if n else ''}columns[{i}].{key}: {key} {v!r} is mapped twice"
                                  + (f" (first on line {n0}, columns[{j}])" if n0 else f" (first in columns[{j}])"))
            if isinstance(v, (str, int)):
                seen.setdefault((key, v), (i, c.get("column")))
    try:
        return Mapping.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, str(path), data, model=Mapping)) from None


__all__ = ["Mapping", "Column", "Source", "TimeSpec", "load_mapping", "QUANTITY_DIMENSION"]
