"""`mieruka collect`: poll the site's meters into the store until stopped."""
from __future__ import annotations

import asyncio
import logging
import signal

import click
from rich.table import Table

from . import POSITIVE, console
from ..errors import MierukaError
from ..site import load_site

log = logging.getLogger("mieruka.collect")


@click.command("collect")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), help="Site config (TOML).")
@click.option("--duration", type=POSITIVE, default=None, metavar="S",
              help="Stop after S seconds (default: run until SIGTERM or Ctrl-C).")
@click.option("--quiet", "-q", is_flag=True, help="No summary at the end.")
def command(config_path: str, duration: float | None, quiet: bool) -> int:
    """Collect the site's meters into the store: Modbus TCP, RTU and RTU-over-TCP meters (`[[meters]]`)
    and MQTT meter messages (`[mqtt]`), each protocol an input of the registry in
    mieruka.collector.inputs.

    Runs until stopped (SIGTERM or SIGINT stop it cleanly, committing what it holds)
    or for --duration seconds, then prints readings per channel and device problems.
    One log line is written when a device problem starts and one when it ends.

    Keeps the live demand period of the incomer ([demand]) in the status file, and
    sends alarms (demand stages, meters offline/back, buffer dropping, disk low, the
    daily findings digest) to the `[[notify]]` targets (docs/alarms.md).

    SIGHUP (`systemctl reload mieruka-collect`) re-reads the config: meters added,
    removed or changed apply without losing or repeating a reading; a config with an
    error is refused (the error is logged) and the running one stays. [demand] and [alarms]
    apply on reload; [[notify]] targets are read at start."""
    from ..collector.runner import Runner
    from ..service.digest import DigestScheduler
    from ..service.notify import Notifier

    cfg = load_site(config_path)
    logging.getLogger("mieruka").setLevel(min(logging.getLogger().level, logging.INFO))
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)   # per-read noise; our log says it per problem
    # alarms: the collector raises events, the application layer delivers them (never blocking a poll)
    notifier = Notifier(cfg)
    runner = Runner(cfg, on_event=notifier.submit, health_extras=[("notify", notifier.status, notifier)])
    digest = DigestScheduler(cfg, notifier.submit) if cfg.notify else None

    async def main():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        reloads: set[asyncio.Task] = set()

        async def reload():
            try:
                new = load_site(config_path)
            except MierukaError as e:
                log.error("reload refused, still running the previous config: %s", e)
                return
            await runner.reload(new)

        def on_hup():
            t = loop.create_task(reload())
            reloads.add(t)
            t.add_done_callback(reloads.discard)

        loop.add_signal_handler(signal.SIGHUP, on_hup)
        return await runner.run(duration_s=duration, stop=stop)

    from ..runlock import collector_lock
    with collector_lock(cfg.data_dir):     # one collector per data directory (restore checks it too)
        notifier.start()
        if digest is not None:
            digest.start()
        try:
            stats = asyncio.run(main())
        finally:
            if digest is not None:
                digest.stop()
            notifier.close()
    if not quiet:
        _summary(runner, stats)
    return 0


def _summary(runner, stats) -> None:
    con = console(stderr=False)
    t = Table("channel", "readings", "ok", "problems", title=f"collected {stats.written} readings")
    for ch, c in sorted(stats.by_channel.items()):
        bad = ", ".join(f"{k} {n}" for k, n in sorted(c.items()) if k != "ok")
        t.add_row(ch, str(sum(c.values())), str(c.get("ok", 0)), bad or "-")
    con.print(t)
    devs = runner.device_stats()
    rows = [d for d in devs.values() if d.errors or d.missed_slots or d.bad_fields]
    if rows:
        p = Table("device", "polls", "ok polls", "missed slots", "errors", "flagged fields", title="device problems")
        for d in rows:
            p.add_row(d.device, str(d.polls), str(d.ok_polls), str(d.missed_slots),
                      ", ".join(f"{k} {n}" for k, n in sorted(d.errors.items())) or "-",
                      ", ".join(f"{k} (exception {c})" for k, c in d.bad_fields.items()) or "-")
        con.print(p)
    if stats.left_in_buffer:
        con.print(f"{stats.left_in_buffer} readings stay in the buffer "
                  f"({runner.pipeline.buffer.dir}); the next start forwards them to the store", style="yellow", soft_wrap=True)
    if stats.dropped_unbuffered:
        con.print(f"{stats.dropped_unbuffered} readings were dropped: the disk refused them for longer "
                  f"than [collector] max_unbuffered allows", style="red", soft_wrap=True)
    if stats.pending:
        con.print(f"{stats.pending} readings could not be written to the buffer (disk full?) "
                  f"and are lost", style="red", soft_wrap=True)
