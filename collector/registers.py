"""Register maps: one TOML file per meter model in `config/registers/`, and the
codec between register words and values.

Used by both sides of the wire: the Modbus collector decodes, the simulator
encodes, so a map file is the single statement of how a meter lays out its data.

A map file::

    [meter]
    model = "sdm630"
    title = "Eastron SDM630 three-phase power meter"
    source = "Eastron SDM630 Modbus protocol V1.8"
    addressing = 0          # 0: addresses are protocol addresses (manual 30001 = 0)
                            # 1: addresses are 1-based register numbers
                            # "modicon": 3xxxx/4xxxx numbers (30001 = input 0, 40001 = holding 0)
    table = "input"         # default register table: input (FC 04) or holding (FC 03)
    word_order = "big"      # big: high word first (ABCD); little: low word first (CDAB)
    byte_order = "big"      # big: high byte first in each word; little swaps bytes (BADC / DCBA)
    max_registers_per_read = 125

    [fields.total_power]
    address = 0x34
    type = "float32"        # int16 uint16 int32 uint32 int64 uint64 float32 float64
    scale = 0.001           # value = raw * scale + offset
    unit = "kW"             # unit after scaling
    quantity = "power_kw"
    counter = false         # a running total (energy, volume): wrap/reset handled by the collector
    min = -1e6              # plausibility bounds after scaling; outside -> OUT_OF_RANGE
    max = 1e6
    checked = true          # the address/type/scale were checked against `manual` (false: from a
                            # secondary source, to be confirmed on a real device)

Provenance keys of `[meter]`: `manual` (the document's title), `revision` (its
revision or date), `source` (where the figures were taken from, when it is not the
manual itself), `notes` (settings the device needs, e.g. a protocol switch).
"""
from __future__ import annotations

import datetime as dt
import struct
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field as PField, StrictBool, StrictInt, ValidationError, \
    field_validator, model_validator

from mieruka.config import REGISTERS_DIR
from mieruka.errors import ConfigError
from mieruka.site import check_quantity, format_validation_error, read_toml

TYPES: dict[str, tuple[int, str]] = {   # name -> (registers, struct code)
    "int16": (1, "h"), "uint16": (1, "H"),
    "int32": (2, "i"), "uint32": (2, "I"),
    "int64": (4, "q"), "uint64": (4, "Q"),
    "float32": (2, "f"), "float64": (4, "d"),
}
TABLES = {"input": 4, "holding": 3}     # table -> Modbus function code


@dataclass(frozen=True)
class Field:
    name: str
    address: int              # 0-based protocol address
    type: str
    table: str                # input | holding
    word_order: str
    byte_order: str
    scale: float = 1.0
    offset: float = 0.0
    unit: str | None = None
    quantity: str | None = None
    counter: bool = False
    min: float | None = None
    max: float | None = None
    description: str = ""
    checked: bool | None = None      # checked against the map's manual (None: not stated)

    @property
    def count(self) -> int:
        return TYPES[self.type][0]

    @property
    def function_code(self) -> int:
        return TABLES[self.table]

    @property
    def wrap_raw(self) -> int | None:
        """For integer counters: the raw value at which the counter wraps to zero."""
        if self.type.startswith("uint"):
            return 1 << (16 * self.count)
        if self.type.startswith("int"):
            return 1 << (16 * self.count - 1)
        return None

    def decode(self, words: list[int] | tuple[int, ...]) -> float:
        """Register words (as read, in address order) -> scaled value."""
        return decode_raw(words, self.type, self.word_order, self.byte_order) * self.scale + self.offset

    def encode(self, value: float) -> list[int]:
        """Scaled value -> register words in address order (for simulators)."""
        return encode_raw((value - self.offset) / self.scale, self.type, self.word_order, self.byte_order)


def _order_words(words: list[int], word_order: str, byte_order: str) -> bytes:
    ws = list(words) if word_order == "big" else list(reversed(words))
    if byte_order == "big":
        return b"".join(w.to_bytes(2, "big") for w in ws)
    return b"".join(w.to_bytes(2, "little") for w in ws)


def decode_raw(words, type_: str, word_order: str = "big", byte_order: str = "big") -> float:
    n, code = TYPES[type_]
    if len(words) != n:
        raise ValueError(f"{type_} needs {n} registers, got {len(words)}")
    return struct.unpack(">" + code, _order_words([int(w) & 0xFFFF for w in words], word_order, byte_order))[0]


def encode_raw(raw: float, type_: str, word_order: str = "big", byte_order: str = "big") -> list[int]:
    n, code = TYPES[type_]
    if code in "fd":
        data = struct.pack(">" + code, float(raw))
    else:
        iv = int(round(raw))
        bits = 16 * n
        if code.isupper():
            iv %= 1 << bits                      # counters wrap like the real device
        else:
            iv = (iv + (1 << (bits - 1))) % (1 << bits) - (1 << (bits - 1))
        data = struct.pack(">" + code, iv)
    words = [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]
    if byte_order != "big":
        words = [((w & 0xFF) << 8) | (w >> 8) for w in words]
    return words if word_order == "big" else list(reversed(words))


