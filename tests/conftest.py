"""Shared fixtures: free loopback ports, a temporary data dir, real child processes
stopped on teardown, a socat serial line.  Helpers live in tests/helpers/ (tests
import them from there, never from each other or from this file)."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from helpers.net import free_port
from helpers.proc import start, socat_pty_pair


# CI is a loaded 2-core box: generating examples can be slow there without anything being
# wrong, and a per-example deadline measures the machine, not the code. Tests that set
# their own @settings keep what they set; this is the default for the rest.
settings.register_profile("mieruka", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("mieruka")


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.fixture
def spawn():
    """`spawn(argv, port=..., log=..., ...)` starts a real process (see helpers.proc.Process.spawn);
    every process started so is stopped with its process group at teardown."""
    started = []

    def _spawn(argv, **kw):
        p = start(argv, **kw)
        started.append(p)
        return p
    yield _spawn
    for p in reversed(started):
        p.stop()


@pytest.fixture
def pty_pair(tmp_path):
    """(server end, client end) of a socat pseudo-terminal pair: a serial line."""
    with socat_pty_pair(tmp_path) as ends:
        yield ends
