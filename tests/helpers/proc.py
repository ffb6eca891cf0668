"""Real child processes for tests: each in its own process group (session), so that
stopping it also stops whatever it started (a shell, a helper), and no test leaves a
server behind on teardown, even when it fails half way."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .net import wait_port

REPO = Path(__file__).resolve().parents[2]
# the project's CLI as a child process, with the venv's interpreter when there is one
MIERUKA = [str(REPO / ".venv" / "bin" / "python"), "-m", "mieruka.cli"] if (REPO / ".venv").exists() \
    else [sys.executable, "-m", "mieruka.cli"]


class Process:
    """Starts one command, optionally waits until it listens on a port, and stops it:
    SIGTERM to its process group, SIGKILL to the group after `stop_timeout_s`.
    `kill()` is SIGKILL at once (power-cut tests).  `proc` is the Popen while running."""

    proc: subprocess.Popen | None = None
    stop_timeout_s: float = 10.0
    _log = None

    def spawn(self, argv: list[str], *, log: Path | None = None, port: int | None = None,
              timeout_s: float = 60.0, env: dict[str, str] | None = None, cwd: Path | str | None = None,
              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text: bool = False) -> subprocess.Popen:
        """Start `argv` (stdout and stderr appended to `log` if given) and, with `port`,
        wait until it accepts connections there and it is this process that listens (fails
        fast if it exits first; a port another process holds is never taken for ours)."""
        if log is not None:
            self._log = open(log, "ab")
            stdout, stderr = self._log, subprocess.STDOUT
        self.proc = subprocess.Popen([str(a) for a in argv], stdout=stdout, stderr=stderr, env=env, cwd=cwd,
                                     text=text, start_new_session=True)
        if port is not None:
            try:
                wait_port(port, timeout_s, self.proc)
            except BaseException:
                self.kill()
                raise
        return self.proc

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Ask the process (group) to end with `sig`; SIGKILL it if it does not in time."""
        if self.proc is not None and self.proc.poll() is None:
            self._signal_group(sig)
            try:
                self.proc.wait(self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                pass
            self._signal_group(signal.SIGKILL)       # too slow, or children it left behind in its group
            self.proc.wait()
        self._release()

    def kill(self) -> None:
        """SIGKILL the process group now (no goodbye), and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self._signal_group(signal.SIGKILL)
            self.proc.wait()
        self._release()

    def _release(self) -> None:
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start(argv: list[str], **kw) -> Process:
    """A `Process` running `argv` (keywords as `Process.spawn`)."""
    p = Process()
    p.spawn(argv, **kw)
    return p


@contextlib.contextmanager
def socat_pty_pair(directory: Path, timeout_s: float = 10.0):
    """Two linked pseudo-terminals (a null-modem serial line) from socat: yields their
    paths (`directory/ttyA`, `directory/ttyB`); socat is stopped on exit."""
    a, b = Path(directory) / "ttyA", Path(directory) / "ttyB"
    p = start(["socat", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"])
    try:
        end = time.monotonic() + timeout_s
        while not (a.exists() and b.exists()):
            if time.monotonic() > end or not p.running():
                raise RuntimeError("socat did not create the pty pair")
            time.sleep(0.05)
        yield str(a), str(b)
    finally:
        p.stop()
