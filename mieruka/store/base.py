"""The store interface shared by the embedded and the InfluxDB backends."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import numpy as np

from ..models import ChannelInfo, Quality, ReadingBatch

if TYPE_CHECKING:
    from ..site import SiteConfig

TimeLike = dt.datetime | np.datetime64 | str | None


@dataclass
class Aggregate:
    """Downsampled readings: one row per interval that has data (UTC starts)."""

    time: np.ndarray      # datetime64[ms], interval start
    mean: np.ndarray
    min: np.ndarray
    max: np.ndarray
    count: np.ndarray     # int64, OK readings in the interval


class Store(ABC):
    """What every store backend provides, and all that its users may call.

    Collectors write (with continuous-counter offsets in the same commit) and restore
    counter state from it; analytics, replay, export and the API read.  Both backends
    (`EmbeddedStore`, `InfluxStore`) implement every abstract method, so callers never
    probe with `hasattr`.  Times are datetime64[ms] UTC; `TimeLike` bounds are
    [start, end), texts without offset taken in the site zone."""

    # ------------------------------------------------------------------ writing
    @abstractmethod
    def write(self, batch: ReadingBatch,
              counter_offsets: list[tuple[str, np.datetime64, float]] | None = None) -> None:
        """Store a batch durably (returns after commit); idempotent on (time, channel).
        `counter_offsets` (channel, time from which it applies, cumulative offset) of
        continuous counters are committed with it (before the readings, never after)."""

    @abstractmethod
    def set_channels(self, infos: list[ChannelInfo]) -> None:
        """Record channel metadata (quantity, tags) so that readers need no site config."""

    @abstractmethod
    def apply_retention(self, now: TimeLike = None) -> int:
        """Delete what is older than the retention setting before `now` (default: the
        backend's notion of now); return readings deleted (-1: some, count unknown)."""

    # ------------------------------------------------------------------ reading
    @abstractmethod
    def read_quality(self, channel: str, start: TimeLike = None, end: TimeLike = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(times, values, quality codes) of a channel in [start, end), time-ordered,
        including non-OK readings."""

    def read(self, channel: str, start: TimeLike = None, end: TimeLike = None,
             *, ok_only: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(times datetime64[ms] UTC, values float64) of a channel in [start, end), time-ordered."""
        t, v, q = self.read_quality(channel, start, end)
        if ok_only:
            keep = q == Quality.OK
            if not keep.all():
                return t[keep], v[keep]
        return t, v

    @abstractmethod
    def counter_offsets(self, channel: str) -> tuple[np.ndarray, np.ndarray]:
        """(times, cumulative offsets) of a counter channel, time-ordered: from each
        time on, continuous = raw + offset.  Empty arrays for a channel without any."""

    def read_continuous(self, channel: str, start: TimeLike = None, end: TimeLike = None
                        ) -> tuple[np.ndarray, np.ndarray]:
        """A counter channel as a continuous counter (raw + offset in force at each time):
        never steps down across wraps and resets, so `np.diff` is the consumption."""
        t, v = self.read(channel, start, end)
        return t, continuous_counter(t, v, *self.counter_offsets(channel))

    @abstractmethod
    def aggregate(self, channel: str, start: TimeLike, end: TimeLike, every_s: float) -> Aggregate:
        """Mean/min/max/count of OK readings per interval of `every_s` seconds, intervals
        aligned on `start` (or on the epoch when start is None)."""

    @abstractmethod
    def latest(self, channel: str) -> tuple[np.datetime64, float, int] | None:
        """The newest reading of a channel (time, value, quality), or None."""

    @abstractmethod
    def latest_ok(self, channel: str) -> tuple[np.datetime64, float] | None:
        """The newest OK reading of a channel (time, value), or None: counters resume
        from it after a restart."""

    @abstractmethod
    def count(self, channel: str | None = None) -> int:
        """Readings stored (of one channel, or of all), every quality."""

    def readings_estimate(self, start: TimeLike = None, end: TimeLike = None) -> int:
        """About how many readings (all channels) lie in [start, end): a size for
        planning work (fleet runs split large sites), cheaper than reading them."""
        return self.count()

    @abstractmethod
    def channels(self) -> list[ChannelInfo]:
        """Channels the store knows (from metadata, or seen in data)."""

    @abstractmethod
    def time_range(self, channel: str | None = None) -> tuple[np.datetime64, np.datetime64] | None:
        """First and last time stored (of a channel, or of all), or None when empty."""

    # ------------------------------------------------------------------ lifetime
    @abstractmethod
    def close(self) -> None:
        """Commit what is pending and release the connection (idempotent)."""

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_store(cfg: "SiteConfig", *, readonly: bool = False) -> Store:
    """The store the site config names: embedded unless `[storage] backend = "influxdb"`."""
    if cfg.storage.backend == "influxdb":
        from .influx import InfluxStore
        return InfluxStore.from_site(cfg)
    from .embedded import EmbeddedStore
    return EmbeddedStore.from_site(cfg, readonly=readonly)


def to_datetime64(t: TimeLike, tz=None) -> np.datetime64 | None:
    """A time given as datetime, numpy or ISO 8601 text -> datetime64[ms] UTC.
    Naive datetimes and texts without offset are taken in `tz` (the site zone), or UTC."""
    if t is None:
        return None
    if isinstance(t, np.datetime64):
        return t.astype("datetime64[ms]")
    if isinstance(t, str):
        t = parse_time(t, tz)
    if t.tzinfo is None:
        t = t.replace(tzinfo=tz or dt.timezone.utc)
    return np.datetime64(int(t.timestamp() * 1000), "ms")


def parse_time(text: str, tz=None) -> dt.datetime:
    """ISO 8601 date or datetime; without offset it is taken in `tz` (site time)."""
    try:
        t = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time (e.g. 2026-04-01T00:00:00+09:00 or 2026-04-01)") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=tz or dt.timezone.utc)
    if not supported_time(t):
        raise ValueError(f"{text!r}: year out of range 1970..2200")
    return t


def supported_time(t: dt.datetime) -> bool:
    """True for an aware time in the years 1970..2200.  Year 0001 or 9999 overflows once
    shifted to UTC or made a timestamp (an OverflowError traceback in demand and bill);
    no meter reading lies outside these years."""
    try:
        t.timestamp()
    except (OverflowError, ValueError, OSError):
        return False
    return 1970 <= t.year <= 2200


def continuous_counter(t: np.ndarray, raw: np.ndarray, offset_times: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Raw counter readings plus the wrap/reset offset in force at each time: a
    counter that never steps down, so `np.diff` is the consumption.  Both stores
    keep offsets as (time from which it applies, cumulative offset)."""
    if not len(offset_times) or not len(t):
        return raw
    i = np.searchsorted(offset_times, t, side="right") - 1
    return raw + np.where(i >= 0, offsets[np.maximum(i, 0)], 0.0)
