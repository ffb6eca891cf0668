"""Text stays text in every workbook mieruka writes (OWASP "CSV injection").

openpyxl stores any string that starts with `=` as a formula, so a site name,
a tag or an explanation such as `=HYPERLINK(...)` would become a live formula
in Excel.  mieruka's workbooks hold values only (totals are computed before
writing), so every writer calls `text_only()` just before saving: every text
cell becomes a string cell (data type `s`), and text starting with a formula
trigger also gets Excel's quote prefix, so it stays text even after someone
edits the cell.  Escaping alone is not relied on: the cell type says "text".
"""
from __future__ import annotations

import datetime as dt
import io
import re
import zipfile

from .ids import FORMULA_TRIGGERS


def text_only(wb) -> int:
    """Make every text cell of `wb` a string cell; returns how many cells had
    been taken for formulas."""
    changed = 0
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                v = cell.value
                if not isinstance(v, str):
                    continue
                if cell.data_type != "s":
                    cell.data_type = "s"
                    changed += 1
                if v.startswith(FORMULA_TRIGGERS):
                    cell.quotePrefix = True
    return changed


# Zip entries and document properties carry the time of writing; an auditor's
# replay must give the same bytes, so both are set to one stated time.
_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)      # the earliest time a zip entry can hold
_CORE_TIMES = re.compile(r"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:\2>)")


def workbook_bytes(wb, stamp: dt.datetime | None = None) -> bytes:
    """`wb` saved as .xlsx bytes that depend only on its content: the zip entries'
    times are fixed and the document's created/modified properties are `stamp`
    (UTC; e.g. the end of the period analysed), or 2000-01-01 when not given.
    openpyxl stamps both with the time of saving otherwise."""
    when = (stamp or dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc))
    if when.tzinfo is not None:
        when = when.astimezone(dt.timezone.utc)
    iso = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    raw = io.BytesIO()
    wb.save(raw)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw.getvalue())) as src, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = _CORE_TIMES.sub(lambda m: m.group(1) + iso + m.group(3), data.decode("utf-8")).encode("utf-8")
            zi = zipfile.ZipInfo(info.filename, date_time=_FIXED_ZIP_TIME)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o600 << 16
            dst.writestr(zi, data)
    return out.getvalue()
