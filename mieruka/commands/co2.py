"""`mieruka co2`: the fiscal-year CO2 and cost sheet from a CSV of energy amounts."""
from __future__ import annotations

import json
from pathlib import Path

import click

from . import POSITIVE
from ..errors import InputError


def _write_atomic(path: Path, data: bytes | None = None, writer=None) -> None:
    """Write to a temp file beside `path` and rename it only on success (never a partial file)."""
    from ..outputs import write_atomic
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"-o {path}: cannot make the folder {path.parent}: {e.strerror or e}") from None
    write_atomic(path, data, writer, "-o")


@click.command("co2")
@click.argument("csv_file", metavar="FILE.csv", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "xlsx"]), default="table",
              show_default=True, help="Output format (xlsx needs -o).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to this file instead of stdout.")
@click.option("--factor-set", help="Factor set id (shk_2023, shk_legacy, or one of your factor files).")
@click.option("--fiscal-year", type=click.IntRange(2000, 2100), help="Fiscal year of the sheet (April-March); default: the latest in the file.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Site config: tariffs, electricity contracts, extra factor files, targets.")
@click.option("--scope2", type=click.Choice(["market", "location"]),
              help="Which Scope 2 figure goes into the total (both are always shown). Default: config or market.")
@click.option("--base-year", type=click.IntRange(1990, 2100), help="SBT base fiscal year (its total from the file, or --base-t-co2).")
@click.option("--base-t-co2", type=POSITIVE, help="SBT base-year emissions in t-CO2.")
@click.option("--fy2013-t-co2", type=POSITIVE, help="FY2013 emissions in t-CO2, for Japan's -46% by FY2030 path.")
def command(csv_file: str, fmt: str, output: str | None, factor_set: str | None, fiscal_year: int | None,
            config_path: str | None, scope2: str | None, base_year: int | None, base_t_co2: float | None,
            fy2013_t_co2: float | None) -> int:
    """CO2 (Scope 1 and 2) and cost sheet of a fiscal year, months 4月..3月 by energy type.

    FILE.csv has the columns period (YYYY-MM or a date), energy, amount, unit and optionally
    factor, factor_unit, supplier, menu, cost_jpy, site (Japanese headers and energy names are
    accepted; rows with energy `production` give production counts for the intensity).
    See docs/co2.md.  A bad row stops with exit code 2 naming the line and field; no output is written.
    """
    from ..analytics.co2 import CO2Engine
    from ..analytics.co2.inputcsv import read_energy_csv
    from ..analytics.co2.report import to_csv_text, to_json
    from ..analytics.co2.sheet import build_sheet
    from ..analytics.co2.targets import target_rows

    if fmt == "xlsx" and not output:
        raise click.UsageError("--format xlsx needs -o FILE.xlsx")
    cfg = None
    if config_path:
        from ..site import load_site
        cfg = load_site(config_path)
        engine = CO2Engine.from_site(cfg, factor_set)
    else:
        engine = CO2Engine(factor_set or "shk_2023")
    if scope2:
        engine.scope2_method = scope2
    rows, production = read_energy_csv(csv_file, engine)
    try:
        sheet = build_sheet(rows, engine.describe(), fiscal_year, production)
    except ValueError as e:
        raise InputError(f"{csv_file}: {e}") from None

    # targets: base from the options, the site config, or the file's own earlier year
    co2cfg = cfg.co2 if cfg else None
    base_year = base_year if base_year is not None else (co2cfg.base_fiscal_year if co2cfg else None)
    if base_t_co2 is None and co2cfg is not None and co2cfg.base_fiscal_year == base_year:
        base_t_co2 = co2cfg.base_year_t_co2
    if base_year is not None and base_t_co2 is None:
        base_t_co2 = sheet.by_fiscal_year.get(base_year)
        if base_t_co2 is None:
            raise InputError(f"{csv_file}: base year FY{base_year} is not in the file: give --base-t-co2")
    if base_t_co2 is not None and base_year is None:
        raise click.UsageError("--base-t-co2 needs --base-year")
    fy2013 = fy2013_t_co2 if fy2013_t_co2 is not None else (co2cfg.fy2013_t_co2 if co2cfg else None)
    fy2013 = fy2013 if fy2013 is not None else sheet.by_fiscal_year.get(2013)
    sheet.targets = target_rows(sheet.total_t, sheet.fiscal_year, base_year, base_t_co2, fy2013)

    out = Path(output) if output else None
    if fmt == "xlsx":
        from ..analytics.co2.xlsx import write_xlsx
        _write_atomic(out, writer=lambda p: write_xlsx(sheet, p))
    elif fmt in ("json", "csv"):
        text = json.dumps(to_json(sheet), ensure_ascii=False, indent=2) + "\n" if fmt == "json" else to_csv_text(sheet)
        if out:
            _write_atomic(out, text.encode("utf-8"))
        else:
            click.echo(text.removeprefix("\ufeff"), nl=False)
    else:
        from . import console
        from ..analytics.co2.report import render_table
        if out:
            def write_table(p: Path) -> None:
                with open(p, "w", encoding="utf-8") as f:
                    render_table(sheet, console(file=f, width=100, no_color=True))
            _write_atomic(out, writer=write_table)
        else:
            render_table(sheet, console())
    if out:
        click.echo(f"wrote {out}", err=True)
    return 0
