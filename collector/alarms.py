"""The collector's alarms: it decides *that* something happened and raises an
`mieruka.events.Event` through the callback it was given (the `collect` command
wires in the application layer's notifier).  Delivery is not its business.

Checked every `[alarms] check_interval_s` on the event loop (cheap: a few
comparisons), each condition with hysteresis so that it does not flap:

- `demand_alarm` when the predicted end-of-period kW reaches a higher stage
  (`[demand] target_kw × alarm_stages`), not in a period's first
  `demand_min_elapsed_s` (the prediction is a guess there); the stage falls back only
  when the prediction is `demand_clear_margin × target` below the stage's threshold,
  and `demand_clear` is raised when it falls to 0.  A new period starts from its own
  prediction with the same rule.
- `meter_offline` when a device had no good poll/message for `offline_after_s`;
  `meter_back` at its next good one.
- `buffer_dropping` when the disk buffer dropped readings since the last check
  (with the count); `disk_low` when the data directory's free space falls below
  `disk_low_pct` % or `disk_low_mb` MB, raised again only after it recovered by a
  fifth above the threshold.
"""
from __future__ import annotations

import asyncio
import logging
import shutil
import time
from pathlib import Path

from mieruka.events import Event, EventSink
from mieruka.site import AlarmsSection

log = logging.getLogger(__name__)
STAGE_NAMES_JA = {1: "注意", 2: "警報", 3: "限界"}
STAGE_NAMES_EN = {1: "warning", 2: "alarm", 3: "limit"}


def stage_name(stage: int, n_stages: int, lang: str) -> str:
    """Stage k of n named from the top: the last one is the limit."""
    names = STAGE_NAMES_JA if lang == "ja" else STAGE_NAMES_EN
    return names.get(3 - (n_stages - stage), names[1]) if stage else ("正常" if lang == "ja" else "normal")


class DemandAlarm:
    """Stage with hysteresis over the live prediction (pure state machine, fed by `check`)."""

    def __init__(self, target_kw: float | None, stages: tuple[float, ...], clear_margin: float,
                 min_elapsed_s: float) -> None:
        self.target_kw, self.stages = target_kw, tuple(stages)
        self.margin, self.min_elapsed_s = clear_margin, min_elapsed_s
        self.stage = 0
        self.period: str | None = None

    def step(self, predicted_kw: float, elapsed_s: float, period_start: str) -> tuple[int, int] | None:
        """Feed one prediction; returns (old stage, new stage) when the stage changed."""
        if not self.target_kw:
            return None
        self.period = period_start
        up = sum(predicted_kw >= s * self.target_kw for s in self.stages)
        # the stage holds until the prediction is `margin` below its threshold
        down = sum(predicted_kw >= (s - self.margin) * self.target_kw for s in self.stages)
        new = self.stage
        if up > self.stage and elapsed_s >= self.min_elapsed_s:
            new = up
        elif down < self.stage:
            new = down
        if new == self.stage:
            return None
        old, self.stage = self.stage, new
        return old, new


