"""`mieruka import`: logger and spreadsheet exports into a recording (format v1)."""
from __future__ import annotations

import click


@click.command("import")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--mapping", "mapping_path", type=click.Path(dir_okay=False),
              help="Mapping file (TOML): time column and zone, one [[columns]] per channel. See docs/replay.md.")
@click.option("-o", "--output", "out_path", type=click.Path(dir_okay=False),
              help="The recording to write (CSV, format v1); written atomically.")
@click.option("--guess", is_flag=True, help="Print a starter mapping for FILE (encoding, header rows, time format, "
              "units from the column names) to check and edit.")
def command(files: tuple[str, ...], mapping_path: str | None, out_path: str | None, guess: bool) -> int:
    """Turn logger or spreadsheet exports (CSV/TSV in UTF-8 or Shift_JIS, .xlsx) into one recording.

    \b
    mieruka import --guess logger_day1.csv > mapping.toml      # then check and edit it
    mieruka import logger_day*.csv --mapping mapping.toml -o recording.csv
    mieruka replay recording.csv --config site.toml --report report.html

    Several files of one logger are put in time order; rows that overlap must agree.
    """
    if not files:
        raise click.UsageError("give the export file(s) to import")
    if guess:
        from ..importer import guess_mapping
        if len(files) != 1:
            raise click.UsageError("--guess reads one file")
        click.echo(guess_mapping(files[0]), nl=False)
        return 0
    if not mapping_path or not out_path:
        raise click.UsageError("give --mapping MAP.toml and -o RECORDING.csv (or --guess)")
    from ..importer import import_to_recording
    with _progress(files) as tick:
        res = import_to_recording(list(files), mapping_path, out_path, progress=tick)
    report(res, out_path)
    return 0


def _progress(files):
    """A progress bar on stderr for large inputs on a terminal; yields the tick callback (or None)."""
    import contextlib
    import os
    import sys

    total = sum(os.path.getsize(f) for f in files if os.path.isfile(f))
    if not sys.stderr.isatty() or total < (32 << 20):
        return contextlib.nullcontext(None)

    @contextlib.contextmanager
    def bar():
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
        with Progress(TextColumn("import"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                      TimeRemainingColumn(), console=Console(stderr=True), transient=True) as p:
            task = p.add_task("import", total=1.0)
            yield lambda f: p.update(task, completed=f)
    return bar()


def report(res, out_path: str | None = None) -> None:
    """What was imported, what was decided and what was left out, on stderr."""
    import numpy as np
    for w in res.warnings:
        click.echo(f"warning: {w}", err=True)
    for n in res.notes:
        click.echo(f"note: {n}", err=True)
    for cid, c in res.channels.items():
        bad = int((c.quality != 0).sum())
        span = ""
        if len(c.time_ms):
            t0 = np.datetime64(int(c.time_ms[0]), "ms").astype("datetime64[s]")
            t1 = np.datetime64(int(c.time_ms[-1]), "ms").astype("datetime64[s]")
            span = f" {t0}Z .. {t1}Z"
        click.echo(f"  {cid} ({c.info.quantity}): {len(c.time_ms):,} readings{span}"
                   f"{f', {bad:,} missing (quality error)' if bad else ''}", err=True)
    where = f" -> {out_path}" if out_path else ""
    click.echo(f"imported {res.rows:,} readings of {len(res.channels)} channel(s) from {len(res.files)} file(s){where}",
               err=True)
    if out_path:      # the audit trail: what went in, and the hash `replay` will state for what came out
        from ..recording import file_sha256
        for t in res.files:
            click.echo(f"  input  {file_sha256(t.path)}  {t.where()} ({t.encoding})", err=True)
        click.echo(f"  output {file_sha256(out_path)}  {out_path}", err=True)


def on_the_fly(files: tuple[str, ...], mapping_path: str | None, stack) -> str:
    """For `replay`/`analyze --mapping`: import FILES into a recording in a temporary
    directory (removed when `stack`, a contextlib.ExitStack, closes); return its path.
    Without --mapping, FILES must be one recording."""
    if not files:
        raise click.UsageError("give a recording (or export files with --mapping)")
    if mapping_path is None:
        if len(files) > 1:
            raise click.UsageError("several files need --mapping (they are logger exports to import)")
        return files[0]
    import tempfile
    from pathlib import Path

    from ..importer import import_to_recording
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mieruka-import-")))
    out = tmp / f"{Path(files[0]).stem}.recording.csv"
    with _progress(files) as tick:
        res = import_to_recording(list(files), mapping_path, out, progress=tick)
    report(res, None)
    return str(out)
