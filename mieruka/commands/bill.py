"""`mieruka bill`: the monthly electricity bill estimated from metered demand."""
from __future__ import annotations

import json

import click

from ..errors import InputError


@click.command("bill")
@click.argument("recording", required=False, type=click.Path(dir_okay=False))
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="Site config with a [bill] section (and [demand]); without RECORDING, its store.")
@click.option("--start", help="Start (ISO 8601; site time without an offset).")
@click.option("--end", help="End, exclusive (ISO 8601).")
@click.option("--channel", help="Incomer channel (default: [demand] channel, else the site-total channel).")
@click.option("--json", "as_json", is_flag=True, help='Print {"months": [...], "channel", "timezone"}.')
def command(recording, config_path, start, end, channel, as_json) -> int:
    """Monthly bill estimate (高圧 実量制): 基本料金, 電力量料金, 燃料費調整額, 再エネ賦課金 and tax.

    \b
    mieruka bill RECORDING.csv --config site.toml [--json]
    mieruka bill --config site.toml --start 2026-04-01 --end 2026-07-01
    """
    from ..analytics.demand_result import DemandInputError, DemandSettings, compute_demand
    from ..service.demand import bills_for
    from .demand import load_demand_inputs

    warnings: list[str] = []
    chans, cfg, tz, s_ms, e_ms = load_demand_inputs(recording, config_path, start, end, None, warnings)
    if cfg.bill is None:
        raise InputError(f"{config_path}: bill: the site config has no [bill] section "
                         "(basic_jpy_per_kw, energy_rates, ...; see docs/demand.md)")
    settings = DemandSettings.from_site(cfg, channel=channel, start_ms=s_ms, end_ms=e_ms)
    try:
        comp = compute_demand(chans, tz, settings, cfg.bill)
    except DemandInputError as e:
        raise InputError(f"{recording or config_path}: {e}") from None
    pf = cfg.bill.power_factor_channel
    if pf and pf not in chans:
        raise InputError(f"{config_path}: bill.power_factor_channel: no readings of {pf!r}")
    import datetime as dt
    to_dt = (lambda ms: None if ms is None else dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc))
    bills = bills_for(cfg, comp, chans, to_dt(s_ms), to_dt(e_ms))
    if not bills:
        raise InputError(f"{recording or config_path}: no month with a fully measured demand period and no "
                         "[demand] contract_kw: the contract power is unknown")
    for w in warnings:            # after every refusal: a bad input stays one line
        click.echo(f"warning: {w}", err=True)
    out = {"channel": comp.channel, "timezone": tz, "months": [b.to_dict() for b in bills]}
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False))
        return 0
    _print(out)
    return 0


def _print(out: dict) -> None:
    from . import console
    from rich.table import Table

    con = console()
    if not con.is_terminal:
        con = console(width=130)
    t = Table("month", "契約電力 kW", "力率 %", "kWh", "基本料金", "電力量料金", "燃料費調整額", "再エネ賦課金",
              "消費税", "total JPY", title=f"Electricity bill estimate ({out['channel']}, {out['timezone']})")
    for b in out["months"]:
        t.add_row(b["month"], f"{b['contract_kw']:,.1f}", f"{b['power_factor_pct']:g}"
                  + ("" if b["power_factor_measured"] else " (cfg)"), f"{b['energy_kwh']:,.0f}",
                  f"{b['basic_jpy']:,}", f"{b['energy_jpy']:,}", f"{b['fuel_adjustment_jpy']:,}",
                  f"{b['renewable_levy_jpy']:,}", f"{b['tax_jpy']:,}", f"{b['total_jpy']:,}")
    con.print(t)
    for b in out["months"]:
        for n in b["notes"]:
            con.print(f"{b['month']}: {n}", highlight=False)
