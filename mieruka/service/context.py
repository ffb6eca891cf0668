"""The application's context: config, store, calendar, channels, readings and
the cache of analysis runs.

The API, the report builder and `mieruka replay` all use it, so a figure is
computed one way whoever asks; it raises mieruka.errors (NotFound, Invalid),
never HTTP errors.
"""
from __future__ import annotations

import datetime as dt
import math
import threading
import time

import numpy as np

from ..calendar import SiteCalendar
from ..models import ChannelInfo, Quality
from ..site import SiteConfig
from ..quantities import QUANTITIES
from ..store.base import Store
from ..errors import Invalid, NotFound
from .analysis import AnalysisView, run_analysis
from .timefmt import iso, iso_many, to_ms

# interval steps a readings query may use (seconds): "nice" for people and charts
NICE_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
                43200, 86400, 7 * 86400)
STALE_AFTER_S = 120.0


def choose_interval_s(span_s: float, max_points: int, requested_s: float | None = None) -> int:
    """The smallest nice step that keeps [start, end) at or under `max_points`
    intervals; a requested step is honoured when it is at least that."""
    need = span_s / max(1, max_points)
    step = next((s for s in NICE_STEPS_S if s >= need), None)
    if step is None:
        step = int(math.ceil(need / 86400)) * 86400
    if requested_s is not None and requested_s >= step:
        return int(requested_s)
    return step


def channel_infos(cfg: SiteConfig, store: Store) -> dict[str, ChannelInfo]:
    """Channels of the config, then channels the store knows (replayed recordings)."""
    out = cfg.channel_infos()
    for info in store.channels():
        out.setdefault(info.id, info)
    return out


class LockedStore:
    """The store behind one lock.  FastAPI runs sync routes on a thread pool, and a
    store need not be thread-safe (the embedded store shares one SQLite connection
    and its read transactions); each call is short (a day of minutes: ~1 ms), so
    serialising them costs little."""

    def __init__(self, store: Store):
        self._store = store
        self._lock = threading.RLock()

    def __getattr__(self, name):
        attr = getattr(self._store, name)
        if not callable(attr):
            return attr

        def locked(*a, **k):
            with self._lock:
                return attr(*a, **k)
        return locked


