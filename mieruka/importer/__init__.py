"""Logger and spreadsheet exports (CSV/TSV in UTF-8 or Shift_JIS, .xlsx) into
recordings (format v1), driven by a mapping file: see :mod:`.mapping` for its
keys and docs/replay.md for the auditor's path from an export to a report."""
from __future__ import annotations

from .core import ChannelRows, ImportResult, import_files
from .guess import guess_mapping, unit_in_header
from .mapping import Mapping, load_mapping

__all__ = ["ChannelRows", "ImportResult", "Mapping", "guess_mapping", "import_files", "load_mapping",
           "unit_in_header", "import_to_recording"]


def import_to_recording(paths, mapping_path, out_path, memory_limit: int | None = None,
                        progress=None) -> ImportResult:
    """Import `paths` with the mapping file and write the recording `out_path` (atomically)."""
    from pathlib import Path

    from ..errors import InputError
    out = Path(out_path)
    for p in paths:
        if Path(p).exists() and out.exists() and out.resolve() == Path(p).resolve():
            raise InputError(f"{out}: is one of the input files; write the recording elsewhere")
    if not out.parent.resolve().is_dir():
        raise InputError(f"{out}: the folder {out.parent} does not exist")
    m = load_mapping(mapping_path)
    res = import_files(paths, m, mapping_path, memory_limit,
                       None if progress is None else (lambda f: progress(0.5 * f)))
    zone = m.time.zone if "/" in m.time.zone or m.time.zone == "UTC" else None
    try:
        res.write(out, tz=zone, progress=None if progress is None else (lambda f: progress(0.5 + 0.5 * f)))
    except OSError as e:
        raise InputError(f"{out}: cannot write the recording: {e.strerror or e}") from None
    return res
