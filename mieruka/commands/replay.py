"""`mieruka replay`: an auditor reproduces a factory's figures from its recording."""
from __future__ import annotations

from pathlib import Path

import click


@click.command("replay")
@click.argument("recording", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--mapping", "mapping_path", type=click.Path(dir_okay=False),
              help="RECORDING is one or more logger/spreadsheet exports: import them with this mapping first "
                   "(see `mieruka import`).")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="Site config (TOML): store, calendar, tariffs, factor set. Channels may be left out.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), help="Write the HTML report here.")
@click.option("--pdf", "pdf_path", type=click.Path(dir_okay=False),
              help="Print the report to PDF (headless Chromium); without --report no HTML file is written.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False),
              help="Write the findings as JSON (byte-identical for the same input, factor set and version).")
@click.option("--xlsx", "xlsx_path", type=click.Path(dir_okay=False), help="Write the Excel workbook (CO2 sheet, findings, plan).")
@click.option("--fiscal-year", "fy", type=click.IntRange(2000, 2100), default=None, help="Fiscal year of the CO2 sheet (default: that of the last reading).")
@click.option("--bills", "bills_path", type=click.Path(dir_okay=False, exists=True),
              help="CSV of bills (the `mieruka co2` format) added to the CO2 sheet; a bill replaces the metered month.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def command(recording: tuple[str, ...], mapping_path: str | None, config_path: str, report_path: str | None, pdf_path: str | None, json_path: str | None,
            xlsx_path: str | None, fy: int | None, bills_path: str | None, no_progress: bool) -> int:
    """Load RECORDING (CSV, format v1) into the configured store (idempotent), analyse
    it and write the report. Reports state the input's sha256, the factor set, the
    software version and the calendar used.  With --mapping, RECORDING may be logger
    exports (CSV, Shift_JIS, .xlsx), imported on the fly as `mieruka import` does."""
    import contextlib

    from .import_ import on_the_fly
    with contextlib.ExitStack() as stack:
        imported = on_the_fly(recording, mapping_path, stack)
        sources = None
        if mapping_path:      # provenance names the exports the auditor holds, not our temporary recording
            from ..service.replay import import_sources
            sources = import_sources(list(recording), mapping_path)
        return _command(imported, config_path, report_path, pdf_path, json_path,
                        xlsx_path, fy, bills_path, no_progress, sources)


def _command(recording: str, config_path: str, report_path, pdf_path, json_path, xlsx_path, fy, bills_path,
             no_progress, sources=None) -> int:
    # imported here, not at the top: `mieruka --help` and the other commands must not
    # pay for numpy, the analytics and the report stack at start-up
    from . import console
    from ..site import load_site
    from ..store.base import open_store
    from ..outputs import check_output
    outputs = {"--report": report_path, "--pdf": pdf_path, "--json": json_path, "--xlsx": xlsx_path}
    for opt, p in outputs.items():      # before minutes of work, not after it
        if p:
            check_output(p, opt)
    _distinct_outputs(recording, outputs)
    cfg = load_site(config_path)
    bills = Path(bills_path) if bills_path else (cfg.resolve_path(cfg.co2.bills_file) if cfg.co2.bills_file else None)
    if bills:          # a bad bill row stops here, before anything is written
        from ..analytics.co2 import CO2Engine
        from ..analytics.co2.inputcsv import read_energy_csv
        read_energy_csv(bills, CO2Engine.from_site(cfg))
    con = console(stderr=True)
    from ..timezones import check_zone
    ok, fitting = check_zone(recording, cfg.site.timezone) if Path(recording).is_file() else (True, [])
    if not ok:      # nights, shifts and days off would be wrong: say so before the figures
        con.print(f"warning: {recording}: the UTC offsets of its time stamps do not fit the site's zone "
                  f"{cfg.site.timezone}; they suggest {fitting[0] if fitting else 'another zone'}", highlight=False)
    store = open_store(cfg)
    try:     # the service's errors (a factor missing, a bad bill) are MierukaErrors: one line, exit 2
        return _run(cfg, store, con, recording, report_path, pdf_path, json_path, xlsx_path, fy, bills, no_progress,
                    sources)
    finally:
        store.close()


def _distinct_outputs(recording: str, paths: dict[str, str | None]) -> None:
    """Two outputs (or an output and the recording) naming one file: one would silently replace the other."""
    from ..errors import InputError
    seen = {Path(recording).resolve(): "the recording"}
    for opt, p in paths.items():
        if not p:
            continue
        key = Path(p).resolve()
        if key in seen:
            raise InputError(f"{opt} {p}: the same file as {seen[key]}; give each output its own file")
        seen[key] = opt


def _run(cfg, store, con, recording, report_path, pdf_path, json_path, xlsx_path, fy, bills, no_progress,
         sources=None) -> int:
    from ..service.context import Context
    from ..service.replay import replay, use_shifts_of
    res = replay(recording, cfg, store, progress=not no_progress, sources=sources, bills=bills)
    con.print(f"replayed {res.rows:,} readings of {len(res.recording.channels)} channels "
              f"(sha256 {res.recording.sha256[:16]}…); {len(res.channels_added)} channels taken from the recording")
    for src in (sources or {}).get("files", []):
        con.print(f"  imported from {src['file']} (sha256 {src['sha256']})")
    if sources:
        con.print(f"  mapping {sources['mapping']['file']} (sha256 {sources['mapping']['sha256']})")
    con.print(f"{len(res.view.findings)} findings from {res.view.start.isoformat()} to {res.view.end.isoformat()}")
    # every output is built in memory first: a failure leaves no half of them behind
    outputs: list[tuple[Path, bytes, str, str]] = []
    if json_path:
        outputs.append((Path(json_path), res.findings_json().encode("utf-8"), "findings JSON", "--json"))
    ctx = Context(cfg, store, bills_path=bills, channels=list(res.recording.channels))
    use_shifts_of(ctx, res.view)
    if report_path or pdf_path:
        from ..reports.report import build_report
        html = build_report(ctx, res.view, fy, res.provenance, Path(recording).name).encode("utf-8")
        if report_path:
            outputs.append((Path(report_path), html, "report", "--report"))
        if pdf_path:       # printed from a temporary copy of the HTML: --pdf alone writes the PDF only
            outputs.append((Path(pdf_path), _print_pdf(html), "PDF", "--pdf"))
    if xlsx_path:
        from ..reports.excel import build_workbook
        outputs.append((Path(xlsx_path), build_workbook(ctx, res.view, fy, res.provenance), "Excel", "--xlsx"))
    from ..outputs import write_all_atomic
    write_all_atomic([(path, data, None, opt) for path, data, _, opt in outputs])
    for path, _, what, _ in outputs:
        con.print(f"{what}: {path.resolve()}")
    return 0


def _print_pdf(html: bytes) -> bytes:
    """The report printed to PDF by headless Chromium, from an HTML file in a
    temporary directory (never beside the user's files, never overwriting one)."""
    import tempfile

    from ..reports.report import html_to_pdf
    with tempfile.TemporaryDirectory(prefix="mieruka-pdf-") as d:
        src, dst = Path(d) / "report.html", Path(d) / "report.pdf"
        src.write_bytes(html)
        html_to_pdf(src, dst)
        return dst.read_bytes()
