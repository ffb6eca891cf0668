"""`mieruka check`: validate a site config and summarise it."""
from __future__ import annotations

import click
from rich.table import Table

from ..calendar import SiteCalendar
from . import console
from ..site import load_site


@click.command("check")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), help="Site config (TOML).")
def command(config_path: str) -> int:
    """Validate a site config (env variables expanded) and print its meters and channels.

    Checks everything `collect` checks before it polls (the same function: register
    maps and fields, read plans, MQTT brokers, TLS files, subscriptions and output,
    the [collector] options), and the [simulation] and [api] sections; connects to
    nothing.  A problem: one line naming file and key, exit code 2."""
    cfg = load_site(config_path)
    _validate_owned_sections(cfg)
    con = console()
    con.print(cfg.site.name, style="bold", end="")
    con.print(f"  time zone {cfg.site.timezone}, holidays {SiteCalendar.from_config(cfg).holidays}, "
              f"store {cfg.storage.backend} at {cfg.data_dir}")
    t = Table("meter", "protocol", "address", "channel", "quantity", "tags")
    for m, c in cfg.channels():
        addr = f"{m.host}:{m.port}#{m.unit_id}" if m.protocol in ("modbus_tcp", "rtu_over_tcp") else (m.serial_port or m.topic or "")
        tags = ", ".join(f"{k}={v}" for k, v in (("breaker", c.breaker), ("process", c.process),
                                                   ("equipment", c.equipment), ("system", c.system)) if v)
        t.add_row(m.id, m.protocol, addr, c.id, c.quantity, tags)
    con.print(t)
    d = cfg.demand
    con.print(f"demand: {d.period_min}-minute periods, channel {d.channel or '(the site total)'}, contract "
              f"{d.contract_kw or '-'} kW, target {d.target_kw or '-'} kW, stages "
              f"{', '.join(f'{x:.0%}' for x in d.alarm_stages)}", highlight=False)
    if cfg.bill is not None:
        b = cfg.bill
        con.print(f"bill: 基本料金 {b.basic_jpy_per_kw:,.2f} JPY/kW, {len(b.energy_rates) or 'flat'} energy rate(s), "
                  f"燃料費調整 {len(b.fuel_adjustment_jpy_per_kwh)} month(s), 再エネ賦課金 FY "
                  f"{', '.join(sorted(b.renewable_levy_jpy_per_kwh)) or '-'}, 力率 "
                  f"{b.power_factor_channel or f'{b.power_factor_pct:g} % (configured)'}", highlight=False)
    for i, n in enumerate(cfg.notify):
        # a webhook URL's path is its secret (Slack, Teams, Discord): only the host is shown
        where = "/".join(n.url.split("/")[:3]) + "/…" if n.type == "webhook" else f"{n.host}:{n.port}"
        con.print(f"notify[{i}]: {n.type} {n.name or ''} {where} events "
                  f"{', '.join(n.events) if len(n.events) < 8 else 'all'} (min {n.min_severity})", highlight=False)
    if cfg.notify:
        # templates render, password variables are set: the notifier's own checks (no message is sent)
        from ..service.notify import Notifier
        Notifier(cfg).close(0)
    con.print("config OK")
    return 0


def _validate_owned_sections(cfg) -> None:
    """The tables other parts own are validated by their own code; `check` runs
    them all so that one command finds every error: `collect`'s own preparation
    (collector.runner.prepare: [collector], [[meters]] with their register maps,
    [mqtt]), `serve`'s CO2 inputs ([co2] factor files, bills file) and the
    simulator's [simulation]."""
    from ..collector.runner import check_collect_config
    from ..simulators.site_link import simulation_section
    from .serve import check_co2_inputs
    check_collect_config(cfg)
    check_co2_inputs(cfg)          # what `serve` and `replay` check at start: factor files, bills
    if simulation_section(cfg).scenario:     # the scenario file `simulate` will load, read now
        from ..errors import ConfigError
        from ..simulators.site_link import scenario_for_site
        try:
            scenario_for_site(cfg)
        except ConfigError as e:
            raise ConfigError(f"{cfg.source}: simulation.scenario: {e}") from None
