"""`mieruka restore`: bring a `mieruka backup` archive back (see mieruka.backup)."""
from __future__ import annotations

import click


@click.command("restore")
@click.argument("archive", type=click.Path(dir_okay=False))
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="Where the site config goes (its folder receives the other config files); the restored "
                   "config's data_dir receives the store and buffer.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Put the store and buffer here instead of the restored config's data_dir.")
@click.option("--force", is_flag=True,
              help="Replace an existing store, buffer or differing config files (they are kept as "
                   "*.before-restore-<time>). Never overrides a running collector.")
def command(archive: str, config_path: str, data_dir: str | None, force: bool) -> int:
    """Restore a backup archive: every sha256 is checked before anything is touched; a
    running collector on the target data directory makes it refuse (stop the service first)."""
    from pathlib import Path

    from ..backup import BackupError, restore
    try:
        s = restore(Path(archive), Path(config_path), force=force, data_dir=Path(data_dir) if data_dir else None)
    except OSError as e:        # disk full, permissions: one line naming the file
        raise BackupError(f"{e.filename or archive}: {e.strerror or e}") from None
    click.echo(f"restored {s.files} files: config {s.config}, data {s.data_dir}")
    for p in s.kept_aside:
        click.echo(f"  kept the replaced {p}")
    return 0
