"""`mieruka export`: readings from the store as a recording (format v1)."""
from __future__ import annotations

import sys
from pathlib import Path

import click
import numpy as np

from ..errors import InputError
from ..models import ReadingBatch
from ..quantities import QUANTITIES
from ..site import load_site
from ..store.base import continuous_counter


@click.command("export")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), help="Site config (TOML).")
@click.option("--start", default=None, metavar="T", help="ISO 8601 start (inclusive); without offset: site time.")
@click.option("--end", default=None, metavar="T", help="ISO 8601 end (exclusive); without offset: site time.")
@click.option("--format", "fmt", type=click.Choice(["csv"]), default="csv", show_default=True)
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False), default=None,
              help="Output file (default: standard output).")
@click.option("--channel", "channels", multiple=True, help="Only these channels (repeatable).")
@click.option("--raw-counters", is_flag=True,
              help="Write energy/volume counters as read (default: continuous, no steps down at wraps and resets).")
def command(config_path: str, start: str | None, end: str | None, fmt: str, out: str | None,
            channels: tuple[str, ...], raw_counters: bool) -> int:
    """Write readings from the store as a recording (CSV, format v1), times in the site zone.

    Counter channels (energy_kwh, air_volume_m3) are written as continuous counters unless
    --raw-counters: consumption is then the difference of two rows, even across a meter's
    counter wrap or reset."""
    from ..recording import write_recording
    from ..store.base import open_store, parse_time, to_datetime64

    if out is not None:
        from ..outputs import check_output
        check_output(out, "-o")
    cfg = load_site(config_path)
    tz = cfg.tz
    try:
        t0 = to_datetime64(parse_time(start, tz)) if start else None
        t1 = to_datetime64(parse_time(end, tz)) if end else None
    except ValueError as e:
        raise InputError(f"--start/--end: {e}") from None
    if t0 is not None and t1 is not None and t1 <= t0:
        raise InputError(f"--end {end} is not after --start {start}")
    store = open_store(cfg, readonly=True)
    try:
        infos = {i.id: i for i in store.channels() if i.quantity in QUANTITIES}
        if channels:
            missing = [c for c in channels if c not in infos]
            if missing:
                raise InputError(f"--channel {missing[0]}: not in the store (it has: {', '.join(infos) or 'nothing'})")
            infos = {c: infos[c] for c in channels}
        parts = []
        from rich.console import Console
        from rich.progress import track
        progress = track(infos.items(), description="reading the store", console=Console(stderr=True),
                         disable=out is None or len(infos) < 2, transient=True)
        for cid, info in progress:
            t, v, q = store.read_quality(cid, t0, t1)
            if not raw_counters and QUANTITIES[info.quantity].counter:
                v = continuous_counter(t, v, *store.counter_offsets(cid))   # every quality, offsets undone
            parts.append(ReadingBatch(t, np.full(len(t), cid, object), v, q))
        batch = ReadingBatch.concat(parts)
    finally:
        store.close()
    if out is None:
        import shutil
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "export.csv"
            write_recording(p, batch, infos, tz=cfg.site.timezone)
            sys.stdout.flush()
            with open(p, "rb") as f:
                shutil.copyfileobj(f, sys.stdout.buffer)
    else:
        n = write_recording(out, batch, infos, tz=cfg.site.timezone)
        click.echo(f"wrote {n} readings of {len(infos)} channels to {out}", err=True)
    return 0
