"""`mieruka backup`: a consistent copy of the store, the buffer and the config while
collecting runs (see mieruka.backup)."""
from __future__ import annotations

import click


@click.command("backup")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), help="Site config (TOML).")
@click.option("-o", "--output", "out", required=True, type=click.Path(),
              help="Archive to write (.tar.gz); written under a temporary name and renamed when complete.")
def command(config_path: str, out: str) -> int:
    """Back up the embedded store, the collector's buffer and the config folder into one
    archive with a manifest and sha256 sums.  Safe while `collect` runs (SQLite online
    backup); the archive is mode 0600 because it holds tokens and secrets."""
    from pathlib import Path

    from ..backup import BackupError, backup
    from ..site import load_site
    cfg = load_site(config_path)
    if not Path(out).parent.resolve().is_dir():
        raise BackupError(f"{out}: no such folder {Path(out).parent}")
    if Path(out).exists() and not Path(out).is_file():      # never rename over a device or a folder
        raise BackupError(f"{out}: exists and is not a regular file")
    import sys

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
    bar = Progress(TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn(),
                   console=Console(stderr=True), transient=True, disable=not sys.stderr.isatty())
    tasks: dict[str, int] = {}

    def progress(done: int, total: int, what: str) -> None:
        if what not in tasks:
            tasks[what] = bar.add_task(what, total=total)
        bar.update(tasks[what], completed=done, total=total)

    try:
        with bar:
            s = backup(cfg, Path(out), progress=progress)
    except OSError as e:        # disk full, permissions: one line naming the file
        raise BackupError(f"{e.filename or out}: {e.strerror or e}") from None
    click.echo(f"wrote {s.path} ({s.bytes / 1e6:.1f} MB, {s.files} files; store {s.store_bytes / 1e6:.1f} MB"
               + ("; buffer included" if s.readings_pending_in_buffer else "") + ")")
    for what in s.not_included:
        click.echo(f"warning: not in the backup: {what}", err=True)
    return 0
