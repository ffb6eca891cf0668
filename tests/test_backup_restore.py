"""`mieruka backup` while `mieruka collect` polls the simulator, then `mieruka restore`
into another folder: the restored store (plus what the restored buffer still holds)
has every reading the source had up to the backup, with equal values; a damaged
archive, a running collector and an existing store are refused with one line."""
from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time

import numpy as np
import pytest

from helpers.demo import DEMO_SITE
from mieruka.backup import read_manifest
from mieruka.errors import ConfigError
from mieruka.collector.buffer import DiskBuffer
from mieruka.site import load_site
from mieruka.simulators.modbus_server import ModbusSimulator
from mieruka.store.embedded import EmbeddedStore


def _conf(dir_, tokens=True):
    dir_.mkdir()
    shutil.copy(DEMO_SITE, dir_ / "site.toml")
    shutil.copy(DEMO_SITE.parent / "demo-scenario.toml", dir_)
    if tokens:
        (dir_ / "tokens.toml").write_text(f'[[tokens]]\nname = "em"\nsha256 = "{"a" * 64}"\n')
        os.chmod(dir_ / "tokens.toml", 0o600)
        with open(dir_ / "site.toml", "a") as f:      # [api] is not in the demo file: add it at the end
            f.write('\n[api]\ntokens_file = "tokens.toml"\n')
    return dir_ / "site.toml"


