"""The daily findings digest (`findings_digest`): once a day at `[alarms] digest_at`
(site time) the analysis runs over the last `DAYS` whole days of the store and the
top findings, in kWh, yen and t-CO2, go to the notify targets.

Runs in a thread of its own beside the collector, with its own read-only store
connection: an analysis of a week takes seconds and must never hold up a poll.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading

from ..events import Event, EventSink
from ..site import SiteConfig

log = logging.getLogger(__name__)
DAYS = 7            # detectors need more than one day (baselines compare weekdays)
TOP = 5


def digest_window(now: dt.datetime, days: int = DAYS) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of the digest: the `days` whole local days before today."""
    end = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return end - dt.timedelta(days=days), end


def next_run(now: dt.datetime, hhmm: str) -> dt.datetime:
    """The next local `HH:MM` after `now` (aware, site zone)."""
    h, m = map(int, hhmm.split(":"))
    t = now.replace(hour=h, minute=m, second=0, microsecond=0)
    if t <= now:
        t = (t + dt.timedelta(days=1)).replace(hour=h, minute=m)
    return t


def build_digest(cfg: SiteConfig, store, now: dt.datetime, days: int = DAYS) -> Event:
    """Run the analysis over the window and word the digest (both languages)."""
    from .analysis import run_analysis
    from .context import Context
    start, end = digest_window(now, days)
    view = run_analysis(Context(cfg, store), start, end)
    top = []
    for f in view.findings[:TOP]:
        top.append({k: f.get(k) for k in ("kind", "channel", "start", "end", "energy_kwh", "annual_energy_kwh",
                                          "cost_jpy", "co2_t", "explanation_ja", "explanation_en")})
    kwh = sum((f.get("energy_kwh") or 0.0) for f in view.findings)
    jpy = sum((f.get("cost_jpy") or 0.0) for f in view.findings)
    co2 = sum((f.get("co2_t") or 0.0) for f in view.findings)
    n = len(view.findings)
    span = f"{start:%Y-%m-%d}〜{(end - dt.timedelta(days=1)):%Y-%m-%d}"
    ja = [f"{span} の発見事項 {n} 件: 合計 {kwh:,.0f} kWh、{jpy:,.0f} 円、{co2:.3f} t-CO2"]
    en = [f"{n} findings {start:%Y-%m-%d} to {(end - dt.timedelta(days=1)):%Y-%m-%d}: "
          f"{kwh:,.0f} kWh, {jpy:,.0f} JPY, {co2:.3f} t-CO2 in total"]
    for i, f in enumerate(top, 1):
        ja.append(f"{i}. {f['kind']} {f['channel']}: {f['energy_kwh'] or 0:,.0f} kWh / {f['cost_jpy'] or 0:,.0f} 円")
        en.append(f"{i}. {f['kind']} {f['channel']}: {f['energy_kwh'] or 0:,.0f} kWh / {f['cost_jpy'] or 0:,.0f} JPY")
    data = {"start": start.isoformat(), "end": end.isoformat(), "findings": n, "energy_kwh": round(kwh, 3),
            "cost_jpy": round(jpy), "co2_t": round(co2, 6), "top": top,
            "plan_total": view.summary.get("plan_total")}
    return Event("findings_digest", "info", "\n".join(ja), "\n".join(en), data,
                 key=f"findings_digest:{end:%Y-%m-%d}", time_s=now.timestamp())


class DigestScheduler:
    """A thread that raises `findings_digest` every day at `[alarms] digest_at`."""

    def __init__(self, cfg: SiteConfig, sink: EventSink) -> None:
        self.cfg, self.sink = cfg, sink
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="findings-digest", daemon=True)
        self.last_error: str | None = None
        self.sent = 0

    def start(self) -> "DigestScheduler":
        if self.cfg.alarms.digest_at:
            self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self.thread.is_alive():
            self.thread.join(5)

    def run_once(self, now: dt.datetime | None = None) -> Event | None:
        from ..store import open_store
        now = now or dt.datetime.now(self.cfg.tz)
        try:
            store = open_store(self.cfg, readonly=True)
        except Exception as e:       # no store yet (first minutes of a new site): nothing to digest
            self.last_error = str(e)
            log.warning("findings digest skipped: %s", e)
            return None
        try:
            ev = build_digest(self.cfg, store, now)
        except Exception as e:       # an analysis problem costs the digest, never the collector
            self.last_error = str(e)
            log.warning("findings digest failed: %s", e)
            return None
        finally:
            store.close()
        self.sink(ev)
        self.sent += 1
        return ev

    def _run(self) -> None:
        while not self._stop.is_set():
            now = dt.datetime.now(self.cfg.tz)
            wait = (next_run(now, self.cfg.alarms.digest_at) - now).total_seconds()
            if self._stop.wait(min(wait, 3600.0)):      # re-check hourly: clock changes, DST
                return
            if dt.datetime.now(self.cfg.tz) >= next_run(now, self.cfg.alarms.digest_at):
                self.run_once()
