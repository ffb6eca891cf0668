"""Shared fixtures: free loopback ports, a temporary data dir, the demo site config
pointed at both.  Other areas may add fixtures here (small edits)."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DEMO_SITE = REPO / "config" / "examples" / "demo-site.toml"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


def demo_site(port: int, data_dir: Path, text_edit=None):
    """The demo site config with its Modbus port and data dir set (optionally edited text)."""
    from mieruka.site import load_site, parse_site
    env = {"MIERUKA_MODBUS_PORT": str(port), "MIERUKA_DATA_DIR": str(data_dir)}
    if text_edit is None:
        return load_site(DEMO_SITE, env=env)
    import tomllib
    text = text_edit(DEMO_SITE.read_text("utf-8"))
    return parse_site(tomllib.loads(text), str(DEMO_SITE), env, DEMO_SITE)
