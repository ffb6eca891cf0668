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
