"""Free loopback ports and waiting for things to come up (only 127.0.0.1)."""
from __future__ import annotations

import os
import socket
import subprocess
import time


# Ports handed out by bind(0) come from the kernel's ephemeral range, which every xdist worker
# (and every outgoing connection) draws from: a port one worker was just given and released can
# be given to the other before its server binds, and a server that then fails to bind leaves the
# other's server answering in its place. So each worker takes ports from its own block below the
# ephemeral range, in turn, and only ports that bind right now.
_BLOCK = 1500
_FIRST = 20_000
_next: dict[int, int] = {}


def _worker_index() -> int:
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    digits = "".join(ch for ch in name if ch.isdigit())
    return int(digits or 0) % 8


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now, from this test worker's own block (20000-31999,
    below the kernel's ephemeral ports), never the same twice in a process while others remain."""
    low = _FIRST + _worker_index() * _BLOCK
    start = _next.setdefault(low, low + (os.getpid() * 37) % _BLOCK)
    for i in range(_BLOCK):
        port = low + (start - low + i) % _BLOCK
        if _bindable(port):
            _next[low] = low + (port - low + 1) % _BLOCK
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:     # the whole block is busy
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout_s: float = 10.0, proc: subprocess.Popen | None = None) -> None:
    """Return once something accepts TCP connections on 127.0.0.1:`port`; fail fast
    (RuntimeError) when `proc`, the process expected to listen, has exited."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited ({proc.returncode}) before listening on 127.0.0.1:{port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")


def wait_for(pred, timeout_s: float = 20.0, every_s: float = 0.2, what: str = "condition"):
    """Poll `pred()` until it returns something true (returned); TimeoutError with the last value."""
    end = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < end:
        last = pred()
        if last:
            return last
        time.sleep(every_s)
    raise TimeoutError(f"timed out waiting for {what} (last: {last!r})")
