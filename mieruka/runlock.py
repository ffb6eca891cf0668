"""One collector per data directory: `collect` holds an exclusive `flock` on
`<data_dir>/collect.lock` while it runs.  The kernel drops the lock when the
process ends, however it ends (kill -9, power cut), so a stale lock file never
blocks a restart.  `restore` and other tools ask `collector_pid` before they
replace files a running collector writes."""
from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator

from .errors import MierukaError

LOCK_NAME = "collect.lock"


class CollectorRunning(MierukaError):
    """Another collector holds the data directory."""


@contextlib.contextmanager
def collector_lock(data_dir: Path) -> Iterator[None]:
    """Hold the data directory's collector lock for the duration of the block."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            raise CollectorRunning(f"{data_dir}: another collector is running on this data directory"
                                   + (f" (pid {pid})" if pid else "")) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)          # releases the lock


def collector_pid(data_dir: Path) -> int | None:
    """The pid of the collector holding `data_dir` (0 if unknown), or None when none runs."""
    path = data_dir / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd) or 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip() or 0) or None
    except (ValueError, OSError):
        return None
