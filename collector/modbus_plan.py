"""Request planning: the fields a device must deliver -> the fewest Modbus reads.

Rules (Telegraf's, done better where its users hurt):
- one read covers one table (function code) and at most `max_registers` registers
  (125 is the protocol limit; the register map and the meter config may cap it lower
  for devices that refuse long reads);
- a gap of up to `fill_holes` unused registers between two fields is read through
  (one longer read is cheaper than two round trips); a larger gap starts a new read;
- `per_field=True` gives one read per field, for devices that refuse anything else;
- a read that ends in an exception is split later by the poller (see
  `mieruka.collector.modbus.split_block`): planning itself never guesses.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .registers import TYPES, Field

MODBUS_MAX_REGISTERS = 125           # registers per read (FC 03/04), Modbus spec
READ_FUNCTION_CODES = frozenset({3, 4})


@dataclass(frozen=True)
class Block:
    """One read request: `count` registers from `address` with function `fc`, decoding `fields`."""

    fc: int
    address: int
    count: int
    fields: tuple[Field, ...]

    _fast: tuple = field(default=(), compare=False, repr=False)

    def words(self, registers: list[int], f: Field) -> list[int]:
        off = f.address - self.address
        return registers[off:off + f.count]

    def decode(self, registers: list[int]) -> list[tuple[str, float]]:
        """(field name, scaled value) for every field, the same as `Field.decode` but with one
        pack of the block's words and one `unpack_from` per field (the collector's hot path)."""
        raw = struct.pack(f">{len(registers)}H", *registers)
        out = []
        for f, fmt, off in self._fast:
            if fmt is None:
                out.append((f.name, f.decode(self.words(registers, f))))
            else:
                out.append((f.name, fmt.unpack_from(raw, off)[0] * f.scale + f.offset))
        return out


def plan_reads(fields: list[Field], max_registers: int = MODBUS_MAX_REGISTERS, fill_holes: int = 0,
               per_field: bool = False) -> list[Block]:
    """Coalesce fields into the fewest blocks within the limits (sorted by table, address)."""
    cap = max(1, min(int(max_registers), MODBUS_MAX_REGISTERS))
    uniq = {(f.function_code, f.address, f.count, f.name): f for f in fields}
    ordered = [uniq[k] for k in sorted(uniq)]
    blocks: list[Block] = []
    cur: list[Field] = []
    for f in ordered:
        if f.count > cap:
            raise ValueError(f"field {f.name!r} ({f.type}, {f.count} registers) is longer than the "
                             f"read limit of {cap} registers")
        if cur and not per_field:
            first, end = cur[0], max(x.address + x.count for x in cur)
            gap = f.address - end
            if (f.function_code == first.function_code and gap <= fill_holes
                    and f.address + f.count - first.address <= cap):
                cur.append(f)
                continue
        if cur:
            blocks.append(_block(cur))
        cur = [f]
    if cur:
        blocks.append(_block(cur))
    return blocks


def _block(fs: list[Field]) -> Block:
    start = fs[0].address
    end = max(f.address + f.count for f in fs)
    # big-endian words and bytes (most meters) unpack straight from the block's bytes
    fast = tuple((f, struct.Struct(">" + TYPES[f.type][1]) if f.word_order == "big" == f.byte_order else None,
                  2 * (f.address - start)) for f in fs)
    return Block(fc=fs[0].function_code, address=start, count=end - start, fields=tuple(fs), _fast=fast)
