"""`mieruka simulate`: serve the site's simulated meters over Modbus TCP, or write a
recording of the simulated factory with its ground truth (`--record`)."""
from __future__ import annotations

import asyncio
import datetime as dt
import signal

import click

from . import POSITIVE, FiniteFloat
from ..errors import MierukaError
from ..site import load_site


@click.command("simulate")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Site config (TOML); its [simulation] table names the scenario.")
@click.option("--scenario", "scenario_path", type=click.Path(dir_okay=False), default=None,
              help="Scenario file (default: [simulation].scenario of the site, else built from its channels). "
                   "With --record, a scenario alone is enough.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="TCP port (default: the meters' port in the site file).")
@click.option("--speed", type=FiniteFloat(min=0, min_open=True, max=1e6), default=1.0, show_default=True,
              help="Simulated seconds per wall-clock second.")
@click.option("--duration", type=POSITIVE, default=None,
              help="Stop serving after this many seconds.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=None, help="Random seed (default: [simulation].seed, else 0).")
@click.option("--fault", "fault_specs", multiple=True, metavar="METER:KIND[:ARG]",
              help="Live fault, repeatable: pm-hvac:timeout, pm-hvac:timeout:2.5 (answer after 2.5 s), "
                   "pm-press:exception:6, pm-main:garbage:huge, pm-lighting:stuck, pm-main:reset.")
@click.option("--rtu-over-tcp", is_flag=True, help="RTU framing over the TCP socket (like an RS-485/Ethernet "
              "converter in transparent mode) instead of Modbus TCP.")
@click.option("--record", "record_path", type=click.Path(dir_okay=False), default=None,
              help="Write a recording (CSV, format v1) and OUT.truth.json instead of serving.")
@click.option("--days", type=FiniteFloat(min=0, min_open=True, max=3660), default=7.0, show_default=True, help="Recording length in days.")
@click.option("--step", "step_s", type=FiniteFloat(min=0.1, max=86400), default=60.0, show_default=True, help="Recording step in seconds.")
@click.option("--start", default="2026-04-01", show_default=True,
              help="Recording start, site-local date or date-time (ISO 8601).")
def command(config_path: str | None, scenario_path: str | None, host: str, port: int | None, speed: float,
            duration: float | None, seed: int | None, fault_specs: tuple[str, ...], rtu_over_tcp: bool, record_path: str | None, days: float, step_s: float,
            start: str) -> int:
    """Serve the simulated factory on Modbus TCP (one unit id per meter, like an
    RS-485 gateway) until SIGINT/SIGTERM or --duration; or, with --record, write
    --days of it at --step seconds with its ground truth."""
    if config_path is None and not (record_path and scenario_path):
        raise MierukaError("--config is required (or --scenario with --record)")
    cfg = load_site(config_path) if config_path else None
    if record_path:
        return _record(cfg, scenario_path, record_path, days, step_s, start, seed)
    if speed <= 0:
        raise MierukaError(f"--speed must be > 0, not {speed}")
    faults = [_parse_fault(f) for f in fault_specs]
    return asyncio.run(_serve(cfg, scenario_path, host, port, speed, duration, seed, faults, rtu_over_tcp))


def _parse_fault(text: str):
    from pydantic import ValidationError

    from mieruka.simulators.scenario import FaultSpec

    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise MierukaError(f"--fault {text!r}: expected METER:KIND or METER:KIND:ARG")
    meter, kind = parts[0], parts[1]
    extra: dict = {}
    if len(parts) == 3:
        key = {"timeout": "delay_s", "gap": "delay_s", "exception": "exception_code", "garbage": "garbage"}.get(kind)
        if key is None:
            raise MierukaError(f"--fault {text!r}: {kind} takes no argument")
        extra[key] = parts[2]
    try:
        return FaultSpec(meter=meter, kind=kind, **extra)
    except ValidationError as e:
        err = e.errors()[0]
        raise MierukaError(f"--fault {text!r}: {'.'.join(map(str, err['loc']))}: {err['msg']}") from None


def _record(cfg, scenario_path, out, days, step_s, start, seed) -> int:
    from rich.progress import Progress

    from mieruka.simulators.recording import generate_channels, write_simulated_recording
    from mieruka.simulators.scenario import load_scenario
    from mieruka.simulators.site_link import scenario_for_site, simulation_section

    if days <= 0 or step_s <= 0:
        raise MierukaError("--days and --step must be > 0")
    if days * 86400 < step_s:
        raise MierukaError(f"--days {days:g} is shorter than one --step of {step_s:g} s: the recording would be empty")
    from pathlib import Path
    if not Path(out).resolve().parent.is_dir():
        raise MierukaError(f"--record: folder {Path(out).parent} does not exist")
    try:
        t0 = dt.datetime.fromisoformat(start)
    except ValueError:
        raise MierukaError(f"--start: {start!r} is not an ISO 8601 date or date-time") from None
    if cfg is not None:
        sc = scenario_for_site(cfg, scenario_path)
        seed = simulation_section(cfg).seed if seed is None else seed
    else:
        sc = load_scenario(scenario_path)
        seed = seed or 0
    n = int(round(days * 86400 / step_s))
    with Progress(transient=True) as bar:
        task = bar.add_task("simulating", total=n)
        sim = generate_channels(sc, t0, days, step_s, seed, cfg, progress=lambda k: bar.advance(task, k))
        bar.update(task, description="writing")
        path, truth = write_simulated_recording(sim, out)
    click.echo(f"wrote {sim.rows} readings of {len(sim.infos)} channels to {path} and the ground truth to {truth}",
               err=True)
    return 0


async def _serve(cfg, scenario_path, host, port, speed, duration, seed, faults, rtu_over_tcp=False) -> int:
    from mieruka.simulators.modbus_server import serve_modbus

    handle = await serve_modbus(cfg, host, port, speed, faults, scenario_path=scenario_path, seed=seed,
                                rtu_over_tcp=rtu_over_tcp)
    units = ", ".join(f"{u}={sm.id}({sm.regmap.model})" for u, sm in sorted(handle.gateway.units.items()))
    framing = "RTU over TCP" if rtu_over_tcp else "Modbus TCP"
    click.echo(f"simulating {cfg.site.name} on {host}:{handle.port} ({framing}, speed x{speed}); units {units}", err=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), duration)
    except asyncio.TimeoutError:
        pass
    await handle.stop()
    click.echo("simulator stopped", err=True)
    return 0
