"""deploy/install.sh and deploy/wheelhouse.sh for real: a wheelhouse for this host, an
offline install (`--wheelhouse`, with every package index made unreachable) under
`--root`, the units checked by `systemd-analyze verify`, then the units' own ExecStart
lines run as the `mieruka` user: collect polls the simulator into the store and serve
answers with the token the installer made.  Running the installer again (an upgrade)
keeps the config, the tokens and the data.

Needs root (it creates the `mieruka` system user, as on a gateway)."""
from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from helpers.demo import DEMO_SITE, REPO
from helpers.net import free_port
from mieruka.simulators.modbus_server import ModbusSimulator
from mieruka.site import load_site
from mieruka.store.embedded import SCHEMA_VERSION, EmbeddedStore, schema_version

UNITS = ("mieruka-collect.service", "mieruka-serve.service")
HARDENING = ("NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
             "CapabilityBoundingSet=\n", "Restart=always", "StandardOutput=journal", "User=mieruka")

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="creates the mieruka system user: run as root (CI does)")


def _offline_env() -> dict[str, str]:
    """pip with no index at all: an install that tries the network fails."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_INDEX_URL="http://127.0.0.1:9/simple", PIP_NO_CACHE_DIR="1",
               PIP_RETRIES="0", PIP_TIMEOUT="2")
    return env


def _install(root: Path, wheelhouse: Path) -> str:
    r = subprocess.run(["bash", str(REPO / "deploy" / "install.sh"), "--root", str(root), "--wheelhouse",
                        str(wheelhouse)], env=_offline_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def _exec_start(unit: Path) -> list[str]:
    line = next(l for l in unit.read_text().splitlines() if l.startswith("ExecStart="))
    return shlex.split(line.removeprefix("ExecStart="))


def _env_file(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def _as_mieruka(argv: list[str], env_file: Path, cwd: Path) -> subprocess.Popen:
    """Start a unit's ExecStart as systemd would: as mieruka (with its groups), no
    capabilities, no new privileges, the unit's EnvironmentFile; setpriv execs the
    command itself, so signals reach it directly."""
    u = pwd.getpwnam("mieruka")
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", **_env_file(env_file)}
    return subprocess.Popen([shutil.which("setpriv") or "/usr/bin/setpriv", f"--reuid={u.pw_uid}",
                             f"--regid={u.pw_gid}", "--init-groups", "--inh-caps=-all", "--bounding-set=-all",
                             "--no-new-privs", "--", *argv], env=env, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _site_text(data: Path, port: int, api_port: int) -> str:
    """The demo factory's meters, pointed at the simulator, in the installed layout."""
    text = DEMO_SITE.read_text("utf-8")
    text = text.replace("${MIERUKA_DATA_DIR:-./mieruka-data}", str(data))
    text = text.replace('"${MIERUKA_MODBUS_PORT:-5020}"', str(port))
    return text + (f'\n[api]\nhost = "127.0.0.1"\nport = {api_port}\ntokens_file = "tokens.toml"\n'
                   f'\n[collector]\nmetrics_port = {free_port()}\n')


