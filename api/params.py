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
        return parse_time(text, tz)          # also refuses years outside 1970..2200
    except ValueError as e:
        raise ApiError(422, f"query.{name}: {e}", errors=[{"loc": f"query.{name}", "msg": str(e)}]) from None