def _cli(*args, env):
    return subprocess.run([sys.executable, "-m", "mieruka.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def _readings(cfg) -> dict[str, dict[int, float]]:
    """channel -> {time ms: value}: the store plus the buffer's unforwarded readings."""
    out: dict[str, dict[int, float]] = {}
    s = EmbeddedStore.from_site(cfg, readonly=True)
    try:
        for c in s.channels():
            t, v, _ = s.read_quality(c.id)
            out[c.id] = dict(zip(t.astype(np.int64).tolist(), v.tolist()))
    finally:
        s.close()
    buf = cfg.data_dir / "buffer"
    if buf.exists():
        b = DiskBuffer(buf)
        batch, _ = b.read(10**9)
        for ch, t, v in zip(batch.channel, batch.time.astype(np.int64).tolist(), batch.value.tolist()):
            out.setdefault(str(ch), {})[t] = v
        b.close()
    return out


def _stored(cfg) -> int:
    try:
        s = EmbeddedStore.from_site(cfg, readonly=True)
    except ConfigError:             # not created yet
        return 0
    try:
        return s.count()
    finally:
        s.close()


@pytest.mark.slow
def test_backup_while_collecting_then_restore_elsewhere_keeps_every_reading(tmp_path, port):
    site1 = _conf(tmp_path / "etc1")
    data1, data2 = tmp_path / "data1", tmp_path / "data2"
    env1 = dict(os.environ, MIERUKA_MODBUS_PORT=str(port), MIERUKA_DATA_DIR=str(data1))
    env2 = dict(env1, MIERUKA_DATA_DIR=str(data2))
    cfg1 = load_site(site1, env=env1)
    archive = tmp_path / "b.tar.gz"
    with ModbusSimulator(cfg1, port=port):
        p = subprocess.Popen([sys.executable, "-m", "mieruka.cli", "collect", "--config", str(site1), "-q"],
                             env=env1, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.time() + 60
            while _stored(cfg1) < 13 * 3:
                assert time.time() < deadline and p.poll() is None, p.stderr.read() if p.poll() is not None else ""
                time.sleep(0.3)
            r = _cli("backup", "--config", str(site1), "-o", str(archive), env=env1)
            assert r.returncode == 0, r.stderr
            # a second collector on the same data directory is refused
            r2 = _cli("collect", "--config", str(site1), "--duration", "1", env=env1)
            assert r2.returncode == 2 and "another collector is running" in r2.stderr
            # restoring over the running collector's store is refused, even with --force
            r3 = _cli("restore", str(archive), "--config", str(site1), "--force", env=env1)
            assert r3.returncode == 2 and "collector is running" in r3.stderr, r3.stderr
            n = _stored(cfg1)                               # collecting goes on after the backup
            deadline = time.time() + 60
            while _stored(cfg1) <= n:
                assert time.time() < deadline, "no reading stored after the backup"
                time.sleep(0.3)
        finally:
            p.send_signal(signal.SIGTERM)
            p.wait(60)
    assert p.returncode == 0, p.stderr
    manifest = read_manifest(archive)
    assert {"config/site.toml", "config/tokens.toml", "data/mieruka.sqlite"} <= set(manifest["files"])
    assert oct(os.stat(archive).st_mode & 0o777) == "0o600"

    site2 = tmp_path / "etc2" / "site.toml"
    r = _cli("restore", str(archive), "--config", str(site2), env=env2)
    assert r.returncode == 0, r.stderr
    assert (site2.parent / "tokens.toml").stat().st_mode & 0o777 == 0o600
    cfg2 = load_site(site2, env=env2)
    assert [t.name for t in cfg2.api.tokens] == ["em"]
    src, got = _readings(cfg1), _readings(cfg2)
    assert set(got) == set(src) and sum(map(len, got.values())) >= 13 * 3
    more = 0
    for ch, pts in got.items():
        t_max = max(pts)
        want = {t: v for t, v in src[ch].items() if t <= t_max}
        assert pts == want, ch                              # every reading up to the backup, equal values
        more += len(src[ch]) - len(want)
    assert more > 0                                         # the source went on collecting after the backup

    # restoring again over the restored store needs --force and keeps the replaced file
    r = _cli("restore", str(archive), "--config", str(site2), env=env2)
    assert r.returncode == 2 and "--force" in r.stderr and "Traceback" not in r.stderr
    r = _cli("restore", str(archive), "--config", str(site2), "--force", env=env2)
    assert r.returncode == 0 and list(data2.glob("mieruka.sqlite.before-restore-*"))


def test_damaged_or_foreign_archive_is_refused_before_anything_changes(tmp_path):
    site = _conf(tmp_path / "etc", tokens=False)
    env = dict(os.environ, MIERUKA_DATA_DIR=str(tmp_path / "data"))
    with EmbeddedStore(tmp_path / "data" / "mieruka.sqlite"):
        pass
    archive = tmp_path / "b.tar.gz"
    assert _cli("backup", "--config", str(site), "-o", str(archive), env=env).returncode == 0
    # flip the store's bytes, keep the manifest
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(archive) as src, tarfile.open(bad, "w:gz") as dst:
        for m in src:
            data = src.extractfile(m).read()
            if m.name == "data/mieruka.sqlite":
                data = data[:-1] + bytes([data[-1] ^ 1])
            dst.addfile(m, io.BytesIO(data))
    target = tmp_path / "new" / "site.toml"
    env2 = dict(env, MIERUKA_DATA_DIR=str(tmp_path / "data2"))
    r = _cli("restore", str(bad), "--config", str(target), env=env2)
    assert r.returncode == 2 and "data/mieruka.sqlite: sha256 does not match" in r.stderr
    assert not (tmp_path / "data2" / "mieruka.sqlite").exists() and not target.exists()
    # a member escaping the archive's folders
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(archive) as src, tarfile.open(evil, "w:gz") as dst:
        for m in src:
            dst.addfile(m, io.BytesIO(src.extractfile(m).read()))
        m = tarfile.TarInfo("config/../../escape")
        m.size = 1
        dst.addfile(m, io.BytesIO(b"x"))
    r = _cli("restore", str(evil), "--config", str(target), env=env2)
    assert r.returncode == 2 and "not listed in the manifest" in r.stderr
    assert not (tmp_path / "escape").exists()
    (tmp_path / "junk.tar.gz").write_bytes(b"not a tar")
    r = _cli("restore", str(tmp_path / "junk.tar.gz"), "--config", str(target), env=env2)
    assert r.returncode == 2 and "not a mieruka backup" in r.stderr


def test_backup_to_a_missing_folder_or_unwritable_output_is_one_line(tmp_path):
    site = _conf(tmp_path / "etc", tokens=False)
    env = dict(os.environ, MIERUKA_DATA_DIR=str(tmp_path / "data"))
    with EmbeddedStore(tmp_path / "data" / "mieruka.sqlite"):
        pass
    r = _cli("backup", "--config", str(site), "-o", str(tmp_path / "nope" / "b.tar.gz"), env=env)
    assert r.returncode == 2 and "no such folder" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "adir").mkdir()
    r = _cli("backup", "--config", str(site), "-o", str(tmp_path / "adir"), env=env)
    assert r.returncode == 2 and "not a regular file" in r.stderr and (tmp_path / "adir").is_dir()
    # an output that cannot be written (a folder named like the temporary part file)
    (tmp_path / "b.tar.gz.part").mkdir()
    r = _cli("backup", "--config", str(site), "-o", str(tmp_path / "b.tar.gz"), env=env)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "b.tar.gz").exists()


def test_member_names_accepted_never_leave_their_folder():
    """Property: any archive member name restore accepts stays inside config/ (one level)
    or data/ under the extraction folder, whatever the name (hypothesis)."""
    from pathlib import Path as P

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from mieruka.backup import _safe_name
    root = P("/x/restore")
    parts = st.sampled_from(["config", "data", "..", ".", "", "/", "buffer", "a", "..a", "/etc", "seg-1.log"])

    @settings(max_examples=400, deadline=None)
    @given(st.lists(parts, min_size=1, max_size=5).map("/".join) | st.text(max_size=30))
    def check(name):
        if _safe_name(name):
            resolved = P(os.path.normpath(root / name))
            assert resolved.is_relative_to(root / "config") or resolved.is_relative_to(root / "data"), name
            if resolved.is_relative_to(root / "config"):
                assert resolved.parent == root / "config", name
    check()