class Context:
    """Everything a request needs: config, store, calendar and the analysis cache."""

    def __init__(self, cfg: SiteConfig, store: Store, cache_ttl_s: float = 300.0, bills_path=None,
                 channels: list[str] | None = None):
        if not isinstance(store, LockedStore):
            store = LockedStore(store)
        self.cfg = cfg
        if bills_path is None and cfg.co2.bills_file is not None:
            bills_path = cfg.resolve_path(cfg.co2.bills_file)
        self.bills_path = bills_path      # optional CSV of bills (mieruka co2 format) for the CO2 sheet
        self.store = store
        self.calendar = SiteCalendar.from_config(cfg)
        self.tz = cfg.tz
        self.cache_ttl_s = cache_ttl_s
        self._cache: dict[tuple[int, int], AnalysisView] = {}
        self._lock = threading.Lock()
        self._key_locks: dict[tuple[int, int], threading.Lock] = {}
        self._memo: dict = {}
        self._default: tuple = (None, None)
        self._infos: tuple | None = None
        # replay: only the recording's channels (the store may hold other recordings' channels,
        # which must not feed this report's CO2 sheet, demand or charts)
        self.only_channels = None if channels is None else set(channels)

    # ------------------------------------------------------------- channels
    def infos(self) -> dict[str, ChannelInfo]:
        """Config + store channels; cached for 2 s (every request looks its channel up)."""
        now = time.monotonic()
        hit = self._infos
        if hit is not None and now - hit[0] < 2.0:
            return hit[1]
        out = channel_infos(self.cfg, self.store)
        if self.only_channels is not None:
            out = {c: i for c, i in out.items() if c in self.only_channels}
        self._infos = (now, out)
        return out

    def info(self, channel: str) -> ChannelInfo:
        infos = self.infos()
        if channel not in infos:
            raise NotFound(f"no channel {channel!r}")
        return infos[channel]

    def channel_state(self, info: ChannelInfo, now: float | None = None) -> dict:
        latest = self.store.latest(info.id)
        now = time.time() if now is None else now
        d = {"id": info.id, "quantity": info.quantity, "unit": info.unit or _unit(info.quantity),
             "meter": info.meter, "equipment_kind": info.equipment_kind, "system": info.system,
             "breaker": info.breaker, "process": info.process, "equipment": info.equipment,
             "time": None, "value": None, "quality": None, "age_s": None, "status": "no_data"}
        if latest is not None:
            t, v, q = latest
            age = now - int(np.datetime64(t, "ms").astype(np.int64)) / 1000
            d.update(time=iso(t, self.tz), value=None if v is None or not math.isfinite(v) else float(v),
                     quality=Quality(int(q)).name.lower(), age_s=round(max(0.0, age), 1))
            stale_after = getattr(self.cfg.api, "stale_after_s", STALE_AFTER_S)
            d["status"] = "fault" if int(q) != Quality.OK else ("stale" if age > stale_after else "ok")
        return d

    # ------------------------------------------------------------- readings
    def readings(self, channel: str, start: dt.datetime | None, end: dt.datetime | None,
                 max_points: int, every_s: float | None = None) -> dict:
        info = self.info(channel)
        if start is None or end is None:
            rng = self.store.time_range(channel)
            if rng is None:
                last = np.datetime64(int(time.time() * 1000), "ms")
            else:
                last = rng[1] + np.timedelta64(1, "ms")
            end = end or dt.datetime.fromtimestamp(int(last.astype(np.int64)) / 1000, dt.timezone.utc)
            start = start or end - dt.timedelta(days=1)
        if end <= start:
            raise Invalid("end must be after start")
        step = choose_interval_s((end - start).total_seconds(), max_points, every_s)
        agg = self.store.aggregate(channel, to_ms(start), to_ms(end), float(step))
        n = len(agg.time)
        if n > max_points:   # a backend aligning intervals differently may add an edge interval
            agg.time, agg.mean, agg.min, agg.max, agg.count = (a[-max_points:] for a in
                                                               (agg.time, agg.mean, agg.min, agg.max, agg.count))
        # numpy arrays go to the response as they are (orjson writes them natively; NaN -> null)
        return {"channel": channel, "quantity": info.quantity, "unit": info.unit or _unit(info.quantity),
                "start": iso(start, self.tz), "end": iso(end, self.tz), "interval_s": step,
                "points": len(agg.time),
                "time": iso_many(agg.time, self.cfg.site.timezone, self.calendar),
                "mean": np.ascontiguousarray(agg.mean, np.float64), "min": np.ascontiguousarray(agg.min, np.float64),
                "max": np.ascontiguousarray(agg.max, np.float64), "count": np.ascontiguousarray(agg.count, np.int64)}

    # ------------------------------------------------------------- analysis
    def default_range(self) -> tuple[dt.datetime, dt.datetime]:
        """The last `findings_days` whole site days of data (or up to now)."""
        rng = self.store.time_range()
        last = (dt.datetime.fromtimestamp(int(rng[1].astype(np.int64)) / 1000, dt.timezone.utc)
                if rng is not None else dt.datetime.now(dt.timezone.utc))
        end_local = last.astimezone(self.tz).replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=1)
        start_local = end_local - dt.timedelta(days=self.cfg.api.findings_days)
        if rng is not None:
            first = dt.datetime.fromtimestamp(int(rng[0].astype(np.int64)) / 1000, dt.timezone.utc)
            first_local = first.astimezone(self.tz).replace(hour=0, minute=0, second=0, microsecond=0)
            start_local = max(start_local, first_local)
        return start_local, end_local

    def _range(self, start, end):
        if start is None or end is None:
            rng = self.store.time_range()
            key = None if rng is None else (int(rng[0].astype(np.int64)), int(rng[1].astype(np.int64)))
            if self._default[0] != key or self._default[1] is None:   # one slot: live data moves it
                self._default = (key, self.default_range())
            hit = self._default[1]
            start, end = start or hit[0], end or hit[1]
        return start, end

    def cached_analysis(self, start: dt.datetime | None, end: dt.datetime | None) -> AnalysisView | None:
        """The cached analysis of the range, if fresh, without waiting on any lock."""
        try:
            start, end = self._range(start, end)
        except Exception:
            return None
        view = self._cache.get((int(start.timestamp() * 1000), int(end.timestamp() * 1000)))
        if view is not None and time.time() - view.computed_at < self.cache_ttl_s:
            return view
        return None

    def analysis(self, start: dt.datetime | None = None, end: dt.datetime | None = None,
                 refresh: bool = False) -> AnalysisView:
        start, end = self._range(start, end)
        if end <= start:
            raise Invalid("end must be after start")
        if (end - start) > dt.timedelta(days=400):
            raise Invalid("the analysis range is at most 400 days")
        key = (int(start.timestamp() * 1000), int(end.timestamp() * 1000))
        with self._lock:
            lock = self._key_locks.setdefault(key, threading.Lock())
        with lock:      # one computation per range, however many clients ask at once
            view = self._cache.get(key)
            if view is not None and not refresh and time.time() - view.computed_at < self.cache_ttl_s:
                return view
            view = run_analysis(self, start, end)
            with self._lock:
                if len(self._cache) > 32:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[key] = view
            return view

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()
            self._memo.clear()
            self._infos = None

    def memo(self, key, value=None):
        """Small TTL cache for derived figures (the CO2 sheet): memo(key) reads, memo(key, v) stores."""
        now = time.time()
        with self._lock:
            if value is None:
                hit = self._memo.get(key)
                return hit[1] if hit and now - hit[0] < self.cache_ttl_s else None
            self._memo[key] = (now, value)
            return value


def _unit(quantity: str) -> str | None:
    q = QUANTITIES.get(quantity)
    return q.unit if q else None


def _floats(a: np.ndarray) -> list[float | None]:
    a = np.asarray(a, np.float64)
    out = a.tolist()
    if not np.isfinite(a).all():
        out = [x if math.isfinite(x) else None for x in out]
    return out
