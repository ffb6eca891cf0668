"""ISO 8601 in the site zone, with its offset, everywhere the API speaks time."""
from __future__ import annotations

import datetime as dt

import numpy as np

from ..recording import format_times
from ..store.base import parse_time
from .errors import ApiError


def iso_many(times: np.ndarray, tz: str) -> list[str]:
    """datetime64[ms] UTC -> ['2026-04-01T09:00:00+09:00', ...] (vectorised)."""
    if len(times) == 0:
        return []
    return format_times(times, tz).astype(str).tolist()


def iso(t: np.datetime64 | dt.datetime | None, tz) -> str | None:
    if t is None:
        return None
    if isinstance(t, np.datetime64):
        ms = int(t.astype("datetime64[ms]").astype(np.int64))
        t = dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc)
    return t.astimezone(tz).isoformat()


def to_ms(t: dt.datetime) -> np.datetime64:
    return np.datetime64(int(round(t.timestamp() * 1000)), "ms")


def parse_param(name: str, text: str | None, tz) -> dt.datetime | None:
    """A query parameter as an aware datetime (no offset: site time), or a 422 naming it."""
    if text is None or text == "":
        return None
    try:
        t = parse_time(text, tz)
        t.timestamp()   # out-of-range years fail here, not later
        if not (1970 <= t.year <= 2200):
            raise ValueError(f"{text!r}: year out of range 1970..2200")
        return t
    except (ValueError, OverflowError, OSError) as e:
        raise ApiError(422, f"query.{name}: {e}", errors=[{"loc": f"query.{name}", "msg": str(e)}]) from None
