"""`mieruka serve`: the REST API, the HTML report and the dashboard on uvicorn."""
from __future__ import annotations

import logging
import re

import click


class _RedactSecrets(logging.Filter):
    """Belt and braces: uvicorn's access log prints the request line only (never
    headers), and the dashboard keeps its token in the URL fragment, which
    browsers never send; still, a `token=`/`access_token=` query parameter
    someone types by hand is masked before it reaches a log."""

    _pat = re.compile(r"((?:access_)?token=)[^&\s\"']+", re.I)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(self._pat.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = self._pat.sub(r"\1***", record.msg)
        return True


def install_log_redaction() -> None:
    for name in ("uvicorn.access", "uvicorn.error", "uvicorn", "mieruka"):
        logging.getLogger(name).addFilter(_RedactSecrets())


def check_co2_inputs(cfg, bills_path: str | None = None) -> str | None:
    """What `serve` checks at start and `check` too: the CO2 engine from the site's
    factor set and factor files, and the bills CSV (`--bills` or [co2] bills_file),
    read once so that a bad row stops with its line and field.  Returns the bills path."""
    from pathlib import Path

    from ..analytics.co2 import CO2Engine
    from ..analytics.co2.inputcsv import read_energy_csv
    engine = CO2Engine.from_site(cfg)
    if not bills_path and cfg.co2.bills_file is not None:   # the API's Context uses it
        bills_path = str(cfg.resolve_path(cfg.co2.bills_file))
        if not Path(bills_path).is_file():
            from ..errors import ConfigError
            what = "is a folder, not a bills file" if Path(bills_path).is_dir() else "no such file"
            raise ConfigError(f"{cfg.source}: co2.bills_file: {what}: {bills_path}")
    if bills_path:
        read_energy_csv(bills_path, engine)
    return bills_path


def token_block(tok: str, name: str | None, role: str, hash_fn, table: str = "api.tokens",
                expires=None) -> str:
    """The token on stderr (shown once; only its hash is kept) and, on stdout, a
    TOML block that goes under the site config (`[[api.tokens]]`) or into the
    `[api] tokens_file` (`[[tokens]]`) as it is; `mieruka check` accepts either."""
    import datetime as dt
    import json
    now = dt.datetime.now(dt.timezone.utc)
    name = name or f"token-{now:%Y%m%d-%H%M%S}"
    click.echo(f"token: {tok}\n(give it to its user; it is shown only now: the config keeps its sha256 only)",
               err=True)
    # JSON string escapes are valid TOML basic-string escapes: any name stays one valid string
    return "\n".join(["", f"# API token made {now:%Y-%m-%d %H:%M} UTC by `mieruka serve --hash-token`",
                      f"[[{table}]]", f"name = {json.dumps(name, ensure_ascii=False)}",
                      f'role = "{role}"', f'sha256 = "{hash_fn(tok)}"']
                     + ([f"expires = {expires.isoformat()}"] if expires else []))


@click.command("serve")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="Site config (TOML).")
@click.option("--host", default=None, help="Address to listen on (default: [api] host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Port (default: [api] port, 8080).")
@click.option("--hash-token", "hash_token", is_flag=True,
              help="Make a new random token: print it (stderr) and the [[api.tokens]] TOML block to add "
                   "to the site config (stdout: `>> site.toml` works), then exit.")
@click.option("--token-name", default=None, metavar="NAME",
              help="With --hash-token: the token's name in the config (default: token-<UTC time>).")
@click.option("--role", "token_role", type=click.Choice(["read", "admin"]), default="read", show_default=True,
              help="With --hash-token: the token's role.")
@click.option("--expires", "token_expires", type=click.DateTime(["%Y-%m-%d"]), default=None, metavar="YYYY-MM-DD",
              help="With --hash-token: the last day the token is valid (site time); afterwards it is refused (401).")
@click.option("--for-tokens-file", is_flag=True,
              help="With --hash-token: print a [[tokens]] block for the [api] tokens_file instead of [[api.tokens]] "
                   "for the site config.")
@click.option("--bills", "bills_path", type=click.Path(dir_okay=False, exists=True),
              help="CSV of bills (the `mieruka co2` format) added to the CO2 sheet; a bill replaces the metered month "
                   "(default: [co2] bills_file).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Server processes (one per core helps under load; each keeps its own cache and rate buckets).")
@click.option("--no-access-log", is_flag=True, help="Do not log each request.")
def command(config_path: str | None, host: str | None, port: int | None, hash_token: bool, token_name: str | None,
            token_role: str, token_expires, for_tokens_file: bool, bills_path: str | None, workers: int, no_access_log: bool) -> int:
    """Serve the REST API (/api/v1, /openapi.json, /docs), the report and the dashboard.

    Tokens: `mieruka serve --hash-token` prints a new token and its hash; put the
    hash in the config under [[api.tokens]] (role "read" or "admin") and give the
    token to its user. MIERUKA_API_TOKEN grants one read-only token for quick starts.
    """
    from pathlib import Path

    from ..api.auth import hash_token as _hash, new_token
    if hash_token:
        click.echo(token_block(new_token(), token_name, token_role, _hash,
                               table="tokens" if for_tokens_file else "api.tokens",
                               expires=token_expires.date() if token_expires else None))
        return 0
    if not config_path:
        raise click.UsageError("--config is required")
    import uvicorn

    from ..api.app import create_app
    from ..site import load_site
    cfg = load_site(config_path)
    h, p = host or cfg.api.host, port if port is not None else cfg.api.port
    _check_listen(h, p)          # before the store is opened and the app built
    bills_path = check_co2_inputs(cfg, bills_path)
    app = create_app(cfg, bills_path=Path(bills_path) if bills_path else None)
    if not app.state.auth.configured:
        click.echo("warning: no API token configured ([[api.tokens]] or MIERUKA_API_TOKEN): "
                   "every /api/v1 request will get 401", err=True)
    install_log_redaction()
    click.echo(f"mieruka API on http://{h}:{p}/ (dashboard: /dashboard#token=..., docs: /docs)", err=True)
    if workers > 1:
        import os
        os.environ["MIERUKA_SERVE_CONFIG"] = str(Path(config_path).resolve())
        if bills_path:
            os.environ["MIERUKA_SERVE_BILLS"] = str(Path(bills_path).resolve())
        app.state.ctx.store.close()
        # the workers are new processes: they get the redaction filter through this log config
        uvicorn.run("mieruka.api.app:app_from_env", factory=True, workers=workers, host=h, port=p,
                    access_log=not no_access_log, log_level="info", server_header=False,
                    log_config=_log_config())
        return 0
    uvicorn.run(app, host=h, port=p, access_log=not no_access_log, log_level="info", server_header=False)
    return 0


def _log_config() -> dict:
    import copy

    from uvicorn.config import LOGGING_CONFIG
    cfg = copy.deepcopy(LOGGING_CONFIG)
    cfg.setdefault("filters", {})["redact"] = {"()": "mieruka.commands.serve._RedactSecrets"}
    for h in cfg["handlers"].values():
        h.setdefault("filters", []).append("redact")
    return cfg


def _check_listen(host: str, port: int) -> None:
    """Fail at once, in one line, when the address cannot be listened on (not this
    machine's, or the port taken): uvicorn would log it and exit with code 3."""
    import socket

    from ..errors import InputError
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise InputError(f"--host {host}: {e.strerror or e}") from None
    family, _, _, _, addr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)     # as uvicorn does: TIME_WAIT is no obstacle
        try:
            s.bind(addr)
        except OSError as e:
            raise InputError(f"--host/--port {host}:{port}: cannot listen there: {e.strerror or e}") from None
