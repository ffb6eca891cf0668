"""`mieruka backup`: a consistent copy of the store, the buffer and the config while
collecting runs (see mieruka.backup)."""
from __future__ import annotations

import click


@click.command("backup")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), help="Site config (TOML).")
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False, writable=True),
              help="Archive to write (.tar.gz); written under a temporary name and renamed when complete.")
def command(config_path: str, out: str) -> int:
    """Back up the embedded store, the collector's buffer and the config folder into one
    archive with a manifest and sha256 sums.  Safe while `collect` runs (SQLite online
    backup); the archive is mode 0600 because it holds tokens and secrets."""
    from pathlib import Path

    from ..backup import backup
    from ..site import load_site
    s = backup(load_site(config_path), Path(out))
    click.echo(f"wrote {s.path} ({s.bytes / 1e6:.1f} MB, {s.files} files; store {s.store_bytes / 1e6:.1f} MB"
               + ("; buffer included" if s.readings_pending_in_buffer else "") + ")")
    for what in s.not_included:
        click.echo(f"warning: not in the backup: {what}", err=True)
    return 0
