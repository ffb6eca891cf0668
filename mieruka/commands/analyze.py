"""`mieruka analyze`: findings in kWh, yen and t-CO2 from a recording or the store."""
from __future__ import annotations

import datetime as dt
import sys
import zoneinfo
from pathlib import Path

import click

from ..errors import InputError


def _calendar(cfg, timezone: str | None, holidays: str | None, shift: str | None):
    from ..calendar import SiteCalendar, parse_shift_spec
    from ..site import CalendarSection

    cal = SiteCalendar.from_config(cfg) if cfg is not None else SiteCalendar.from_section(CalendarSection())
    if timezone and timezone.lower() != "auto":
        try:
            zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise InputError(f"--timezone: unknown time zone {timezone!r} (e.g. Asia/Tokyo)") from None
        cal.timezone = timezone
        cal.__dict__.pop("tz", None)
    if holidays:
        if holidays.lower() != "none":
            import holidays as hol
            try:
                hol.country_holidays(holidays.upper())
            except NotImplementedError:
                raise InputError(f"--holidays: no holiday calendar for country {holidays!r} (e.g. JP, KR, none)") \
                    from None
        cal.holidays_country = holidays.upper() if holidays.lower() != "none" else "none"
    if shift:
        try:
            cal.shifts = parse_shift_spec(shift)
            cal.shifts_configured = True
        except ValueError as e:
            raise InputError(f"--shift: {str(e).splitlines()[0]}") from None
        cal.__dict__.pop("_shift_tables", None)
    return cal


def _engine(cfg):
    from ..analytics.co2 import CO2Engine
    from ..site import TariffsSection

    if cfg is not None:
        return CO2Engine.from_site(cfg)
    return CO2Engine(tariffs=TariffsSection())      # default flat tariff (25 JPY/kWh) unless --tariff-jpy-per-kwh


def _progress(enabled: bool):
    """A rich progress line on stderr (TTY only); returns (context manager, tick)."""
    import contextlib
    if not enabled:
        return contextlib.nullcontext(), None
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    prog = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                    console=Console(stderr=True), transient=True)
    task = prog.add_task("analysing", total=None)
    from rich.markup import escape
    return prog, lambda msg: prog.update(task, description=f"analysing: {escape(str(msg))}")


@click.command("analyze")
@click.argument("recordings", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--mapping", "mapping_path", type=click.Path(dir_okay=False),
              help="RECORDING is one or more logger/spreadsheet exports: import them with this mapping first.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="Site config (TOML): calendar, "
              "tariffs, contracts; without RECORDING, analyse its store.")
@click.option("--start", help="Start (ISO 8601, site time if no offset); with --config and no RECORDING.")
@click.option("--end", help="End, exclusive (ISO 8601).")
@click.option("--timezone", help="Site time zone (default Asia/Tokyo or the config's); 'auto': the zone the "
              "recording's UTC offsets fit.")
@click.option("--weather", "weather_path", type=click.Path(dir_okay=False), help="Outdoor temperature CSV "
              "(columns time,temperature_c): weather-normalised baselines.")
@click.option("--holidays", help="National holidays country code (JP, KR, ...; 'none'); "
                                 "default: the country of the site's time zone.")
@click.option("--shift", help='Production shifts, e.g. "mon-fri 08:00-12:00,13:00-17:00; sat 08:00-12:00".')
@click.option("--tariff-jpy-per-kwh", type=float, help="Flat electricity price (default: the config's tariffs, "
              "or 25 JPY/kWh).")
@click.option("--lang", type=click.Choice(["ja", "en"]), help="Explanation language (default: the config's, or ja).")
@click.option("--json", "as_json", is_flag=True, help='Print {"findings": [...], "plan": [...], "summary": {...}}.')
def command(recordings, mapping_path, config_path, start, end, timezone, weather_path, holidays, shift,
            tariff_jpy_per_kwh, lang, as_json) -> int:
    """Find standby waste, air leaks, baseline gaps and compressor profiles, ranked by yen.

    \b
    mieruka analyze RECORDING.csv [--holidays JP --shift "mon-fri 08:00-17:00"] [--json]
    mieruka analyze RECORDING.csv --weather temperature.csv --timezone auto
    mieruka analyze --config site.toml --start 2026-04-01 --end 2026-05-01
    mieruka analyze logger_*.csv --mapping mapping.toml       # exports imported on the fly
    """
    import contextlib

    from .import_ import on_the_fly
    with contextlib.ExitStack() as stack:
        recording = on_the_fly(recordings, mapping_path, stack) if recordings or mapping_path else None
        if mapping_path and not timezone and not config_path:
            from ..importer import load_mapping
            zone = load_mapping(mapping_path).time.zone       # the exports' own site zone, unless told otherwise
            timezone = zone if "/" in zone else None
        return _command(recording, config_path, start, end, timezone, weather_path, holidays, shift,
                        tariff_jpy_per_kwh, lang, as_json)


