"""Free loopback ports and waiting for things to come up (only 127.0.0.1)."""
from __future__ import annotations

import collections
import fcntl
import os
import socket
import subprocess
import tempfile
import time


# Ports handed out by bind(0) come from the kernel's ephemeral range, which every xdist worker
# (and every outgoing connection) draws from: a port one worker was just given and released can
# be given to the other before its server binds, and a server that then fails to bind leaves the
# other's server answering in its place. So each worker takes ports from its own block below the
# ephemeral range, in turn, and only ports that bind right now. Another test run on the same
# machine (a developer's, beside CI's) has the same blocks: a port handed out is also locked
# (flock on a file in _LOCK_DIR) for as long as the last _KEEP_LOCKS ports, and a locked port
# is skipped, so two runs never hand out the same port between its choice and its server's bind
# (or across a server's restart on the same port).
_BLOCK = 1500
_FIRST = 20_000
_next: dict[int, int] = {}
_LOCK_DIR = os.path.join(tempfile.gettempdir(), "mieruka-test-ports")
_KEEP_LOCKS = 256
_locks: collections.deque = collections.deque()


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


def _lock(port: int) -> bool:
    """Take this machine's lock on `port` (False: another test process holds it)."""
    os.makedirs(_LOCK_DIR, exist_ok=True)
    fd = os.open(os.path.join(_LOCK_DIR, str(port)), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _locks.append(fd)
    while len(_locks) > _KEEP_LOCKS:
        os.close(_locks.popleft())       # closing the file releases its lock
    return True


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now, from this test worker's own block (20000-31999,
    below the kernel's ephemeral ports), never the same twice in a process while others remain."""
    low = _FIRST + _worker_index() * _BLOCK
    start = _next.setdefault(low, low + (os.getpid() * 37) % _BLOCK)
    for i in range(_BLOCK):
        port = low + (start - low + i) % _BLOCK
        if _bindable(port) and _lock(port):
            _next[low] = low + (port - low + 1) % _BLOCK
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:     # the whole block is busy
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening_inodes(port: int) -> set[str] | None:
    """Socket inodes listening on TCP `port` (any address), from /proc/net/tcp{,6};
    None where there is no /proc (the ownership check is then skipped)."""
    found, seen = set(), False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        seen = True
        for row in rows:
            col = row.split()
            if len(col) > 9 and col[3] == "0A" and int(col[1].rsplit(":", 1)[1], 16) == port:
                found.add(col[9])
    return found if seen else None


def _group_sockets(pgid: int) -> set[str]:
    """Socket inodes open in any process of process group `pgid` (a spawned server and
    whatever it started: helpers.proc starts each in its own group)."""
    inodes = set()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
            if int(stat[stat.rindex(")") + 2:].split()[2]) != pgid:
                continue
            for fd in os.listdir(f"/proc/{d}/fd"):
                link = os.readlink(f"/proc/{d}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        except (OSError, ValueError, IndexError):
            continue                     # the process ended while we looked
    return inodes


def listens(port: int, proc: subprocess.Popen) -> bool | None:
    """Does `proc` (or a process of its group) hold the listening socket on `port`?
    None: the port has no listener at all (or no /proc to tell)."""
    mine = _listening_inodes(port)
    if not mine:
        return None
    return bool(mine & _group_sockets(proc.pid))


def wait_port(port: int, timeout_s: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    """Return once 127.0.0.1:`port` accepts TCP connections and, with `proc`, once it is
    `proc` (its process group) that listens there: a port that answers for another
    process (a server left over, another test run on this machine) is not ours to test
    against. Fails fast (RuntimeError) when `proc` exits first."""
    end = time.monotonic() + timeout_s
    other = False
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            held = " (another process listens there)" if other or _listening_inodes(port) else ""
            raise RuntimeError(f"{proc.args[0]} exited ({proc.returncode}) before listening on "
                               f"127.0.0.1:{port}{held}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                pass
        except OSError:
            time.sleep(0.05)
            continue
        if proc is None or not os.path.exists("/proc/net/tcp"):
            return
        if listens(port, proc):
            return
        other = True                         # answered, but not by our process (yet): wait for it or its exit
        time.sleep(0.05)
    raise TimeoutError(f"{proc.args[0] if proc is not None else 'nothing'} listens on 127.0.0.1:{port} "
                       f"after {timeout_s} s" + (" (another process holds that port)" if other else ""))


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
