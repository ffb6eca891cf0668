"""Finding meters on a line (`mieruka scan`) and how a meter lays out its registers
(`mieruka probe`).  Read-only: every request goes through `modbus_conn.Connection`,
which sends function codes 3 and 4 only (and refuses anything else before it leaves),
and this module asserts the same of every request it builds.

Scan: one read of holding register 0 per unit id.  Any answer means a device is
there, an exception answer too (exception 1, 2 or 3: it does not have that
register, but it listened; 4: it is there but failing); exceptions 10 and 11 are a
TCP gateway saying *nobody* answered behind it, so they mean absent.  A reply that
carries another unit id, or a late one, is not an answer of the unit asked (pymodbus
drops it).  Serial lines are scanned at each baud rate x parity given.  Where
devices answered, one more read goes to unit id 248 (reserved: no Modbus device
may have it): an answer there means the target answers *every* unit id (a Modbus
TCP meter that ignores the unit id, or a gateway that does not route by it), so the
ids listed are one device seen many times, not many devices.

Probe: a register map's fields are read under each word order (big: high word
first; little: low word first) and address base (0: the map's addresses as they
are; 1: the device counts from 1, each address read one higher), and each
candidate is scored by physical plausibility: every value inside its quantity's
physical bounds (`mieruka.quantities`) and the field's own `min`/`max`, counters
not negative, no float so tiny it can only be words in the wrong order, and full
marks for values in the band a factory meter shows (mains voltage and frequency,
|power factor| in 0.05..1 ...).  Raw registers are read once per address base and
decoded under both word orders.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from mieruka.errors import MierukaError
from mieruka.quantities import QUANTITIES, bounds

from .modbus_conn import BadReply, Connection, ExceptionReply, LinkDown, ReadTimeout
from .modbus_plan import READ_FUNCTION_CODES, Block, plan_reads
from .registers import Field, RegisterMap

GATEWAY_NOBODY = (10, 11)     # gateway path unavailable / target device failed to respond
RESERVED_UNIT = 248           # 248..255 are reserved by the Modbus serial line spec: no device has them
EXCEPTION_NAMES = {1: "illegal function", 2: "illegal data address", 3: "illegal data value",
                   4: "server device failure", 5: "acknowledge", 6: "server device busy",
                   8: "memory parity error", 10: "gateway path unavailable",
                   11: "gateway target device failed to respond"}


def exception_name(code: int | None) -> str:
    return f"exception {code} ({EXCEPTION_NAMES.get(code, 'unknown code')})"
WORD_ORDERS = ("big", "little")
ADDRESS_BASES = (0, 1)

# Scoring: a value outside its quantity's physical bounds (mieruka.quantities, narrowed
# by the field's own min/max; counters not negative) is implausible; inside them, a value
# in the band a factory meter typically shows scores full marks, one outside it a
# little.  Weights: quantities with a narrow band (mains voltage and frequency) say the
# most about a layout; zeros (the same in every word order) say almost nothing.
TYPICAL: dict[str, tuple[float, float]] = {
    "voltage_v": (80.0, 700.0), "frequency_hz": (45.0, 65.0), "power_factor": (0.05, 1.0),   # |pf|
    "current_a": (0.0, 1e4), "power_kw": (-1e4, 1e4), "reactive_power_kvar": (-1e4, 1e4),
    "energy_kwh": (0.0, 1e10), "air_volume_m3": (0.0, 1e10), "gas_volume_m3": (0.0, 1e10),
    "water_volume_m3": (0.0, 1e10), "air_flow_m3min": (0.0, 1e3), "gas_flow_m3h": (0.0, 1e5),
    "pressure_mpa": (-0.1, 5.0), "temperature_c": (-30.0, 120.0),
}
WEIGHT: dict[str, float] = {"voltage_v": 3.0, "frequency_hz": 3.0, "power_factor": 2.0, "energy_kwh": 1.5,
                            "air_volume_m3": 1.5, "gas_volume_m3": 1.5, "water_volume_m3": 1.5,
                            "pressure_mpa": 1.5, "temperature_c": 1.5}
TINY = 1e-6            # a float this close to zero but not zero: almost surely swapped words


class Silent(MierukaError):
    """The unit answered nothing at all (wrong unit id, serial settings or wiring)."""


class Refused(MierukaError):
    """The unit answered, but refused every field (an exception for each) or only sent
    replies that do not fit the requests."""


def _read_only(fc: int) -> int:
    # asserted here as well as in Connection: scan and probe never send anything but reads
    if fc not in READ_FUNCTION_CODES:
        raise AssertionError(f"scan/probe only read (function codes 3 and 4), not {fc}")
    return fc


# ------------------------------------------------------------------ scan
@dataclass
class Found:
    unit: int
    answer: str                  # "registers" | "exception"
    exception_code: int | None = None
    baudrate: int | None = None
    parity: str | None = None
    table: str | None = None     # which table answered with registers: holding (FC 03) or input (FC 04)

    def as_dict(self) -> dict:
        d = {"unit": self.unit, "answer": self.answer}
        if self.table is not None:
            d["table"] = self.table
        if self.exception_code is not None:
            d["exception_code"] = self.exception_code
        if self.baudrate is not None:
            d.update(baudrate=self.baudrate, parity=self.parity)
        return d


def parse_units(text: str) -> list[int]:
    """`1-247`, `1,2,5-9` -> sorted unit ids (each 1..247)."""
    out: set[int] = set()
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m:
            raise ValueError(f"{part.strip()!r} is not a unit id or a range like 1-247")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if not 1 <= lo <= hi <= 247:
            raise ValueError(f"{part.strip()!r}: unit ids run from 1 to 247, low to high")
        out.update(range(lo, hi + 1))
    return sorted(out)


async def scan_units(conn: Connection, units: list[int], timeout_s: float, progress=None,
                     baudrate: int | None = None, parity: str | None = None) -> tuple[list[Found], int]:
    """Ask each unit id for holding register 0; returns (devices that answered, garbled replies)."""
    found: list[Found] = []
    garbled = 0
    block = Block(_read_only(3), 0, 1, ())
    for u in units:
        try:
            await conn.read(block, u, timeout_s)
            found.append(Found(u, "registers", None, baudrate, parity, "holding"))
        except ExceptionReply as e:
            if e.code not in GATEWAY_NOBODY:
                f = Found(u, "exception", e.code, baudrate, parity)
                if e.code == 1:           # no holding registers: a meter with input registers only?
                    try:
                        await conn.read(Block(_read_only(4), 0, 1, ()), u, timeout_s)
                        f = Found(u, "registers", None, baudrate, parity, "input")
                    except (ExceptionReply, BadReply, ReadTimeout):
                        pass
                found.append(f)
        except BadReply:
            garbled += 1              # noise at this baud rate / parity, or two devices answering
        except ReadTimeout:
            pass
        except LinkDown:
            conn.close()
            raise
        if progress:
            progress(1)
    return found, garbled


async def answers_any_unit(conn: Connection, timeout_s: float) -> bool:
    """Does the target answer unit id 248, which no device may have?  Then it ignores
    the unit id, and every id `scan_units` found is the same device."""
    try:
        await conn.read(Block(_read_only(3), 0, 1, ()), RESERVED_UNIT, timeout_s)
        return True
    except ExceptionReply as e:
        return e.code not in GATEWAY_NOBODY
    except (BadReply, ReadTimeout):
        return False


# ------------------------------------------------------------------ probe
def plausibility(f: Field, value: float) -> tuple[float, float, bool]:
    """(points, weight, plausible) of one decoded value."""
    q = f.quantity if f.quantity in QUANTITIES else None
    weight = WEIGHT.get(q, 1.0) if q else 0.5
    lo, hi = bounds(q, (f.min, f.max)) if q else (-math.inf, math.inf)
    if f.counter or (q and QUANTITIES[q].counter):
        lo = max(lo, 0.0)                  # a counter a meter keeps is not negative
    if not math.isfinite(value):
        return 0.0, weight, False
    if value == 0.0:
        # a zero reads the same in every word order: it tells nothing, but it is not wrong
        return 0.1 * weight, 0.1 * weight, True
    if f.type.startswith("float") and abs(value) < TINY:
        return 0.0, weight, False
    if not lo <= value <= hi:
        return 0.0, weight, False
    band = TYPICAL.get(q)
    if band is not None:
        v = abs(value) if q == "power_factor" else value
        if not band[0] <= v <= band[1]:
            return 0.2 * weight, weight, True
    return weight, weight, True


@dataclass
class Candidate:
    word_order: str
    address_base: int
    score: float = 0.0
    readable: int = 0
    plausible: int = 0
    values: dict[str, float | None] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"word_order": self.word_order, "address_base": self.address_base, "score": round(self.score, 4),
                "readable": self.readable, "plausible": self.plausible}


@dataclass
class ReadLog:
    """What a probe's reads met, to say why nothing could be read."""
    exceptions: dict[int, int] = field(default_factory=dict)
    bad_replies: int = 0
    timeouts: int = 0

    def note(self, e: Exception) -> None:
        if isinstance(e, ExceptionReply):
            self.exceptions[e.code] = self.exceptions.get(e.code, 0) + 1
        elif isinstance(e, BadReply):
            self.bad_replies += 1
        else:
            self.timeouts += 1

    def summary(self) -> str:
        parts = [f"{exception_name(c)} x{n}" for c, n in sorted(self.exceptions.items())]
        if self.bad_replies:
            parts.append(f"{self.bad_replies} malformed replies")
        if self.timeouts:
            parts.append(f"{self.timeouts} timeouts")
        return ", ".join(parts) or "no reply"

    def hint(self) -> str:
        """What to do about a unit that answered but gave no field."""
        if self.exceptions and set(self.exceptions) <= {1, 2, 3}:
            return "another model, or registers this firmware does not have: try another --map"
        if set(self.exceptions) & {4, 5, 6}:
            return "the device reports it is failing or busy: check it, then probe again"
        if self.bad_replies:
            return ("the replies do not fit the requests: check --rtu-over-tcp against what the converter "
                    "speaks, or the device answers another protocol")
        return "try another --map"


