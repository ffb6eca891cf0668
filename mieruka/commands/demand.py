"""`mieruka demand`: 30-minute demand, monthly maxima, 契約電力 and the top peaks."""
from __future__ import annotations

import json
from pathlib import Path

import click

from . import POSITIVE
from ..errors import InputError


def _zone_of_recording(recording: str, tz: str, asked: str | None, warnings: list[str]) -> str:
    """The zone to use for a recording: with --timezone auto the one its UTC offsets
    fit; otherwise `tz`, with a warning when the offsets do not fit it (periods, months
    and time bands would be hours off)."""
    from ..timezones import check_zone
    auto = bool(asked) and asked.lower() == "auto"
    ok, fitting = check_zone(recording, "UTC" if auto else tz)
    if auto:
        if fitting:
            warnings.append(f"{recording}: --timezone auto: the offsets fit {fitting[0]}; used")
            return fitting[0]
        default = "Asia/Tokyo"
        warnings.append(f"{recording}: --timezone auto: the time stamps say nothing about the zone; {default} used")
        return default
    if not ok:
        warnings.append(f"{recording}: the UTC offsets of its time stamps do not fit {tz}; they suggest "
                        f"{fitting[0] if fitting else 'another zone'} (demand: --timezone auto or ZONE; "
                        f"a site config: [site] timezone)")
    return tz


def load_demand_inputs(recording, config_path, start, end, timezone, warnings: list[str] | None = None):
    """(channels, cfg or None, tz name, start_ms, end_ms) from a recording or the store;
    `warnings` gets what to tell once the figures stand (a bad input stays one line)."""
    from ..site import load_site
    from ..store.base import parse_time

    if recording is None and not config_path:
        raise click.UsageError("give a RECORDING file, or --config with --start/--end to use the store")
    cfg = load_site(config_path) if config_path else None
    tz = timezone or (cfg.site.timezone if cfg is not None else "Asia/Tokyo")
    if recording is not None and Path(recording).is_file():
        tz = _zone_of_recording(recording, tz, timezone, warnings if warnings is not None else [])
    import zoneinfo
    try:
        z = zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InputError(f"--timezone: unknown time zone {tz!r} (e.g. Asia/Tokyo)") from None
    try:
        t0 = parse_time(start, z) if start else None
        t1 = parse_time(end, z) if end else None
    except ValueError as e:
        raise InputError(f"--start/--end: {e}") from None
    if t0 and t1 and t1 <= t0:
        raise InputError("--end must be after --start")
    s_ms = int(t0.timestamp() * 1000) if t0 else None
    e_ms = int(t1.timestamp() * 1000) if t1 else None
    if recording is not None:
        from ..recording import read_recording
        rec = read_recording(recording)
        if not rec.channels:
            raise InputError(f"{recording}: the recording has no readings")
        chans = dict(rec.channels)
        if cfg is not None:         # the config may tag the channels (equipment_kind, meter)
            conf = cfg.channel_infos()
            for cid, c in chans.items():
                if cid in conf:
                    c.info.equipment_kind = c.info.equipment_kind or conf[cid].equipment_kind
                    c.info.meter = c.info.meter or conf[cid].meter
    else:
        if not (start and end):
            raise click.UsageError("the store needs --start and --end")
        from ..service.context import channel_infos
        from ..service.demand import store_channels
        from ..store.base import open_store
        store = open_store(cfg, readonly=True)
        try:
            chans = store_channels(store, channel_infos(cfg, store), t0, t1)
        finally:
            store.close()
    return chans, cfg, tz, s_ms, e_ms


@click.command("demand")
@click.argument("recording", required=False, type=click.Path(dir_okay=False))
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Site config: [demand] (channel, period, contract, target), [bill]; without RECORDING, its store.")
@click.option("--start", help="Start (ISO 8601; site time without an offset).")
@click.option("--end", help="End, exclusive (ISO 8601).")
@click.option("--channel", help="Incomer channel (default: [demand] channel, else the site-total channel).")
@click.option("--period-min", type=click.IntRange(1, 1440), help="Demand period in minutes (default 30).")
@click.option("--contract-kw", type=POSITIVE, help="契約電力 on the current bill.")
@click.option("--target-kw", type=POSITIVE, help="Demand target (目標電力).")
@click.option("--timezone", help="Site time zone (default: the config's, else Asia/Tokyo); 'auto': the zone "
                                 "the recording's UTC offsets fit.")
