"""Live demand in the collector: the current demand period (デマンド時限) kept from
the incomer's readings as they are accepted, for the status file, the dashboard
(`/api/v1/demand/now`) and the demand alarm (collector/alarms.py).

The arithmetic is `mieruka.demand_period.PeriodTracker` (energy so far, present
kW, predicted end-of-period kW = (energy so far + present kW × time left) / period,
stage against `[demand] target_kw × alarm_stages`).  This module only picks the
channel and feeds it: `observe(batch)` takes the incomer's OK readings out of a
batch with one numpy mask (a few readings per poll), so it costs the collector
next to nothing (bench/bench_demand.py).

Channel: `[demand] channel`, else the site-total power channel (equipment_kind
incomer/主幹/受電...), else the site-total energy counter.  Live, the energy so far
comes from the power readings (each held until the next): a meter's energy
register is often coarse (0.1 or 1 kWh; a float32 register near 2 million kWh
steps by 0.125 kWh), so over a few seconds it says 0 or a jump, and a prediction
from it would flap.  A counter alone is used only when the incomer has no power
channel (present kW then from its last steps).  The exact demand of finished
periods is `mieruka demand` from the store, which prefers the counter.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
import zoneinfo

import numpy as np

from mieruka.demand_period import PeriodTracker, alarm_stage
from mieruka.models import Quality, ReadingBatch
from mieruka.roles import is_site_total
from mieruka.site import SiteConfig

log = logging.getLogger(__name__)
POWER, ENERGY = "power_kw", "energy_kwh"


def demand_channels(cfg: SiteConfig) -> tuple[str | None, str | None]:
    """(power channel, energy counter channel) of the incomer the live demand follows."""
    infos = cfg.channel_infos()
    chosen = cfg.demand.channel
    if chosen is None:
        totals = [c for c, i in infos.items() if i.quantity in (POWER, ENERGY) and is_site_total(i)]
        power = [c for c in totals if infos[c].quantity == POWER]
        chosen = (power or totals or [None])[0]
    if chosen is None or chosen not in infos:
        return None, None
    if infos[chosen].quantity == ENERGY:
        return None, chosen
    return chosen, None


class LiveDemand:
    """The collector's current demand period; `observe` every accepted batch."""

    def __init__(self, cfg: SiteConfig, power_channel: str | None = None, energy_channel: str | None = None) -> None:
        d = cfg.demand
        if power_channel is None and energy_channel is None:
            power_channel, energy_channel = demand_channels(cfg)
        self.power_channel, self.energy_channel = power_channel, energy_channel
        self.tz = zoneinfo.ZoneInfo(cfg.site.timezone)
        self.period_min, self.stages = d.period_min, tuple(d.alarm_stages)
        self.target_kw, self.contract_kw = d.target_kw, d.contract_kw
        self.tracker = PeriodTracker(cfg.site.timezone, d.period_min, target_kw=d.target_kw, stages=self.stages)
        self.last_period: dict | None = None         # the period that ended last
        self.readings = 0

    @property
    def enabled(self) -> bool:
        return self.power_channel is not None or self.energy_channel is not None

    def observe(self, batch: ReadingBatch) -> None:
        """Feed the incomer's OK readings of a batch (in time order) to the tracker."""
        if not self.enabled or not len(batch):
            return
        ch = batch.channel
        ok = batch.quality == Quality.OK
        pw = (ch == self.power_channel) & ok if self.power_channel else None
        en = (ch == self.energy_channel) & ok if self.energy_channel else None
        if pw is not None and pw.any():
            t = batch.time[pw].astype(np.int64)
            kw = batch.value[pw]
            counters = {}
            if en is not None and en.any():
                counters = dict(zip(batch.time[en].astype(np.int64).tolist(), batch.value[en].tolist()))
            order = np.argsort(t, kind="stable")
            for ti, ki in zip(t[order].tolist(), kw[order].tolist()):
                self._update(ti, ki, counters.get(ti))
        elif pw is None and en is not None and en.any():
            t = batch.time[en].astype(np.int64)
            v = batch.value[en]
            order = np.argsort(t, kind="stable")
            for ti, vi in zip(t[order].tolist(), v[order].tolist()):
                self._update(ti, None, vi)

    def _update(self, t_ms: int, kw: float | None, counter: float | None) -> None:
        tr = self.tracker
        if tr._last_t is not None and t_ms <= tr._last_t:        # late or repeated reading: already counted
            return
        if kw is None and counter is not None and tr._last_counter is not None and tr._last_t is not None:
            # counter only: present kW from the last step (what the meter's pulse output gives)
            dt_h = (t_ms - tr._last_t) / 3_600_000.0
            d = counter - tr._last_counter
            if dt_h > 0 and d >= 0:
                tr.present_kw = d / dt_h
        self.readings += 1
        done = tr.update(t_ms, kw, counter)
        if done is not None:
            start_ms, kw_done, cov = done
            self.last_period = {"start": self._iso(start_ms), "kw": round(kw_done, 3), "coverage": round(cov, 4)}

    def _iso(self, t_ms: int) -> str:
        return dt.datetime.fromtimestamp(t_ms / 1000, self.tz).isoformat()

    def status(self, now_s: float | None = None) -> dict | None:
        """The current period as the status file and `/api/v1/demand/now` give it.
        Times are as of `now_s` (default: now): a collector that lost its incomer keeps
        the period's energy and lets the clock run (coverage then says so)."""
        if not self.enabled:
            return None
        tr = self.tracker
        now_ms = int((time.time() if now_s is None else now_s) * 1000)
        base = {"channel": self.power_channel or self.energy_channel, "energy_channel": self.energy_channel,
                "period_min": self.period_min, "timezone": self.tz.key, "target_kw": self.target_kw,
                "contract_kw": self.contract_kw, "stages": list(self.stages),
                "stage_kw": [round(s * self.target_kw, 3) for s in self.stages] if self.target_kw else [],
                "last_period": self.last_period}
        if tr.start_ms is None:
            return {**base, "available": False}
        if now_ms >= tr.end_ms:         # no reading since the period ended: that period is what we know
            now_ms = tr.end_ms
        st = tr.status(max(now_ms, tr._last_t or now_ms))
        period_ms = tr.end_ms - tr.start_ms
        # a collector started (or a meter back) mid-period has not measured all the time
        # gone by: that part is filled at the mean of what was measured, so a restart
        # never makes the prediction (and the alarm) fall short.  Coverage says how much.
        elapsed_ms = max(min(now_ms, tr.end_ms) - tr.start_ms, 0)
        uncovered_ms = max(elapsed_ms - tr.covered_ms, 0)
        fill_kwh = st.energy_kwh / tr.covered_ms * uncovered_ms if tr.covered_ms > 0 else 0.0
        if tr.covered_ms == 0:        # nothing measured yet: the present load stands for the time gone by
            fill_kwh = max(st.present_kw, 0.0) * elapsed_ms / 3_600_000.0
        predicted = st.predicted_kw + fill_kwh * 3_600_000.0 / period_ms
        return {**base, "available": True,
                "start": self._iso(tr.start_ms), "end": self._iso(tr.end_ms),
                "elapsed_s": round(st.elapsed_s, 1),
                "seconds_left": round(max((tr.end_ms - now_ms) / 1000.0, 0.0), 1),
                "energy_kwh": round(st.energy_kwh, 4), "present_kw": round(st.present_kw, 3),
                "demand_so_far_kw": round(st.energy_kwh * 3_600_000.0 / period_ms, 3),
                "predicted_kw": round(predicted, 3),
                "stage": alarm_stage(predicted, self.target_kw, self.stages),
                "coverage": round(min(tr.covered_ms / period_ms, 1.0), 4),
                "last_reading": self._iso(tr._last_t) if tr._last_t is not None else None,
                "readings": self.readings}
