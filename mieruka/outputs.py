"""Output files of the commands: checked before any work, written whole or not at all.

A report, workbook or recording asked for in a folder that does not exist (or
that cannot be written) must stop the command at once with one line naming the
option and the folder, not after minutes of analysis with a traceback, and
never leave half a file behind.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import InputError


def check_output(path: str | Path, option: str = "output") -> Path:
    """`path` as a Path if a file can be written there; else InputError naming `option`."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{option} {p}: is a folder; give a file name")
    folder = p.parent
    if not folder.is_dir():
        raise InputError(f"{option} {p}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"{option} {p}: the folder {folder} is not writable")
    return p


def write_atomic(path: str | Path, data: bytes | None = None, writer=None, option: str = "output") -> None:
    """Write `data` (or let `writer(tmp_path)` write) to a unique hidden file beside
    `path`, then rename it over `path`: a reader sees the old file or the new one,
    never a part (disk full, killed).  An OSError becomes one line naming `option`."""
    write_all_atomic([(path, data, writer, option)])


def write_all_atomic(items: list[tuple[str | Path, bytes | None, object, str]]) -> None:
    """Several outputs of one command, (path, data, writer, option) each: every one
    is written to its temporary file first, and only when all are complete are
    they renamed into place, so a failure (disk full, a folder not writable) leaves
    none of them half-written and none replaced."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data, writer, option in items:
            p = Path(path)
            try:
                # the real suffix last: writers such as openpyxl check it
                fd, tmp = tempfile.mkstemp(prefix=f".{p.stem}.", suffix=f".part{p.suffix}", dir=p.parent)
                staged.append((Path(tmp), p))
                with os.fdopen(fd, "wb") as f:
                    if data is not None:
                        f.write(data)
                if writer is not None:
                    writer(Path(tmp))
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(tmp, 0o666 & ~umask)      # mkstemp makes 0600; give the file the usual mode
            except OSError as e:
                raise InputError(f"{option} {p}: cannot write: {e.strerror or e}") from None
        for tmp, p in staged:
            os.replace(tmp, p)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)


def fsync_dir(path: str | Path) -> None:
    """Make a rename or a new file in `path` durable (the folder's entry, not only the data)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
