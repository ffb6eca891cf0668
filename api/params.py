"""Query parameters of the API read as values (times in the site zone), or a 422 naming them."""
from __future__ import annotations

import datetime as dt

from ..store.base import parse_time
from .errors import ApiError


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