def _silent(conn: Connection, unit: int, timeout_s: float) -> Silent:
    return Silent(f"unit {unit} at {conn.key} does not answer (no reply in {timeout_s} s; a device answering "
                  f"later than --timeout or with another unit id in its reply counts as silent)")


async def _read_fields(conn: Connection, unit: int, fields: list[Field], cap: int, timeout_s: float,
                       progress=None, log: ReadLog | None = None) -> dict[str, list[int] | None]:
    """Raw words of each field (None: the device refused it); blocks that answer an
    exception are read again field by field.  A gateway's "nobody behind me" (exception
    10/11) ends the probe at once: the unit is absent, not refusing."""
    log = log if log is not None else ReadLog()
    out: dict[str, list[int] | None] = {}
    answered = False                  # anything at all, an exception answer or a malformed reply too

    async def read(block: Block) -> list[int]:
        nonlocal answered
        try:
            regs = await conn.read(block, unit, timeout_s)
        except (ExceptionReply, BadReply, ReadTimeout) as e:
            log.note(e)
            if isinstance(e, ExceptionReply) and e.code in GATEWAY_NOBODY:
                raise Silent(f"unit {unit} at {conn.key} is absent: the gateway answered {exception_name(e.code)}")
            answered = answered or not isinstance(e, ReadTimeout)
            raise
        answered = True
        return regs

    for block in plan_reads(fields, cap, 0):
        _read_only(block.fc)
        try:
            try:
                regs = await read(block)
            except ReadTimeout:
                if not answered:
                    raise
                regs = await read(block)     # one lost answer is no evidence
            for f in block.fields:
                out[f.name] = block.words(regs, f)
        except (ExceptionReply, BadReply, ReadTimeout):
            for f in block.fields:
                single = plan_reads([f], cap, 0)[0]
                try:
                    out[f.name] = await read(single)
                except (ExceptionReply, BadReply, ReadTimeout):
                    out[f.name] = None
                    if not answered:          # silent from the first request on: nobody is there
                        raise _silent(conn, unit, timeout_s) from None
        if progress:
            progress(1)
    return out