def _command(recording, config_path, start, end, timezone, weather_path, holidays, shift, tariff_jpy_per_kwh, lang,
             as_json) -> int:
    from ..analytics.pipeline import analyze, analyze_store, params_for_site
    from ..site import load_site
    from ..store.base import parse_time

    if recording is None and not config_path:
        raise click.UsageError("give a RECORDING file, or --config with --start/--end to analyse the store")
    if tariff_jpy_per_kwh is not None and not 0 <= tariff_jpy_per_kwh < float("inf"):
        raise InputError("--tariff-jpy-per-kwh must be a finite number >= 0")
    cfg = load_site(config_path) if config_path else None
    cal = _calendar(cfg, timezone, holidays, shift)
    warnings = _zone_check(recording, cal, timezone) if recording is not None else []
    extra = {}
    if weather_path:
        from ..weather_file import read_weather
        w = read_weather(weather_path, cal.tz)
        extra[w.id] = w
    engine = _engine(cfg)
    params = params_for_site(cfg, language=lang, tariff_jpy_per_kwh=tariff_jpy_per_kwh)
    try:
        t0 = parse_time(start, cal.tz) if start else None
        t1 = parse_time(end, cal.tz) if end else None
    except ValueError as e:
        raise InputError(f"--start/--end: {e}") from None
    if t0 is not None and t1 is not None and t1 <= t0:
        raise InputError(f"--end {end} is not after --start {start}")
    ctx, tick = _progress(sys.stderr.isatty() and not as_json)
    with ctx:
        if recording is not None:
            from ..service.site_run import recording_channels
            chans = recording_channels([Path(recording)], cfg, t0, t1)   # the same as `fleet analyze`
            chans.update({k: v for k, v in extra.items() if k not in chans})
            result = analyze(chans, cal, engine, params, tick)
        else:
            if not (start and end):
                raise click.UsageError("analysing the store needs --start and --end")
            from ..store.base import open_store
            store = open_store(cfg, readonly=True)
            try:
                infos = store.channels()
                result = analyze_store(store, infos, cal, cfg, t0, t1, params, engine, tick, extra)
            finally:
                store.close()
    sh = result.summary.get("shifts_from_load")
    if sh and not as_json:
        how = f"read off the load: {sh['spec']}" if sh["inferred"] else \
            f"not read off the load ({sh['basis']}): the default shifts are used"
        click.echo(f"note: production hours {how}; give --shift or [calendar] shifts to state them", err=True)
    if warnings:
        result.summary["warnings"] = warnings
        for w in warnings:
            click.echo(f"warning: {w}", err=True)
    if as_json:
        click.echo(result.to_json(indent=None))
        return 0
    print_report(result, params.language)
    return 0


def _zone_check(recording: str, cal, timezone: str | None) -> list[str]:
    """Compare the recording's UTC offsets with the zone used; with --timezone auto,
    take the zone they fit.  Returns the warnings to show."""
    from ..timezones import check_zone

    if not Path(recording).is_file():
        return []
    used = cal.timezone
    ok, fitting = check_zone(recording, used)
    auto = bool(timezone) and timezone.lower() == "auto"
    if auto:
        if fitting and not ok:
            cal.timezone = fitting[0]
            cal.__dict__.pop("tz", None)
            return [f"{recording}: --timezone auto: the offsets fit {fitting[0]}"
                    + (f" (also {', '.join(fitting[1:])})" if len(fitting) > 1 else "") + "; analysed in it"]
        if not fitting:
            return [f"{recording}: --timezone auto: the time stamps are in UTC and say nothing about the site's "
                    f"zone; analysed in {used} (give --timezone)"]
        return []
    if ok:
        return []
    suggestion = fitting[0] if fitting else "another zone"
    return [f"{recording}: the UTC offsets of its time stamps do not fit {used}; they suggest {suggestion}"
            + (f" (or {', '.join(fitting[1:])})" if len(fitting) > 1 else "")
            + f": nights, shifts and days off are wrong unless you give --timezone {suggestion} (or auto)"]


def _when(f) -> str:
    """When a finding happened: its day(s), or its span; years shown when it spans
    years (a two-year recording's standby is not "01-01..01-01")."""
    first, last = f.metrics.get("date"), f.metrics.get("last_date")
    if first:
        return first if not last or last == first else f"{first}..{last}"
    end = f.end - dt.timedelta(milliseconds=1) if f.end > f.start else f.end
    if f.start.year != end.year:
        return f"{f.start:%Y-%m-%d}..{end:%Y-%m-%d}"
    return f"{f.start:%m-%d}..{end:%m-%d}"


