"""`mieruka scan`: which unit ids answer on a Modbus TCP gateway or an RS-485 line."""
from __future__ import annotations

import asyncio
import json
import logging

import click
from rich.progress import Progress
from rich.table import Table

from . import FiniteFloat, console
from ..errors import MierukaError
from ..site import SERIAL_BAUDRATES, check_baudrate


def check_host(host: str | None) -> str | None:
    """One line for a --host that cannot be a host (empty, or with the port glued on)."""
    if host is None:
        return None
    h = host.strip()
    if not h:
        raise MierukaError("--host: empty (give the gateway's address, e.g. 192.168.1.50)")
    if h.count(":") == 1 and h.rsplit(":", 1)[1].isdigit():
        raise MierukaError(f"--host: {host!r} has a port in it: give it as --host {h.rsplit(':', 1)[0]} "
                           f"--port {h.rsplit(':', 1)[1]}")
    if any(c.isspace() for c in h) or "/" in h:
        raise MierukaError(f"--host: {host!r} is not a host name or address")
    return h


def baud_option(ctx, param, value):
    """click callback: a --baud list (scan) or value (probe) of standard serial rates."""
    if value is None:
        return value
    try:
        if isinstance(value, int):
            return check_baudrate(value)
        return [check_baudrate(b) for b in _split(value, "baud", int)]
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def _split(text: str, what: str, cast):
    try:
        vals = [cast(x.strip()) for x in text.split(",") if x.strip()]
    except ValueError:
        raise MierukaError(f"--{what}: {text!r} is not a comma-separated list") from None
    if not vals:
        raise MierukaError(f"--{what}: empty")
    return vals


@click.command("scan")
@click.option("--host", default=None, help="TCP gateway address (Modbus TCP, or RTU over TCP with --rtu-over-tcp).")
@click.option("--port", type=click.IntRange(1, 65535), default=502, show_default=True, help="TCP port.")
@click.option("--rtu-over-tcp", is_flag=True, help="The gateway passes RTU frames over TCP (transparent converter).")
@click.option("--serial", "serial_port", default=None, metavar="DEV", help="Serial device of an RS-485 line.")
@click.option("--baud", default="9600,19200", show_default=True, callback=baud_option,
              help="Baud rates to try on --serial (comma-separated; standard rates "
                   f"{SERIAL_BAUDRATES[0]}..{SERIAL_BAUDRATES[-1]}).")
@click.option("--parity", default="N,E", show_default=True, help="Parities to try on --serial: N, E, O (comma-separated).")
@click.option("--units", default="1-247", show_default=True, help="Unit ids to try: 1-247, or a list like 1,2,10-20.")
@click.option("--timeout", "timeout_s", type=FiniteFloat(0.01, 10), default=None,
              help="Seconds to wait per unit id [default: 0.3 on TCP, 0.15 on serial].")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def command(host, port, rtu_over_tcp, serial_port, baud, parity, units, timeout_s, as_json) -> int:
    """List the Modbus unit ids that answer (read-only: function codes 3 and 4 only).

    Each unit id is asked for holding register 0 (and input register 0 if it has no
    holding registers); an exception answer also means a device is there.  On --serial every baud rate x parity is tried and the
    settings that answer are listed."""
    from ..collector.discovery import parse_units

    if (host is None) == (serial_port is None):
        raise MierukaError("give either --host (TCP gateway) or --serial DEV (RS-485 line)")
    host = check_host(host)
    if serial_port is not None and not serial_port.strip():
        raise MierukaError("--serial: empty (give the serial device, e.g. /dev/ttyUSB0)")
    try:
        unit_ids = parse_units(units)
    except ValueError as e:
        raise MierukaError(f"--units: {e}") from None
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    if serial_port:
        bauds = baud
        parities = [p.upper() for p in _split(parity, "parity", str)]
        bad = [p for p in parities if p not in ("N", "E", "O")]
        if bad:
            raise MierukaError(f"--parity: {bad[0]!r} is not N, E or O")
        settings = [(b, p) for b in bauds for p in parities]
        timeout_s = timeout_s or 0.15
    else:
        settings = [(None, None)]
        timeout_s = timeout_s or 0.3
    found, garbled, echo = asyncio.run(_scan(host, port, rtu_over_tcp, serial_port, settings, unit_ids, timeout_s))
    where = serial_port or f"{host}:{port}"
    if as_json:
        click.echo(json.dumps({"target": where, "protocol": _protocol(serial_port, rtu_over_tcp),
                               "units_tried": len(unit_ids), "settings_tried": len(settings),
                               "found": [f.as_dict() for f in found], "garbled": garbled,
                               "answers_every_unit": bool(echo)}, indent=2, allow_nan=False))
        return 0
    from ..collector.discovery import RESERVED_UNIT, exception_name

    con = console()
    if not found:
        con.print(f"no unit answered on {where} ({len(unit_ids)} unit ids"
                  + (f", {len(settings)} serial settings" if serial_port else "")
                  + f"; a device slower than --timeout {timeout_s} s looks absent: try a longer one)")
    else:
        t = Table("unit", *(("baud", "parity") if serial_port else ()), "answer", title=f"devices on {where}")
        shown = found[:3] if echo else found       # one device answering for every id: no 247-row table
        for f in shown:
            ans = (f"registers ({f.table})" if f.answer == "registers"
                   else f"{exception_name(f.exception_code)}: present")
            t.add_row(str(f.unit), *((str(f.baudrate), f.parity) if serial_port else ()), ans)
        con.print(t)
        if len(shown) < len(found):
            con.print(f"... and {len(found) - len(shown)} more ids answering alike (--json lists them all)")
    if echo:
        con.print(f"warning: {where} also answers unit id {RESERVED_UNIT}, which no device may have: it "
                  f"ignores the unit id (a Modbus TCP meter, or a gateway that does not route by unit id), so "
                  f"the ids above are one device answering for each id", style="yellow")
    if garbled:
        con.print(f"{garbled} garbled answers: a device may be there at other serial settings")
    return 0


def _protocol(serial_port, rtu_over_tcp) -> str:
    return "modbus_rtu" if serial_port else ("rtu_over_tcp" if rtu_over_tcp else "modbus_tcp")


async def _scan(host, port, rtu_over_tcp, serial_port, settings, unit_ids, timeout_s):
    from ..collector.discovery import answers_any_unit, scan_units
    from ..collector.modbus_conn import Connection, LinkDown
    from ..site import Meter

    found, garbled, echo = [], 0, False
    err = console(stderr=True)
    with Progress(console=err, transient=True) as bar:
        task = bar.add_task("scanning", total=len(settings) * len(unit_ids))
        for b, p in settings:
            meter = Meter(id="scan", protocol=_protocol(serial_port, rtu_over_tcp), model="scan", host=host or "",
                          port=port, serial_port=serial_port, baudrate=b or 9600, parity=p or "N",
                          timeout_s=timeout_s, retries=0)
            conn = Connection(serial_port or f"{host}:{port}", meter)
            conn.late_grace_s /= 2     # most ids are silent: half a timeout still covers a 1.5x-late answer
            bar.update(task, description=f"scanning {b} baud {p}" if b else "scanning")
            try:
                f, g = await scan_units(conn, unit_ids, timeout_s, lambda n: bar.advance(task, n), b, p)
                if f:
                    echo = echo or await answers_any_unit(conn, timeout_s)
            except LinkDown as e:
                raise MierukaError(str(e)) from None
            finally:
                conn.close()
            found += f
            garbled += g
    return found, garbled, echo