@needs_root
@pytest.mark.slow
@pytest.mark.timeout(1200)      # a wheelhouse and two offline installs: 85 s quiet, 279 s on a loaded box
def test_offline_install_runs_services_as_mieruka_and_upgrade_keeps_everything(tmp_path):
    wheelhouse = tmp_path / "wheelhouse"
    r = subprocess.run(["bash", str(REPO / "deploy" / "wheelhouse.sh"), str(wheelhouse), "--host-only"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert list(wheelhouse.glob("mieruka-*.whl")) and list(wheelhouse.glob("numpy-*.whl"))
    # the mieruka user must reach the tree: not under pytest's private tmp
    root = Path(tempfile.mkdtemp(prefix="mieruka-install-", dir="/var/tmp"))
    os.chmod(root, 0o755)
    try:
        out = _install(root, wheelhouse)
        token = re.search(r"first API token \(role admin.*\): (\S+)", out).group(1)
        etc, data, units = root / "etc/mieruka", root / "var/lib/mieruka", root / "etc/systemd/system"
        uid = pwd.getpwnam("mieruka").pw_uid
        # layout, owners and modes
        assert (root / "opt/mieruka/venv/bin/mieruka").is_file()
        assert (etc / "tokens.toml").stat().st_mode & 0o777 == 0o600 and (etc / "tokens.toml").stat().st_uid == uid
        assert (etc / "mieruka.env").stat().st_mode & 0o777 == 0o600
        assert data.stat().st_uid == uid and data.stat().st_mode & 0o007 == 0
        assert hashlib.sha256(token.encode()).hexdigest() in (etc / "tokens.toml").read_text()
        for u in UNITS:
            text = (units / u).read_text()
            assert all(h in text for h in HARDENING), u
            assert f"ReadWritePaths={data}" in text and f"ExecStart={root}/opt/mieruka/venv/bin/mieruka" in text
        assert "ExecReload=/bin/kill -HUP $MAINPID" in (units / UNITS[0]).read_text()
        assert "SupplementaryGroups=dialout" in (units / UNITS[0]).read_text()
        if shutil.which("systemd-analyze"):
            v = subprocess.run(["systemd-analyze", "verify", *(str(units / u) for u in UNITS)],
                               capture_output=True, text=True)
            assert v.returncode == 0 and not v.stderr.strip(), v.stderr

        # the gateway's own config: demo meters served by the simulator
        port, api_port = free_port(), free_port()
        (etc / "site.toml").write_text(_site_text(data, port, api_port), "utf-8")
        shutil.copy(DEMO_SITE.parent / "demo-scenario.toml", etc)
        cfg = load_site(etc / "site.toml")
        assert [t.name for t in cfg.api.tokens] == ["admin"]
        with ModbusSimulator(cfg, port=port):
            collect = _as_mieruka(_exec_start(units / UNITS[0]), etc / "mieruka.env", data)
            serve = _as_mieruka(_exec_start(units / UNITS[1]), etc / "mieruka.env", data)
            try:
                base = f"http://127.0.0.1:{api_port}"
                deadline = time.time() + 60
                while True:
                    assert collect.poll() is None, collect.communicate()[1]
                    assert serve.poll() is None, serve.communicate()[1]
                    try:
                        if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    assert time.time() < deadline, "serve did not answer"
                    time.sleep(0.5)
                # a few polls of every meter stored (however long a loaded machine takes)
                store_file = data / "mieruka.sqlite"
                deadline = time.time() + 90
                while True:
                    assert collect.poll() is None, collect.communicate()[1]
                    if store_file.exists():
                        with contextlib.suppress(Exception):    # (schema not committed yet)
                            with EmbeddedStore(store_file, readonly=True) as s:
                                if s.count() >= 13 * 2:
                                    break
                    assert time.time() < deadline, "the collector stored fewer than 26 readings in 90 s"
                    time.sleep(0.5)
                h = httpx.get(base + "/api/v1/collector/health", headers={"Authorization": f"Bearer {token}"})
                assert h.status_code == 200, h.text
                assert httpx.get(base + "/api/v1/collector/health").status_code == 401
            finally:
                for p in (collect, serve):
                    p.send_signal(signal.SIGTERM)
                for p in (collect, serve):
                    try:
                        p.wait(30)
                    except subprocess.TimeoutExpired:
                        p.kill()
        assert collect.returncode == 0, collect.stderr.read()
        store = data / "mieruka.sqlite"
        assert store.stat().st_uid == uid                       # written by the service user
        with EmbeddedStore(store, readonly=True) as s:
            n = s.count()
            assert n >= 13 * 2 and schema_version(s.db) == SCHEMA_VERSION

        # again: an upgrade keeps config, tokens and data
        before = {p: p.read_bytes() for p in (etc / "site.toml", etc / "tokens.toml", etc / "mieruka.env")}
        out2 = _install(root, wheelhouse)
        assert "first API token" not in out2
        assert {p: p.read_bytes() for p in before} == before
        assert (etc / "tokens.toml").stat().st_mode & 0o777 == 0o600 and (etc / "tokens.toml").stat().st_uid == uid
        with EmbeddedStore(store, readonly=True) as s:
            assert s.count() == n
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_units_render_and_verify_without_installing(tmp_path):
    """The shipped unit files alone, paths moved into a temporary tree as --root does:
    (where systemd-analyze exists) clean against a stand-in executable, and locked down."""
    exe = tmp_path / "opt/mieruka/venv/bin/mieruka"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    for u in UNITS:
        text = (REPO / "deploy/systemd" / u).read_text()
        assert "ExecStart=/opt/mieruka/venv/bin/mieruka " in text and "ReadWritePaths=/var/lib/mieruka" in text
        text = (text.replace("/opt/mieruka", str(tmp_path / "opt/mieruka")).replace("/etc/mieruka", str(tmp_path / "etc"))
                .replace("/var/lib/mieruka", str(tmp_path / "data")))
        (tmp_path / u).write_text(text)
    if shutil.which("systemd-analyze"):
        v = subprocess.run(["systemd-analyze", "verify", *(str(tmp_path / u) for u in UNITS)],
                           capture_output=True, text=True)
        assert v.returncode == 0 and not v.stderr.strip(), v.stderr
        for u in UNITS:         # systemd's own exposure score: 0 (locked down) .. 10 (unprotected)
            s = subprocess.run(["systemd-analyze", "security", "--offline=true", str(tmp_path / u)],
                               capture_output=True, text=True)
            score = re.search(r"Overall exposure level for \S+: ([\d.]+)", s.stdout)
            assert score and float(score.group(1)) <= 2.5, s.stdout[-500:]


def test_install_sh_refuses_bad_arguments_with_one_line(tmp_path):
    sh = str(REPO / "deploy" / "install.sh")
    for args, message in [(["--bogus"], "unknown argument '--bogus'"),
                          (["--root", str(tmp_path / "r"), "--wheelhouse", str(tmp_path / "none")], "no such directory"),
                          (["--root", str(tmp_path / "r"), "--wheelhouse", str(tmp_path)], "no mieruka-*.whl"),
                          (["--root", str(tmp_path / "r"), "--python", "/nonexistent/python3"], "not found")]:
        r = subprocess.run(["bash", sh, *args], capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and message in r.stderr, (args, r.stderr)
        assert r.stderr.strip().count("\n") == 0 and r.stderr.startswith("install.sh: error: ")
    assert not (tmp_path / "r" / "opt").exists()           # refused before touching anything