@click.option("--top", type=click.IntRange(1, 1000), help="How many peaks to list (default 10).")
@click.option("--json", "as_json", is_flag=True, help='Print {"channel", "period_min", "timezone", "periods", '
              '"monthly", "peaks", "summary"}.')
def command(recording, config_path, start, end, channel, period_min, contract_kw, target_kw, timezone, top,
            as_json) -> int:
    """30-minute demand (デマンド), monthly maxima, 契約電力 (12 months) and the top peaks.

    \b
    mieruka demand RECORDING.csv [--channel main] [--json]
    mieruka demand --config site.toml --start 2026-04-01 --end 2026-05-01
    """
    from ..analytics.demand_result import DemandInputError, DemandSettings, compute_demand

    if period_min is not None and 1440 % period_min:
        raise InputError(f"--period-min {period_min}: use a divisor of a day (e.g. 15, 30, 60)")
    warnings: list[str] = []
    chans, cfg, tz, s_ms, e_ms = load_demand_inputs(recording, config_path, start, end, timezone, warnings)
    settings = DemandSettings.from_site(cfg, channel=channel, period_min=period_min, contract_kw=contract_kw,
                                        target_kw=target_kw, top_peaks=top, start_ms=s_ms, end_ms=e_ms)
    try:
        comp = compute_demand(chans, tz, settings, cfg.bill if cfg is not None else None)
    except DemandInputError as e:
        raise InputError(f"{recording or config_path}: {e}") from None
    for w in warnings:
        click.echo(f"warning: {w}", err=True)
    if as_json:
        click.echo(json.dumps(comp.result, ensure_ascii=False))
        return 0
    print_demand(comp.result, (cfg.site.language if cfg is not None else "ja"))
    return 0


def print_demand(res: dict, lang: str = "ja") -> None:
    from . import console
    from rich.table import Table

    con = console()
    if not con.is_terminal:
        con = console(width=110)
    s = res["summary"]

    def f(x, nd=1):
        return "-" if x is None else f"{x:,.{nd}f}"

    con.print("mieruka demand", style="bold", end="")
    con.print(f"  channel {res['channel']} ({s['source']}), {res['period_min']}-minute "
              f"periods, {res['timezone']}; {s['complete_periods']:,} of {s['periods']:,} periods fully measured")
    con.print(f"highest demand {f(s['max_kw'])} kW at {s['at'] or '-'}; contract {f(s['contract_kw'])} kW; "
              f"target {f(s['target_kw'])} kW: {s['periods_over_target']} periods over target, "
              f"{s['periods_over_contract']} over contract")
    m = Table("month", "max kW", "at", "契約電力 kW (12 months)", title="Monthly maxima (月間最大デマンド)")
    for r in res["monthly"]:
        m.add_row(r["month"], f(r["max_kw"]), r["at"] or "-", f(r["contract_kw_12m"]))
    con.print(m)
    p = Table("#", "start", "kW", "what ran (share of the period's energy)", title="Top peaks")
    for i, r in enumerate(res["peaks"], 1):
        ran = ", ".join(f"{k} {v:.0%}" for k, v in list(r["shares"].items())[:5]) or "-"
        rest = 1.0 - sum(r["shares"].values())
        if r["shares"] and rest >= 0.05:
            ran += f"; unmetered {rest:.0%}"
        p.add_row(str(i), r["start"], f(r["kw"]), ran)
    con.print(p)
    if "new_peak" in s:
        con.print(s["new_peak"]["text_ja" if lang == "ja" else "text_en"])
    cut = s.get("peak_cut")
    if cut and cut.get("cut_kw"):
        movable = ", ".join(f"{k} {v:,.0f} kW" for k, v in list(cut["movable_kw"].items())[:4])
        extra = f", {cut['jpy_per_year']:,} JPY/year" if "jpy_per_year" in cut else ""
        con.print(f"peak cut: moving load out of {cut['periods']} periods takes the peak from {f(cut['from_kw'])} to "
                  f"{f(cut['to_kw'])} kW ({f(cut['cut_kw'])} kW{extra}); ran then: {movable or '-'}")