def _fmt(x, nd=0) -> str:
    return "-" if x is None else f"{x:,.{nd}f}"


def print_report(result, lang: str = "ja") -> None:
    """Ranked findings and the savings plan as rich tables."""
    from rich.table import Table

    from . import console
    con = console()
    if not con.is_terminal:
        con = console(width=120)      # files and pipes: wide enough for the plan table
    s = result.summary
    per = s.get("period") or {}
    con.print("mieruka analyze", style="bold", end="")
    con.print(f"  {per.get('start', '?')} .. {per.get('end', '?')}  "
              f"({per.get('hours', 0) / 24:.1f} days); site {_fmt(s.get('site', {}).get('energy_kwh'))} kWh")
    gen = s.get("generation_kwh") or {}
    if gen:       # PV and other generation: not consumption, not analysed for waste
        con.print("generation (not counted as consumption): "
                  + ", ".join(f"{c} {_fmt(k)} kWh" for c, k in sorted(gen.items())), highlight=False)
    t = Table("#", "kind", "channel", "when", "kWh", "JPY", "t-CO2", title="Findings (ranked by yen)")
    for i, f in enumerate(result.findings, 1):
        when = _when(f)
        t.add_row(str(i), f.kind, f.channel, when, _fmt(f.energy_kwh), _fmt(f.cost_jpy), _fmt(f.co2_t, 3))
    con.print(t)
    for i, f in enumerate(result.findings, 1):
        con.print(f"{i:>3}. {f.explanation}", highlight=False)
    fold = s.get("folded") or {}
    if fold.get("count"):
        con.print(f"... and {fold['count']} smaller findings folded (each under {fold['threshold']['energy_kwh']:g} kWh "
                  f"or {100 * fold['threshold']['share_of_channel']:g} % of its channel): "
                  f"{_fmt(fold['energy_kwh'])} kWh, {_fmt(fold['cost_jpy'])} JPY in all", highlight=False)
    p = Table("#", "measure", "kWh/yr", "range kWh/yr", "conf.", "JPY/yr", "t-CO2/yr", "% CO2", "invest JPY",
              "payback yr", title=f"Savings plan (削減計画, per year, from {s.get('days_analysed', 0):.0f} days)")
    for i, m in enumerate(result.plan, 1):
        p.add_row(str(i), f"{m.title} [{m.target}]", _fmt(m.energy_kwh_per_year),
                  f"{_fmt(m.energy_kwh_per_year_low)}-{_fmt(m.energy_kwh_per_year_high)}", m.confidence or "-",
                  _fmt(m.cost_jpy_per_year), _fmt(m.co2_t_per_year, 2), _fmt(m.reduction_contribution_pct, 1),
                  _fmt(m.investment_jpy), _fmt(m.payback_years, 1))
    tot = s.get("plan_total", {})
    p.add_row("", f"total ({_fmt(tot.get('share_of_site_energy_pct'), 1)} % of site energy)",
              _fmt(tot.get("energy_kwh_per_year")),
              f"{_fmt(tot.get('energy_kwh_per_year_low'))}-{_fmt(tot.get('energy_kwh_per_year_high'))}", "",
              _fmt(tot.get("cost_jpy_per_year")), _fmt(tot.get("co2_t_per_year"), 2),
              _fmt(tot.get("reduction_contribution_pct"), 1), _fmt(tot.get("investment_jpy")), "")
    con.print(p)
    fits = s.get("baseline", {})
    if fits:
        b = Table("channel", "kWh", "model", "CV(RMSE) %", "NMBE %", "ASHRAE G14 hourly", "weather",
                  title="Baseline fit (out of sample, limits CV(RMSE) ≤ 30 %, |NMBE| ≤ 10 %)")
        for cid in sorted(fits):
            m = fits[cid]
            cv, nb = m.get("cv_rmse"), m.get("nmbe")
            ok = "-" if cv is None else ("pass" if cv <= 0.30 and abs(nb) <= 0.10 else "fail")
            b.add_row(cid, _fmt(s["energy_kwh"].get(cid)), m.get("model", "day_type"),
                      _fmt(None if cv is None else 100 * cv, 1), _fmt(None if nb is None else 100 * nb, 1), ok,
                      ("adjusted: " if m.get("weather_adjusted") else "not adjusted: ") + m.get("weather_reason", ""))
        con.print(b)
    fs = s.get("factor_set", {})
    con.print(f"CO2 factors: {fs.get('id')} ({fs.get('scope2_method', '')}); assumptions: see --json summary.assumptions")