def score_candidate(regmap: RegisterMap, raw: dict[str, list[int] | None], word_order: str,
                    address_base: int) -> Candidate:
    c = Candidate(word_order, address_base)
    points = weights = 0.0
    for name, f in regmap.fields.items():
        words = raw.get(name)
        if words is None:
            c.values[name] = None
            weights += WEIGHT.get(f.quantity, 1.0)
            continue
        fo = f if word_order == regmap.word_order else _with_order(f, word_order)
        try:
            v = fo.decode(words)
        except (ValueError, OverflowError):
            v = math.nan
        c.readable += 1
        p, w, ok = plausibility(fo, v)
        points, weights = points + p, weights + w
        c.plausible += ok
        c.values[name] = v if math.isfinite(v) else None
    c.score = points / weights if weights else 0.0
    return c


def _with_order(f: Field, word_order: str) -> Field:
    from dataclasses import replace
    return replace(f, word_order=word_order)


async def probe(conn: Connection, unit: int, regmap: RegisterMap, timeout_s: float = 0.5,
                progress=None) -> list[Candidate]:
    """Every (word order, address base) candidate, best first (ties: the map as written)."""
    cap = min(regmap.max_registers_per_read, 125)
    cands: list[Candidate] = []
    log = ReadLog()
    for base in ADDRESS_BASES:
        shifted = regmap.adapted(None, base)
        raw = await _read_fields(conn, unit, list(shifted.fields.values()), cap, timeout_s, progress, log)
        for wo in WORD_ORDERS:
            cands.append(score_candidate(regmap, raw, wo, base))
    if not any(c.readable for c in cands):
        raise Refused(f"unit {unit} at {conn.key} answered, but none of the fields of map {regmap.model!r} "
                      f"({log.summary()}): {log.hint()}")
    order = {(regmap.word_order, 0): 0}
    cands.sort(key=lambda c: (-round(c.score, 6), order.get((c.word_order, c.address_base), 1)))
    return cands


