"""The collector's status as the application layer reads it: the health
snapshot `mieruka collect` rewrites every few seconds."""
from __future__ import annotations

import datetime as dt
import json
import time

from ..collector.health import STATUS_FILE


def collector_health(ctx) -> dict:
    """The collector's last health snapshot (`<data_dir>/collector-status.json`,
    rewritten by `mieruka collect` every few seconds), with its age; times in
    the snapshot are epoch seconds, given here also as ISO 8601 in site time."""
    path = ctx.cfg.data_dir / STATUS_FILE
    try:
        snap = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"available": False, "snapshot": None}
    if not isinstance(snap, dict):
        return {"available": False, "snapshot": None}
    t = snap.get("time")
    if isinstance(t, (int, float)):
        snap["age_s"] = round(max(0.0, time.time() - t), 1)
        snap["time_iso"] = dt.datetime.fromtimestamp(t, ctx.tz).isoformat()
    return {"available": True, "snapshot": snap}
