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
def plan_rows(plan: list[dict]) -> list[dict]:
    """The pipeline's savings plan normalised for the report and the workbook."""
    def pick(m, *keys):
        for k in keys:
            if m.get(k) is not None:
                return m[k]
        return None
    rows = []
    for m in plan:
        share = pick(m, "co2_share_pct", "reduction_contribution_pct", "share_of_site_co2_pct")
        if share is None and pick(m, "co2_share", "reduction_contribution") is not None:
            share = 100.0 * pick(m, "co2_share", "reduction_contribution")
        rows.append({"title": pick(m, "title", "measure", "name", "explanation") or "",
                     "kwh": pick(m, "energy_kwh_per_year", "saving_kwh_per_year", "kwh_per_year", "energy_kwh"),
                     "jpy": pick(m, "cost_jpy_per_year", "saving_jpy_per_year", "yen_per_year", "jpy_per_year", "cost_jpy"),
                     "co2_t": pick(m, "co2_t_per_year", "saving_co2_t_per_year", "co2_t"),
                     "share_pct": share,
                     "investment": pick(m, "investment_jpy", "capex_jpy"),
                     "payback": pick(m, "payback_years", "payback_y")})
    return rows


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
    findings = sorted(data.get("findings", []), key=lambda f: -(f.get("cost_jpy") or 0.0))
    view = AnalysisView(start, end, result, findings, data.get("plan", []), data.get("summary", {}), text)
    view.channels = ids
    return view
