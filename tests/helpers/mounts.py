"""Small real file systems for disk-full and read-only tests (the tests run as root)."""
from __future__ import annotations

import contextlib
import subprocess
import tempfile
from pathlib import Path

import pytest


def mount_tmpfs(d: Path, size: str = "2m") -> None:
    """Mount a tmpfs of `size` on the existing folder `d`; skip the test where that is not allowed."""
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(d)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {r.stderr.strip()}")


@contextlib.contextmanager
def temporary_tmpfs(size: str = "2m", prefix: str = "mieruka-tmpfs-"):
    """A fresh folder with a tmpfs of `size` mounted on it, unmounted and removed afterwards."""
    d = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        mount_tmpfs(d, size)
    except BaseException:
        d.rmdir()
        raise
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], check=False)
        d.rmdir()
