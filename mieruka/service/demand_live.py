"""The live demand period as `/api/v1/demand/now` and the dashboard give it: the
collector keeps it (collector/live_demand.py) and writes it into its status file
every few seconds; this reads it back and says how fresh it is."""
from __future__ import annotations

import datetime as dt
import time

from .collector_status import collector_health

STALE_AFTER_S = 15.0        # a snapshot older than this (at least 5 status intervals) is not "now"


def demand_now(ctx) -> dict:
    """{"available", "stale", "age_s", period start/end (ISO with offset), seconds_left,
    energy_kwh, present_kw, predicted_kw, target_kw, contract_kw, stage, coverage, ...}."""
    d = ctx.cfg.demand
    base = {"period_min": d.period_min, "timezone": ctx.cfg.site.timezone, "target_kw": d.target_kw,
            "contract_kw": d.contract_kw, "stages": list(d.alarm_stages),
            "stage_kw": [round(s * d.target_kw, 3) for s in d.alarm_stages] if d.target_kw else []}
    h = collector_health(ctx)
    snap = h.get("snapshot") or {}
    live = snap.get("demand") if isinstance(snap, dict) else None
    if not h.get("available") or not isinstance(live, dict) or not live.get("available"):
        why = ("no collector status file (is `mieruka collect` running with this config?)" if not h.get("available")
               else "the collector has no incomer reading yet (or no [demand] channel / site-total channel)")
        return {**base, "available": False, "stale": True, "note": why}
    out = {**base, **live}
    age = float(snap.get("age_s") or 0.0)
    interval = float(snap.get("interval_s") or 2.0)
    out["age_s"] = age
    out["stale"] = age > max(STALE_AFTER_S, 5 * interval)
    out["snapshot_time"] = snap.get("time_iso")
    # the clock runs on between snapshots
    try:
        end = dt.datetime.fromisoformat(live["end"])
        out["seconds_left"] = round(max((end.timestamp() - time.time()), 0.0), 1)
    except (KeyError, TypeError, ValueError):
        pass
    return out
