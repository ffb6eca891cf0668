"""Analysis runs: the analysis pipeline over [start, end) of the store's data,
as one `AnalysisView` (findings, plan, summary and the pipeline's deterministic
JSON), and the factor set that priced it."""
from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field
from typing import Any

from ..analytics import pipeline
from ..analytics.co2 import CO2Engine
from ..analytics.savings import Measure
from ..errors import Invalid, MierukaError
from ..site import SiteConfig


@dataclass
class AnalysisView:
    """One analysis run over [start, end), as the API, the report and replay use it."""

    start: dt.datetime
    end: dt.datetime
    result: Any                         # the pipeline's AnalysisResult
    findings: list[dict]
    plan: list[dict]
    summary: dict
    json_text: str                      # the pipeline's deterministic JSON
    channels: list[str] = field(default_factory=list)
    computed_at: float = field(default_factory=time.time)


# ------------------------------------------------------------------ factor set
def factor_set_info(cfg: SiteConfig) -> dict[str, Any]:
    """Which factor set priced the figures (id, title, source, revision)."""
    try:
        return engine_for(cfg).describe()
    except Exception as e:  # a broken factor file must not hide the rest of a report
        return {"id": cfg.co2.factor_set, "error": str(e)}


_ENGINES: dict[int, Any] = {}


def engine_for(cfg: SiteConfig) -> CO2Engine:
    """The CO2 engine of a site config (kept per config object: loading factors costs)."""
    key = id(cfg)
    eng = _ENGINES.get(key)
    if eng is None:
        eng = CO2Engine.from_site(cfg)
        if len(_ENGINES) > 8:
            _ENGINES.clear()
        _ENGINES[key] = eng
    return eng


# ------------------------------------------------------------------ findings
def plan_measures(plan: list[dict]) -> list[Measure]:
    """The run's savings plan as the pipeline's own `Measure`s, read from the run's
    cleaned JSON (so the report and the workbook show exactly the JSON's figures)."""
    return [Measure(**m) for m in plan]


def run_analysis(ctx, start: dt.datetime, end: dt.datetime, channels: list[str] | None = None) -> AnalysisView:
    """Run the analysis pipeline over [start, end) of the store's data."""
    infos = ctx.infos()
    ids = [c for c in (channels or list(infos)) if c in infos]
    try:
        result = pipeline.analyze_store(ctx.store, [infos[c] for c in ids], ctx.calendar, ctx.cfg, start, end)
    except Invalid:
        raise
    except MierukaError as e:        # a config or factor problem worded for people (not a bug)
        raise Invalid(str(e)) from None
    text = result.to_json()
    data = json.loads(text)           # the cleaned form: rounded floats, NaN -> null, ISO times
    # the pipeline's ranking: by yen, base loads (to review, not waste) after the others
    findings = sorted(data.get("findings", []), key=lambda f: (f.get("kind") == "base_load", -(f.get("cost_jpy") or 0.0)))
    view = AnalysisView(start, end, result, findings, data.get("plan", []), data.get("summary", {}), text)
    view.channels = ids
    return view