@dataclass(frozen=True)
class RegisterMap:
    model: str
    title: str
    source: str
    fields: dict[str, Field]
    max_registers_per_read: int = 125
    path: Path | None = None
    manual: str = ""
    revision: str = ""
    notes: str = ""
    word_order: str = "big"          # the map's own default (fields may override it)

    def adapted(self, word_order: str | None = None, address_base: int = 0) -> "RegisterMap":
        """This map as one particular device lays it out: `word_order` replaces every
        field's word order (a meter set to swapped words, or a gateway that swaps
        them); `address_base = 1` reads each field one address higher (a device that
        counts its registers from 1).  What `mieruka probe` finds, a meter's config
        applies here."""
        if word_order is None and not address_base:
            return self
        fields = {n: replace(f, word_order=word_order or f.word_order, address=f.address + address_base)
                  for n, f in self.fields.items()}
        if any(f.address + f.count - 1 > 65535 for f in fields.values()):
            raise ConfigError(f"{self.path}: with address_base = {address_base} a field of {self.model!r} "
                              f"runs past register 65535")
        return replace(self, fields=fields)

    def field(self, name: str) -> Field:
        try:
            return self.fields[name]
        except KeyError:
            raise ConfigError(f"{self.path}: register map {self.model!r} has no field {name!r}; "
                              f"it has: {', '.join(self.fields)}") from None


def _to_address(raw: int, addressing: int | str, table: str, where: str) -> int:
    if addressing == 0:
        addr = raw
    elif addressing == 1:
        addr = raw - 1
    elif addressing == "modicon":
        base = {"input": 30001, "holding": 40001}[table]
        addr = raw - base
    else:
        raise ConfigError(f"{where}: addressing must be 0, 1 or \"modicon\", not {addressing!r}")
    if not 0 <= addr <= 65535:
        raise ConfigError(f"{where}: address {raw} is outside 0..65535 with addressing = {addressing!r}")
    return addr


class _Spec(BaseModel):
    # inf/nan would scale or bound every reading as inf; a typo must be named, not ignored
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=False)


Order = Literal["big", "little"]


class _MeterSpec(_Spec):
    model: str = PField(min_length=1)
    title: str | None = None
    source: str = ""
    manual: str = ""
    revision: str | int | dt.date = ""
    notes: str = ""
    addressing: Literal[0, 1, "modicon"] = 0
    table: Literal["input", "holding"] = "input"
    word_order: Order = "big"
    byte_order: Order = "big"
    max_registers_per_read: int = PField(default=125, ge=1, le=125)


class _FieldSpec(_Spec):
    address: StrictInt
    type: Literal["int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64"]
    table: Literal["input", "holding"] | None = None
    word_order: Order | None = None
    byte_order: Order | None = None
    scale: float = 1.0
    offset: float = 0.0
    unit: str | None = None
    quantity: str | None = None
    counter: StrictBool = False
    min: float | None = None
    max: float | None = None
    description: str = ""
    checked: StrictBool | None = None

    @field_validator("scale")
    @classmethod
    def _scale(cls, v: float) -> float:
        if v == 0:
            raise ValueError("scale 0 would make every reading 0 (and the simulator divide by zero)")
        return v

    @field_validator("quantity")
    @classmethod
    def _quantity(cls, v: str | None) -> str | None:
        return None if v is None else check_quantity(v)

    @model_validator(mode="after")
    def _bounds(self) -> "_FieldSpec":
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} is above max {self.max:g}: every reading would be out of range")
        return self


class _MapSpec(_Spec):
    meter: _MeterSpec
    fields: dict[str, _FieldSpec] = PField(min_length=1)


def parse_register_map(data: dict, path: Path) -> RegisterMap:
    where = str(path)
    if not isinstance(data.get("meter"), dict) or "model" not in data["meter"]:
        raise ConfigError(f"{where}: [meter] table with `model` is missing")
    if not data.get("fields"):
        raise ConfigError(f"{where}: no [fields.*] defined")
    try:
        spec = _MapSpec.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, where, data, model=_MapSpec)) from None
    meter = spec.meter
    fields: dict[str, Field] = {}
    for name, f in spec.fields.items():
        fw = f"{where}: fields.{name}"
        ftable = f.table or meter.table
        addr = _to_address(f.address, meter.addressing, ftable, f"{fw}.address")
        if addr + TYPES[f.type][0] - 1 > 65535:
            raise ConfigError(f"{fw}.address: {f.type} at {addr} runs past register 65535")
        fields[name] = Field(
            name=name, address=addr, type=f.type, table=ftable,
            word_order=f.word_order or meter.word_order, byte_order=f.byte_order or meter.byte_order,
            scale=f.scale, offset=f.offset, unit=f.unit, quantity=f.quantity, counter=f.counter,
            min=f.min, max=f.max, description=f.description, checked=f.checked)
    return RegisterMap(model=meter.model, title=meter.title or meter.model, source=meter.source,
                       fields=fields, max_registers_per_read=meter.max_registers_per_read, path=path,
                       manual=meter.manual, revision=str(meter.revision), notes=meter.notes,
                       word_order=meter.word_order)


@lru_cache(maxsize=64)
def load_register_map(name_or_path: str, base_dir: str | None = None) -> RegisterMap:
    """A register map by model name (`sdm630` -> config/registers/sdm630.toml) or by path
    (relative paths are taken from `base_dir`, the site config's folder)."""
    p = Path(name_or_path)
    if p.suffix != ".toml":
        p = REGISTERS_DIR / f"{name_or_path}.toml"
    elif not p.is_absolute() and base_dir:
        p = Path(base_dir) / p
    if not p.is_file():
        shipped = ", ".join(sorted(x.stem for x in REGISTERS_DIR.glob("*.toml")))
        raise ConfigError(f"register map {name_or_path!r} not found ({p}); shipped maps: {shipped}")
    return parse_register_map(read_toml(p, "register map"), p)
