"""Cursor pagination for lists that grow (channels, findings).

The cursor is opaque to clients (base64 of an offset); `next` is the relative
URL of the following page with every other query parameter kept.
"""
from __future__ import annotations

import base64
from urllib.parse import urlencode

from fastapi import Request

from .errors import ApiError

MAX_LIMIT = 500


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor.encode("ascii") + b"=" * (-len(cursor) % 4)).decode("ascii")
        if not text.startswith("o:"):
            raise ValueError
        offset = int(text[2:])
        if offset < 0:
            raise ValueError
        return offset
    except (ValueError, UnicodeError):
        raise ApiError(422, "query.cursor: not a cursor this API gave out",
                       errors=[{"loc": "query.cursor", "msg": "invalid cursor"}]) from None


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def page(request: Request, items: list, limit: int, cursor: str | None) -> dict:
    offset = decode_cursor(cursor)
    chunk = items[offset:offset + limit]
    nxt = None
    if offset + limit < len(items):
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
        params.append(("cursor", encode_cursor(offset + limit)))
        nxt = f"{request.url.path}?{urlencode(params)}"
    return {"total": len(items), "next": nxt, "items": chunk}
