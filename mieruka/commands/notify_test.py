"""`mieruka notify-test`: send one test event to every `[[notify]]` target."""
from __future__ import annotations

import sys

import click

from . import FiniteFloat
from ..site import load_site


@click.command("notify-test")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), help="Site config (TOML).")
@click.option("--retry-for", type=FiniteFloat(min=0, max=3600), default=10.0, show_default=True, metavar="S",
              help="Retry a failing target with back-off for S seconds.")
def command(config_path: str, retry_for: float) -> int:
    """Send one test event (the same payload as a real alarm, event "test") to every
    [[notify]] target of the site config, and say per target whether it arrived.
    Exit 0 when every target took it, 1 when one failed (2: config error, or no targets)."""
    from ..service.notify import Notifier, test_event

    cfg = load_site(config_path)
    if not cfg.notify:
        from ..errors import ConfigError      # nothing to test is a config problem (exit 2), not a failed send
        raise ConfigError(f"{config_path}: no [[notify]] targets configured (see docs/alarms.md)")
    n = Notifier(cfg)
    try:
        res = n.send_now(test_event(cfg), retry_for_s=retry_for)
    finally:
        n.close(0)
    for name, err in res.items():
        click.echo(f"{name}: {'ok' if err is None else 'FAILED: ' + err}")
    sys.exit(0 if all(e is None for e in res.values()) else 1)
