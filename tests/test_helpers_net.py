"""The test helpers' own guarantees (tests/helpers/net.py, proc.py): a server is taken as
started only once it is the one listening on its port, and a port handed out is not
handed out again by another test process on this machine while it is locked."""
from __future__ import annotations

import fcntl
import os
import socket
import sys

import pytest

from helpers import net
from helpers.net import free_port
from helpers.proc import start


def test_a_port_another_process_answers_on_is_not_taken_for_the_spawned_server():
    port = free_port()
    with socket.socket() as other:                    # someone else listens there already
        other.bind(("127.0.0.1", port))
        other.listen()
        # a "server" that never gets the port: bind fails, it exits 1 (influxd, mosquitto do the same)
        code = (f"import socket, time; time.sleep(0.5); s = socket.socket(); "
                f"s.bind(('127.0.0.1', {port}))")
        with pytest.raises(RuntimeError, match="another process listens there"):
            start([sys.executable, "-c", code], port=port, timeout_s=30)
        # one that does not exit either: never taken as ready, a clear timeout instead
        with pytest.raises(TimeoutError, match="another process holds that port"):
            start([sys.executable, "-c", "import time; time.sleep(60)"], port=port, timeout_s=2)


def test_the_spawned_server_listening_on_its_port_is_ready():
    port = free_port()
    code = (f"import socket, time; s = socket.socket(); s.bind(('127.0.0.1', {port})); s.listen(); "
            f"time.sleep(60)")
    p = start([sys.executable, "-c", code], port=port, timeout_s=30)
    try:
        assert net.listens(port, p.proc)
    finally:
        p.stop()


def test_a_port_locked_by_another_test_process_is_skipped(monkeypatch):
    port = free_port()
    # that port again, as another run would choose it: its lock is held (by another open file,
    # as another process would hold it), so the next port is handed out instead
    fd = os.open(os.path.join(net._LOCK_DIR, str(port)), os.O_RDWR)
    try:
        for held in list(net._locks):             # our own locks released: only `fd` holds the port
            os.close(held)
        net._locks.clear()
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        low = net._FIRST + net._worker_index() * net._BLOCK
        monkeypatch.setitem(net._next, low, port)
        assert free_port() != port
    finally:
        os.close(fd)