def probe_blocks(regmap: RegisterMap) -> int:
    """How many reads one address base costs (for a progress bar)."""
    return len(plan_reads(list(regmap.fields.values()), min(regmap.max_registers_per_read, 125), 0))


def channel_id(meter_id: str, field_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.:\-]", "_", f"{meter_id}_{field_name}")


def snippet(regmap: RegisterMap, best: Candidate, *, meter_id: str, protocol: str, unit: int,
            host: str | None = None, port: int | None = None, serial_port: str | None = None,
            baudrate: int | None = None, parity: str | None = None, model: str | None = None) -> str:
    """The `[[meters]]` block to paste into a site config: this meter as the probe found it,
    one channel per field that answered and has a quantity."""
    lines = ["[[meters]]", f'id = "{meter_id}"', f'protocol = "{protocol}"', f'model = "{model or regmap.model}"']
    if serial_port:
        lines += [f'serial_port = "{serial_port}"', f"baudrate = {baudrate}", f'parity = "{parity}"']
    else:
        lines += [f'host = "{host}"', f"port = {port}"]
    lines.append(f"unit_id = {unit}")
    if best.word_order != regmap.word_order:
        lines.append(f'word_order = "{best.word_order}"        # found by mieruka probe')
    if best.address_base:
        lines.append(f"address_base = {best.address_base}            # the device counts registers from 1")
    for name, f in regmap.fields.items():
        if f.quantity not in QUANTITIES:
            continue
        head = "" if best.values.get(name) is not None else "# (did not answer) "
        lines += ["", f"{head}[[meters.channels]]", f'{head}id = "{channel_id(meter_id, name)}"',
                  f'{head}quantity = "{f.quantity}"', f'{head}register = "{name}"']
    return "\n".join(lines) + "\n"
