"""`mieruka simulate`: serve the site's simulated meters over Modbus TCP, or write a
recording of the simulated factory with its ground truth."""
from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import click

from ..errors import MierukaError
from ..site import load_site


@click.command("simulate")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="Site config (TOML); its [simulation] table names the scenario.")
@click.option("--scenario", "scenario_path", type=click.Path(dir_okay=False), default=None,
              help="Scenario file (default: [simulation].scenario of the site, else built from its channels).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="TCP port (default: the meters' port in the site file).")
@click.option("--speed", type=float, default=1.0, show_default=True,
              help="Simulated seconds per wall-clock second.")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds (default: run until stopped).")
@click.option("--seed", type=int, default=None, help="Random seed (default: [simulation].seed, else 0).")
def command(config_path: str, scenario_path: str | None, host: str, port: int | None, speed: float,
            duration: float | None, seed: int | None) -> int:
    """Serve the simulated factory on Modbus TCP (one unit id per meter, like an
    RS-485 gateway) until SIGINT/SIGTERM or --duration."""
    if speed <= 0:
        raise MierukaError(f"--speed must be > 0, not {speed}")
    cfg = load_site(config_path)
    return asyncio.run(_serve(cfg, scenario_path, host, port, speed, duration, seed))


async def _serve(cfg, scenario_path, host, port, speed, duration, seed) -> int:
    from mieruka.simulators.modbus_server import serve_modbus

    handle = await serve_modbus(cfg, host, port, speed, scenario_path=scenario_path, seed=seed)
    units = ", ".join(f"{u}={sm.id}({sm.regmap.model})" for u, sm in sorted(handle.gateway.units.items()))
    click.echo(f"simulating {cfg.site.name} on {host}:{handle.port} (speed x{speed}); units {units}", err=True)
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
