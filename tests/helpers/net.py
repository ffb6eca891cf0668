"""Free loopback ports and waiting for things to come up (only 127.0.0.1)."""
from __future__ import annotations

import socket
import subprocess
import time


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
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
