"""Replay for auditors: load a recording into the configured store, analyse
it, and say exactly what produced the figures.

Loading is idempotent (the store keeps one row per (channel, time)), so
replaying a file twice doubles nothing.  Channels the config does not list are
registered with the recording's own metadata (`quantity`, `equipment_kind`,
`system`), because an auditor's config may hold only the calendar, tariffs and
factors.  The JSON written for the findings depends only on the input file,
the factor set and the software version: no clock time, no paths.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from .. import __version__
from ..calendar import SiteCalendar
from ..errors import InputError
from ..models import ReadingBatch
from ..recording import Recording, read_recording
from ..site import SiteConfig
from ..store.base import Store
from .analysis import AnalysisView, factor_set_info, run_analysis
from .context import Context, channel_infos

CHUNK_ROWS = 500_000


@dataclass
class ReplayResult:
    recording: Recording
    channels_added: list[str]
    rows: int
    provenance: dict[str, Any]
    view: AnalysisView

    def findings_json(self) -> str:
        """Deterministic JSON: provenance + the analysis pipeline's own JSON."""
        analysis = json.loads(self.view.json_text)
        return json.dumps({"provenance": self.provenance, "analysis": analysis},
                          ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def provenance(cfg: SiteConfig, sha256: str | None, file_name: str | None = None,
               sources: dict[str, Any] | None = None, bills: str | Path | None = None) -> dict[str, Any]:
    """What an auditor needs to reproduce a figure: input hash, factor set,
    software version and calendar.  `sources` (see `import_sources`) names the
    logger exports and the mapping a recording was imported from: the auditor
    holds those files, not the temporary recording made of them."""
    out: dict[str, Any] = {
        "software": {"name": "mieruka", "version": __version__},
        "factor_set": factor_set_info(cfg),
        "calendar": SiteCalendar.from_config(cfg).describe(),
        "tariffs": cfg.tariffs.model_dump(mode="json", exclude_defaults=False),
    }
    if sha256:
        out["input"] = {"sha256": sha256}
        if sources:
            out["input"]["imported_from"] = sources
    if bills:       # the bills replace metered months in the CO2 sheet: the auditor needs that file too
        from ..recording import file_sha256
        out["bills"] = {"file": Path(bills).name, "sha256": file_sha256(bills)}
    return out


def import_sources(files: list[str | Path], mapping_path: str | Path) -> dict[str, Any]:
    """The files a recording was imported from, by name (no folder: the JSON must
    not depend on where the auditor unpacked them) and sha256, in a stable order
    (not that of the command line), plus the mapping file."""
    from ..recording import file_sha256
    entries = sorted(({"file": Path(f).name, "sha256": file_sha256(f)} for f in files),
                     key=lambda e: (e["file"], e["sha256"]))
    return {"files": entries,
            "mapping": {"file": Path(mapping_path).name, "sha256": file_sha256(mapping_path)}}


def load_recording(rec: Recording, cfg: SiteConfig, store: Store, progress: bool = True) -> tuple[list[str], int]:
    """Write a recording into the store in chunks; return (channels added, rows)."""
    known = channel_infos(cfg, store)
    added = [i for i in rec.infos() if i.id not in known]
    if added:
        store.set_channels(added)
    total = rec.rows
    chunks = []
    for cid, ch in rec.channels.items():
        for a in range(0, len(ch.time), CHUNK_ROWS):
            b = min(a + CHUNK_ROWS, len(ch.time))
            chunks.append((cid, a, b))
    with Progress(TextColumn("replay"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  disable=not progress or total < 200_000, transient=True) as bar:
        task = bar.add_task("rows", total=total)
        for cid, a, b in chunks:
            ch = rec.channels[cid]
            store.write(ReadingBatch(ch.time[a:b], np.full(b - a, cid, dtype=object), ch.value[a:b], ch.quality[a:b]))
            bar.advance(task, b - a)
    return [i.id for i in added], total


def replay(path: str | Path, cfg: SiteConfig, store: Store, progress: bool = True,
           sources: dict[str, Any] | None = None, bills: str | Path | None = None) -> ReplayResult:
    """Load, analyse over the recording's whole site days, and describe provenance
    (`sources`: what the recording was imported from, see `import_sources`)."""
    rec = read_recording(path)
    added, rows = load_recording(rec, cfg, store, progress)
    ctx = Context(cfg, store, channels=list(rec.channels))
    rng = rec.time_range()
    if rng is None:
        raise InputError(f"{path}: the recording has no readings")
    start, end = _day_bounds(ctx, rng)
    view = run_analysis(ctx, start, end, channels=list(rec.channels))
    prov = provenance(cfg, rec.sha256, sources=sources, bills=bills)
    inferred = view.summary.get("shifts_from_load")
    if inferred:            # the shifts used are the ones read off the load: say so, with how
        prov["calendar"] = dict(prov["calendar"], shifts_from_load=inferred)
        if inferred.get("inferred"):
            prov["calendar"]["shifts"] = inferred["shifts"]
    return ReplayResult(rec, added, rows, prov, view)


def use_shifts_of(ctx, view: AnalysisView) -> None:
    """Give the context's calendar the shifts the analysis used when it read them off
    the load, so the report's charts shade the same production hours as the figures."""
    inferred = view.summary.get("shifts_from_load") or {}
    if inferred.get("inferred") and inferred.get("shifts"):
        ctx.calendar.shifts = inferred["shifts"]
        ctx.calendar.shifts_configured = True
        ctx.calendar.__dict__.pop("_shift_tables", None)


def _day_bounds(ctx, rng):
    """[first site midnight, the midnight after the last reading) of a time range."""
    t0 = ctx.calendar.to_local_datetime(rng[0]).replace(hour=0, minute=0, second=0, microsecond=0)
    t1 = ctx.calendar.to_local_datetime(rng[1]).replace(hour=0, minute=0, second=0, microsecond=0)
    return t0, t1 + dt.timedelta(days=1)
