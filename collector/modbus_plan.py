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

from dataclasses import dataclass

from .registers import Field

MODBUS_MAX_REGISTERS = 125           # registers per read (FC 03/04), Modbus spec
READ_FUNCTION_CODES = frozenset({3, 4})


@dataclass(frozen=True)
class Block:
    """One read request: `count` registers from `address` with function `fc`, decoding `fields`."""

    fc: int
    address: int
    count: int
    fields: tuple[Field, ...]

    def words(self, registers: list[int], f: Field) -> list[int]:
        off = f.address - self.address
        return registers[off:off + f.count]


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
    return Block(fc=fs[0].function_code, address=start, count=end - start, fields=tuple(fs))
