"""The collector's status as the application layer reads it: the health
snapshot `mieruka collect` rewrites every few seconds, and what it means.

A snapshot alone cannot tell "running" from "exited a moment ago": the file
stays behind when the process dies.  `collector_state` therefore also looks at
the process (is the pid alive, and is it still a mieruka process, not a reused
pid) when the snapshot was written on this host, and at the heartbeat's age.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import os
import socket
import time
from pathlib import Path

from ..collector.health import STATUS_FILE

# a heartbeat older than this many status intervals (plus slack) is stale
STALE_INTERVALS = 3
STALE_SLACK_S = 5.0


def read_snapshot(data_dir: Path) -> dict | None:
    try:
        snap = json.loads((Path(data_dir) / STATUS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return snap if isinstance(snap, dict) else None


def pid_state(pid) -> str:
    """"alive", "gone", or "other" (the pid now belongs to a process that is not mieruka)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or not 0 < pid < 2**31:
        return "gone"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "gone"
    except PermissionError:
        pass                                   # alive, another user's process
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "alive"                         # no /proc: trust the pid
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat[stat.rindex(")") + 2] == "Z":  # a zombie has exited; only its exit status is left
            return "gone"
    except (OSError, ValueError, IndexError):
        pass
    return "alive" if b"mieruka" in cmd else "other"


def lock_state(data_dir: Path) -> tuple[str, int | None]:
    """The collector lock of the data directory (mieruka.runlock): ("held", pid or 0)
    while a collector runs, ("free", None) when the lock file is there but nobody holds
    it (the kernel released it when the process ended, however it ended), ("none", None)
    without a lock file (a collector of an older version, or none ever ran)."""
    from ..runlock import LOCK_NAME, collector_pid
    if not (Path(data_dir) / LOCK_NAME).exists():
        return "none", None
    pid = collector_pid(Path(data_dir))
    return ("free", None) if pid is None else ("held", pid)


def local_time(t: float | None, tz) -> str | None:
    """Epoch seconds as `YYYY-MM-DD HH:MM:SS ZONE` in the site zone."""
    if not isinstance(t, (int, float)) or not t:
        return None
    try:
        return dt.datetime.fromtimestamp(t, tz).strftime("%Y-%m-%d %H:%M:%S %Z")
    except (OverflowError, OSError, ValueError):     # a damaged status file: no time rather than a traceback
        return None


def ago(seconds: float) -> str:
    s = max(0.0, seconds)
    if s < 120:
        return f"{s:.0f} s ago"
    if s < 7200:
        return f"{s / 60:.0f} min ago"
    if s < 172800:
        return f"{s / 3600:.1f} h ago"
    return f"{s / 86400:.1f} days ago"


def collector_state(snap: dict, tz, now: float | None = None, pid_check=pid_state,
                    lock: tuple[str, int | None] = ("none", None)) -> dict:
    """What the snapshot means now: `state` is one of running, stale (alive but no
    heartbeat), stopped (clean stop), exited (the process is gone without a clean
    stop), with `words` saying it for a person, times in the site zone.  `lock` is
    `lock_state(data_dir)`: the collector lock, when there is one, decides whether a
    collector process lives (it cannot be fooled by a reused pid); without it the
    snapshot's pid is checked."""
    now = time.time() if now is None else now
    t = snap.get("time") if isinstance(snap.get("time"), (int, float)) and math.isfinite(snap["time"]) else 0.0
    age = max(0.0, now - t)
    interval = snap.get("interval_s")
    interval = interval if isinstance(interval, (int, float)) and 0 < interval < 86400 else 2.0
    limit = STALE_INTERVALS * interval + STALE_SLACK_S
    pid = snap.get("pid")
    here = snap.get("host") in (None, socket.gethostname())
    if lock[0] == "held":
        proc = "alive"
        pid = lock[1] or pid
    elif lock[0] == "free":
        proc = "gone"
    else:
        proc = pid_check(pid) if here else "unknown"
    when = local_time(t, tz)
    beat = f"last heartbeat {when}, {ago(age)}" if when else "no valid heartbeat time"
    if isinstance(snap.get("stopped_at"), (int, float)) and snap["stopped_at"] > 0:
        stopped = local_time(snap["stopped_at"], tz) or "an unknown time"
        state, words = "stopped", f"not running (stopped cleanly at {stopped}, {ago(now - snap['stopped_at'])})"
        if proc == "alive":       # a new collector with the same pid has not written yet
            state, words = "starting", f"starting (pid {pid}); previous run stopped at {stopped}"
    elif proc in ("gone", "other"):
        state, words = "exited", f"not running (exited without a clean stop: pid {pid} is gone; {beat})"
    elif t - now > limit:
        # written since the clock went back, a collector rewrites it with the new time: this one has not
        state, words = "stale", (f"stale heartbeat: {beat}, ahead of this clock by {t - now:.0f} s (the system "
                                 f"clock went back?) and not rewritten since (written every {interval:g} s)")
    elif age > limit:
        state, words = "stale", (f"stale heartbeat: {beat} (written every {interval:g} s); "
                                 + (f"pid {pid} is alive but not reporting (hung?)" if proc == "alive"
                                    else "the collector may have stopped"))
    else:
        state, words = "running", f"running (pid {pid}), {beat}"
    return {"state": state, "running": state == "running", "words": words, "age_s": round(age, 1),
            "pid": pid, "process": proc, "stale_after_s": limit}


def collector_health(ctx) -> dict:
    """The collector's last health snapshot (`<data_dir>/collector-status.json`,
    rewritten by `mieruka collect` every few seconds), with its age and state;
    times in the snapshot are epoch seconds, given here also as ISO 8601 in site time."""
    snap = read_snapshot(ctx.cfg.data_dir)
    if snap is None:
        return {"available": False, "snapshot": None}
    t = snap.get("time")
    if isinstance(t, (int, float)) and math.isfinite(t):
        snap["age_s"] = round(max(0.0, time.time() - t), 1)
        try:
            snap["time_iso"] = dt.datetime.fromtimestamp(t, ctx.tz).isoformat()
        except (OverflowError, OSError, ValueError):
            snap["time_iso"] = None
    snap["state"] = collector_state(snap, ctx.tz, lock=lock_state(ctx.cfg.data_dir))
    return {"available": True, "snapshot": snap}
