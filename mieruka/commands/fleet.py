"""`mieruka fleet analyze`: many sites on Dask (distributed), one company's CO2."""
from __future__ import annotations

import sys
from pathlib import Path

import click


@click.group("fleet")
def command() -> None:
    """Many sites: analyse a fleet of plants on Dask; league table and the company's CO2 sheet."""


@command.command("analyze")
@click.argument("manifest", type=click.Path(dir_okay=False))
@click.option("--workers", type=click.IntRange(1, 256), help="Local worker processes (default: the CPU count, "
              "at most 8).")
@click.option("--scheduler", metavar="tcp://HOST:8786", help="Use an existing Dask cluster instead of a local one.")
@click.option("--serial", is_flag=True, help="No Dask: analyse the sites one after the other in this process.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Write the fleet JSON here ('-': stdout).")
@click.option("--report", "report_out", type=click.Path(dir_okay=False), help="Write the HTML report here.")
@click.option("--xlsx", "xlsx_out", type=click.Path(dir_okay=False), help="Write the Excel workbook here.")
@click.option("--lang", type=click.Choice(["ja", "en"]), default="ja", show_default=True,
              help="Report language.")
@click.option("--split-readings", type=click.IntRange(min=0), metavar="N",
              help="Split a site with more than N readings (channels x points) into channel-group tasks; "
                   "0: never (default: the manifest's split_readings, else 50,000,000).")
def analyze_cmd(manifest, workers, scheduler, serial, json_out, report_out, xlsx_out, lang, split_readings) -> int:
    """Analyse every site of MANIFEST (fleet.toml): one Dask task per site (a large
    site split by channel groups), data read on the workers; a failing site is
    reported with its error, the others finish.

    \b
    mieruka fleet analyze fleet.toml --workers 2 --json fleet.json --report fleet.html --xlsx fleet.xlsx
    mieruka fleet analyze fleet.toml --scheduler tcp://10.0.0.5:8786 --json -
    """
    from . import console
    from ..service.fleet import fleet_client, run_fleet
    from ..service.fleet_manifest import load_manifest

    if sum(bool(x) for x in (workers, scheduler, serial)) > 1:
        raise click.UsageError("give only one of --workers, --scheduler, --serial")
    from ..outputs import check_output, write_all_atomic
    for opt, p in (("--json", json_out), ("--report", report_out), ("--xlsx", xlsx_out)):
        if p and p != "-":       # a wrong folder stops here, not after every site was analysed
            check_output(p, opt)
    fleet = load_manifest(manifest, split_readings=split_readings)
    err = console(stderr=True)
    run = _run(fleet, workers, scheduler, serial, err, run_fleet, fleet_client)
    outputs = []           # all written, or none (never the JSON without the report it goes with)
    if json_out:
        text = run.to_json()
        if json_out == "-":
            click.echo(text, nl=False)
        else:
            outputs.append((json_out, text.encode("utf-8"), None, "--json"))
    if report_out:
        from ..reports.fleet_report import build_fleet_report
        outputs.append((report_out, build_fleet_report(run.data, run.sheet, lang).encode("utf-8"), None, "--report"))
    if xlsx_out:
        from ..reports.fleet_excel import write_fleet_xlsx
        outputs.append((xlsx_out, None, lambda tmp: write_fleet_xlsx(run.data, run.sheet, tmp), "--xlsx"))
    write_all_atomic(outputs)
    if json_out != "-":
        con = console()
        _print_league(run.data, con if con.is_terminal else console(width=160))
    failed = run.data["totals"]["sites_failed"]
    if failed:
        err.print(f"{failed} of {len(fleet.sites)} sites failed (see their `error`)", style="yellow")
    return 1 if failed else 0


def _run(fleet, workers, scheduler, serial, err, run_fleet, fleet_client):
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("fleet"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.description}"), console=err, transient=True,
                  disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task("", total=len(fleet.sites))

        def done(site_id: str, res: dict) -> None:
            bar.update(task, advance=1, description=escape(str(site_id)) + (" [red]failed[/red]" if res.get("error") else ""))
            if res.get("error"):
                # one line per failed site, never wrapped at the terminal's width (grep, logs)
                err.print(f"site {site_id}: error: {res['error']}", highlight=False, markup=False, soft_wrap=True)

        if serial:
            return run_fleet(fleet, None, done)
        with fleet_client(workers, scheduler) as client:
            return run_fleet(fleet, client, done)


def _print_league(data: dict, con) -> None:
    from rich.table import Table
    from rich.text import Text

    fmt = lambda x, nd=0: "-" if x is None else f"{x:,.{nd}f}"
    t = Table("site", "kWh", "kWh/unit", "t-CO2", "waste kWh", "waste %", "waste JPY", "plan JPY/yr",
              "top measure", title="Fleet league (by waste share)")
    for s in sorted(data["sites"], key=lambda s: (s["error"] is not None, -(s.get("waste_share") or 0.0), s["id"])):
        if s["error"]:
            t.add_row(s["id"], Text("error", style="red"), "", "", "", "", "", "", s["error"][:60])
            continue
        unit = (s.get("production") or {}).get("unit", "")
        tm = s.get("top_measure") or {}
        t.add_row(s["id"], fmt(s["energy_kwh"]), f"{fmt(s.get('energy_kwh_per_unit'), 2)} {unit}".strip(),
                  fmt(s["co2_t"], 2), fmt(s["waste_kwh"]), fmt(100 * (s.get("waste_share") or 0.0), 1),
                  fmt(s["waste_jpy"]), fmt(s["plan_jpy_per_year"]), tm.get("title_en") or "-")
    tot = data["totals"]
    t.add_row("total", fmt(tot["energy_kwh"]), "", fmt(tot["co2_t"], 2), fmt(tot["waste_kwh"]),
              fmt(100 * (tot.get("waste_share") or 0.0), 1), fmt(tot["waste_jpy"]), fmt(tot["plan_jpy_per_year"]), "")
    con.print(t)
