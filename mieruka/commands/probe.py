"""`mieruka probe`: which word order and address base a meter uses, from the values it reads."""
from __future__ import annotations

import asyncio
import json
import logging
import math

import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from . import FiniteFloat, console
from ..errors import MierukaError
from .scan import baud_option, check_host


@click.command("probe")
@click.option("--host", default=None, help="TCP gateway address.")
@click.option("--port", type=click.IntRange(1, 65535), default=502, show_default=True, help="TCP port.")
@click.option("--rtu-over-tcp", is_flag=True, help="The gateway passes RTU frames over TCP (transparent converter).")
@click.option("--serial", "serial_port", default=None, metavar="DEV", help="Serial device of an RS-485 line.")
@click.option("--baud", "baudrate", type=int, default=9600, show_default=True, callback=baud_option,
              help="Baud rate on --serial (a standard rate).")
@click.option("--parity", type=click.Choice(["N", "E", "O"]), default="N", show_default=True, help="Parity on --serial.")
@click.option("--unit", type=click.IntRange(1, 247), required=True, help="Unit id (see `mieruka scan`).")
@click.option("--map", "map_name", required=True,
              help="Register map: a name in config/registers (e.g. sdm630) or a path to a .toml map.")
@click.option("--id", "meter_id", default=None, help="Meter id for the snippet [default: <map>-u<unit>].")
@click.option("--timeout", "timeout_s", type=FiniteFloat(0.01, 10), default=0.5, show_default=True,
              help="Seconds to wait per request.")
@click.option("--json", "as_json", is_flag=True,
              help='Print {"map", "best", "candidates", "fields", "snippet"} as JSON.')
def command(host, port, rtu_over_tcp, serial_port, baudrate, parity, unit, map_name, meter_id, timeout_s,
            as_json) -> int:
    """Read a meter's register-map fields under each word order (big/little) and
    address base (0/1), score each by physical plausibility (voltage, frequency,
    power factor, counters, the quantity bounds) and print the values and the
    [[meters]] block to paste into the site config.  Read-only (function codes 3/4)."""
    from ..collector.discovery import probe, probe_blocks, snippet
    from ..collector.modbus_conn import Connection, LinkDown
    from ..collector.registers import load_register_map
    from ..site import Meter

    if (host is None) == (serial_port is None):
        raise MierukaError("give either --host (TCP gateway) or --serial DEV (RS-485 line)")
    host = check_host(host)
    if serial_port is not None and not serial_port.strip():
        raise MierukaError("--serial: empty (give the serial device, e.g. /dev/ttyUSB0)")
    regmap = load_register_map(map_name)
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    protocol = "modbus_rtu" if serial_port else ("rtu_over_tcp" if rtu_over_tcp else "modbus_tcp")
    meter = Meter(id="probe", protocol=protocol, model=map_name, host=host or "", port=port, serial_port=serial_port,
                  baudrate=baudrate, parity=parity, unit_id=unit, timeout_s=timeout_s, retries=0)

    async def run():
        conn = Connection(serial_port or f"{host}:{port}", meter)
        try:
            with Progress(console=Console(stderr=True), transient=True) as bar:
                task = bar.add_task(f"probing unit {unit}", total=2 * probe_blocks(regmap))
                return await probe(conn, unit, regmap, timeout_s, lambda n: bar.advance(task, n))
        except LinkDown as e:
            raise MierukaError(str(e)) from None
        finally:
            conn.close()

    cands = asyncio.run(run())
    best = cands[0]
    if best.readable == 0:
        raise MierukaError(f"unit {unit} at {serial_port or f'{host}:{port}'} answered none of the fields of "
                           f"map {regmap.model!r} (silent, or another model: try `mieruka scan` and another map)")
    model = map_name if map_name.endswith(".toml") else regmap.model
    text = snippet(regmap, best, meter_id=meter_id or f"{regmap.model}-u{unit}".replace("_", "-"), protocol=protocol,
                   unit=unit, host=host, port=port, serial_port=serial_port, baudrate=baudrate, parity=parity,
                   model=model)
    fields = {n: (None if v is None or not math.isfinite(v) else v) for n, v in best.values.items()}
    if as_json:
        click.echo(json.dumps({"map": regmap.model,
                               "best": {"word_order": best.word_order, "address_base": best.address_base,
                                        "score": round(best.score, 4)},
                               "candidates": [c.as_dict() for c in cands], "fields": fields, "snippet": text},
                              indent=2, ensure_ascii=False, allow_nan=False))
        return 0
    con = console()
    t = Table("word order", "address base", "score", "fields read", "plausible", title=f"{regmap.title}, unit {unit}")
    for c in cands:
        t.add_row(c.word_order, str(c.address_base), f"{c.score:.2f}", f"{c.readable}/{len(regmap.fields)}",
                  str(c.plausible), style="bold" if c is best else None)
    con.print(t)
    if best.plausible == 0:
        con.print("no layout gives plausible values: the unit answers, but probably not as this map "
                  "says (another model, or a device that echoes register numbers); try another --map", style="yellow")
    elif len(cands) > 1 and cands[1].score >= best.score - 0.05:
        con.print("the two best candidates score alike: check one value against the meter's display", style="yellow")
    v = Table("field", "value", "unit", title=f"values ({best.word_order}, base {best.address_base})")
    for name, f in regmap.fields.items():
        val = fields[name]
        v.add_row(name, "-" if val is None else f"{val:.6g}", f.unit or "")
    con.print(v)
    con.print("\n# paste into the site config:")
    click.echo(text)
    return 0
