"""The store interface shared by the embedded and the InfluxDB backends."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from ..models import ChannelInfo, ReadingBatch

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


@runtime_checkable
class Store(Protocol):
    def write(self, batch: ReadingBatch) -> None:
        """Store a batch durably (returns after commit); idempotent on (time, channel)."""

    def read(self, channel: str, start: TimeLike = None, end: TimeLike = None,
             *, ok_only: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(times datetime64[ms] UTC, values float64) of a channel in [start, end), time-ordered."""

    def read_quality(self, channel: str, start: TimeLike = None, end: TimeLike = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(times, values, quality codes) including non-OK readings."""

    def aggregate(self, channel: str, start: TimeLike, end: TimeLike, every_s: float) -> Aggregate:
        """Mean/min/max/count of OK readings per interval of `every_s` seconds."""

    def latest(self, channel: str) -> tuple[np.datetime64, float, int] | None:
        """The newest reading of a channel (time, value, quality), or None."""

    def set_channels(self, infos: list[ChannelInfo]) -> None:
        """Record channel metadata (quantity, tags) so that readers need no site config."""

    def channels(self) -> list[ChannelInfo]:
        """Channels the store knows (from metadata, or seen in data)."""

    def time_range(self, channel: str | None = None) -> tuple[np.datetime64, np.datetime64] | None:
        """First and last time stored (of a channel, or of all)."""

    def apply_retention(self) -> int:
        """Delete what is older than the retention setting; return rows deleted."""

    def close(self) -> None: ...


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
    return t


def continuous_counter(t: np.ndarray, raw: np.ndarray, offset_times: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Raw counter readings plus the wrap/reset offset in force at each time: a
    counter that never steps down, so `np.diff` is the consumption.  Both stores
    keep offsets as (time from which it applies, cumulative offset)."""
    if not len(offset_times) or not len(t):
        return raw
    i = np.searchsorted(offset_times, t, side="right") - 1
    return raw + np.where(i >= 0, offsets[np.maximum(i, 0)], 0.0)