class AlarmWatch:
    """Watches the runner's live state and raises events through `sink`."""

    def __init__(self, sink: EventSink, options: AlarmsSection, *, live=None, devices=None, buffer=None,
                 data_dir: Path | None = None, site: str = "") -> None:
        self.sink, self.o = sink, options
        self.live = live                       # collector.live_demand.LiveDemand or None
        self.devices = devices                 # callable -> {device id: stats with last_success}
        self.buffer = buffer                   # DiskBuffer (dropped counter) or None
        self.data_dir = data_dir
        self.demand = None
        if live is not None and live.enabled:
            self.demand = DemandAlarm(live.target_kw, live.stages, options.demand_clear_margin,
                                      options.demand_min_elapsed_s)
        self.started = time.time()
        self.offline: dict[str, float] = {}    # device -> since (epoch s)
        # the system clock stepping (NTP after a power cut) is not a meter's silence: silence is
        # counted from the step at most (wall clock minus monotonic clock: changes only by steps)
        self._skew = time.time() - time.monotonic()
        self._floor = 0.0
        self._dropped = buffer.dropped if buffer is not None else 0
        self._disk_low = False
        self.raised = 0

    def reconfigure(self, options: AlarmsSection, live) -> None:
        """A reloaded config (SIGHUP): new thresholds; the demand stage reached is kept
        when the incomer stays the same, so a reload does not repeat an alarm."""
        stage = self.demand.stage if self.demand is not None and live is self.live else 0
        self.o, self.live = options, live
        self.demand = None
        if live is not None and live.enabled:
            self.demand = DemandAlarm(live.target_kw, live.stages, options.demand_clear_margin,
                                      options.demand_min_elapsed_s)
            self.demand.stage = min(stage, len(live.stages))

    def _raise(self, ev: Event) -> None:
        self.raised += 1
        try:
            self.sink(ev)
        except Exception as e:      # the sink is someone else's: never let it stop collecting
            log.warning("event %s not handed over: %s", ev.event, e)

    # -------------------------------------------------------------- checks
    def check(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self.check_demand(now)
        self.check_devices(now)
        self.check_buffer()
        self.check_disk()

    def check_demand(self, now: float) -> None:
        if self.demand is None:
            return
        st = self.live.status(now)
        if not st or not st.get("available"):
            return
        ch = self.demand.step(st["predicted_kw"], st["elapsed_s"], st["start"])
        if ch is None:
            return
        old, new = ch
        n = len(self.demand.stages)
        data = {k: st[k] for k in ("channel", "start", "end", "seconds_left", "energy_kwh", "present_kw",
                                   "predicted_kw", "target_kw", "contract_kw", "coverage")}
        data.update(stage=new, previous_stage=old, stages=list(self.demand.stages),
                    stage_kw=st["stage_kw"])
        hhmm = st["start"][11:16]
        if new > old:
            crit = "critical" if new == n else "warning"
            self._raise(Event(
                "demand_alarm", crit,
                f"デマンド{stage_name(new, n, 'ja')}: {hhmm}からの時限の予測 {st['predicted_kw']:.1f} kW が"
                f"目標 {st['target_kw']:.0f} kW の {self.demand.stages[new - 1]:.0%} を超えました"
                f"(現在 {st['present_kw']:.1f} kW、残り {st['seconds_left'] / 60:.0f} 分)",
                f"Demand {stage_name(new, n, 'en')}: the period from {hhmm} is predicted at "
                f"{st['predicted_kw']:.1f} kW, over {self.demand.stages[new - 1]:.0%} of the "
                f"{st['target_kw']:.0f} kW target (now {st['present_kw']:.1f} kW, "
                f"{st['seconds_left'] / 60:.0f} min left)",
                data, key=f"demand_alarm:{new}", time_s=now))
        elif new == 0:
            self._raise(Event(
                "demand_clear", "info",
                f"デマンド解除: 予測 {st['predicted_kw']:.1f} kW は目標 {st['target_kw']:.0f} kW の注意段階を下回りました",
                f"Demand clear: the prediction {st['predicted_kw']:.1f} kW is back below every stage of the "
                f"{st['target_kw']:.0f} kW target",
                data, key="demand_alarm", time_s=now))

    def check_devices(self, now: float) -> None:
        if self.devices is None:
            return
        skew = time.time() - time.monotonic()
        if abs(skew - self._skew) > 2.0:
            self._floor = now
        self._skew = skew
        for dev, st in self.devices().items():
            last = getattr(st, "last_success", None)
            since = last if last is not None else self.started
            since = max(min(since, now), self._floor)
            silent = now - since
            if dev not in self.offline and silent >= self.o.offline_after_s:
                self.offline[dev] = since
                problem = getattr(st, "problem", None)
                self._raise(Event(
                    "meter_offline", "warning",
                    f"計測器 {dev} から {silent:.0f} 秒間正常な値がありません" + (f"({problem})" if problem else ""),
                    f"Meter {dev} has sent no good reading for {silent:.0f} s" + (f" ({problem})" if problem else ""),
                    {"device": str(dev), "silent_s": round(silent, 1), "problem": problem,
                     "last_success": last}, key=f"meter_offline:{dev}", time_s=now))
            elif dev in self.offline and last is not None and last > self.offline[dev] and silent < self.o.offline_after_s:
                down_s = last - self.offline.pop(dev)
                self._raise(Event(
                    "meter_back", "info",
                    f"計測器 {dev} が復旧しました(停止 {down_s:.0f} 秒)",
                    f"Meter {dev} is back (silent for {down_s:.0f} s)",
                    {"device": str(dev), "offline_s": round(down_s, 1)}, key=f"meter_offline:{dev}", time_s=now))

    def check_buffer(self) -> None:
        if self.buffer is None:
            return
        dropped = self.buffer.dropped
        if dropped > self._dropped:
            n = dropped - self._dropped
            self._dropped = dropped
            self._raise(Event(
                "buffer_dropping", "critical",
                f"バッファが満杯のため {n} 件の計測値を破棄しました(起動以来 {dropped} 件)。保存先を確認してください",
                f"The buffer is full: {n} readings dropped ({dropped} since start). Check the store",
                {"dropped": n, "dropped_total": dropped, "buffer_dir": str(self.buffer.dir)}, key="buffer_dropping"))

    def check_disk(self) -> None:
        if self.data_dir is None or (not self.o.disk_low_pct and not self.o.disk_low_mb):
            return
        try:
            u = shutil.disk_usage(self.data_dir)
        except OSError:
            return
        free_mb, pct = u.free / 2 ** 20, 100.0 * u.free / max(u.total, 1)
        low = (self.o.disk_low_pct and pct < self.o.disk_low_pct) or (self.o.disk_low_mb and free_mb < self.o.disk_low_mb)
        recovered = ((not self.o.disk_low_pct or pct >= 1.2 * self.o.disk_low_pct)
                     and (not self.o.disk_low_mb or free_mb >= 1.2 * self.o.disk_low_mb))
        if low and not self._disk_low:
            self._disk_low = True
            self._raise(Event(
                "disk_low", "critical",
                f"データ領域の空きが少なくなっています: {free_mb:.0f} MB ({pct:.1f} %)",
                f"Disk space low on the data directory: {free_mb:.0f} MB free ({pct:.1f} %)",
                {"path": str(self.data_dir), "free_mb": round(free_mb, 1), "free_pct": round(pct, 2)}, key="disk_low"))
        elif self._disk_low and recovered:
            self._disk_low = False

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                self.check()
            except Exception as e:       # an alarm check must never stop collecting
                log.warning("alarm check failed: %s", e)
            try:
                await asyncio.wait_for(stop.wait(), self.o.check_interval_s)
            except asyncio.TimeoutError:
                pass
