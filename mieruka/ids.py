"""The one rule for channel ids, wherever ids enter (site config, recordings,
MQTT channel templates, the store's exports).

A channel id is made of letters of any script (Unicode categories L*, with the
combining marks M* that some scripts need), decimal digits (Nd) and `. _ - : /`,
at most 200 characters, and does not start with `-`.  Why so strict: an id is
written into CSV files, Excel workbooks, URLs, HTML and InfluxDB tags; with no
`= + @`, quote, comma, space or control character in it, no id can become a
spreadsheet formula (OWASP "CSV injection"), break a CSV field or a tag, and
a leading `-` (the one formula trigger left among the allowed characters) is
refused too.
"""
from __future__ import annotations

import re
import unicodedata

MAX_ID_CHARS = 200
ID_PUNCTUATION = frozenset("._-:/")
RULE = "letters (any script), digits and . _ - : / only, not starting with -, at most 200 characters"
# leading characters spreadsheets read as the start of a formula (OWASP CSV injection)
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def _id_char(ch: str) -> bool:
    if ch in ID_PUNCTUATION:
        return True
    cat = unicodedata.category(ch)
    return cat[0] in "LM" or cat == "Nd"


def channel_id_problem(text: object) -> str | None:
    """Why `text` is not a valid channel id, or None when it is."""
    if not isinstance(text, str) or not text:
        return "empty channel id"
    if len(text) > MAX_ID_CHARS:
        return f"channel id is {len(text)} characters long (at most {MAX_ID_CHARS})"
    bad = next((ch for ch in text if not _id_char(ch)), None)
    if bad is not None:
        return f"channel id {text!r} contains {bad!r} (U+{ord(bad):04X}); use {RULE}"
    if text[0] == "-":
        return f"channel id {text!r} starts with '-'; use {RULE}"
    return None


def validate_channel_id(text: str) -> str:
    """`text` when it is a valid channel id; ValueError saying why otherwise
    (pydantic turns it into a located config error; readers add file and line)."""
    problem = channel_id_problem(text)
    if problem:
        raise ValueError(problem)
    return text


_TEMPLATE_FIELD = re.compile(r"\{[^{}]*\}")


def validate_id_template(template: str) -> str:
    """A channel-id template (`{device}.power`): its literal text must follow the
    rule (placeholders are filled with cleaned values at run time)."""
    validate_channel_id(_TEMPLATE_FIELD.sub("x", template))
    return template


def clean_channel_id(text: str) -> str:
    """`text` made into a valid channel id: each character outside the rule
    becomes `_` (device names taken from MQTT topics and payloads)."""
    out = "".join(ch if _id_char(ch) else "_" for ch in text)[:MAX_ID_CHARS] or "_"
    return "_" + out[1:] if out[0] == "-" else out


def neutral_text(text: str) -> str:
    """A free-text cell made safe for CSV readers (OWASP CSV injection): a
    leading formula trigger gets a `'` in front, so spreadsheets show the text."""
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text
