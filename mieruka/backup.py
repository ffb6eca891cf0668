"""Backup and restore of a gateway: the embedded store, the collector's durable
buffer and the config files, in one tar archive with a manifest and sha256 sums.

Consistency while `collect` runs: the buffer's `committed` pointer is copied
first, then its segments, then the store through SQLite's online backup API (a
snapshot of one committed transaction, taken page by page without stopping the
writer).  Every reading accepted before the copy is therefore in the store copy
or in the buffer copy: anything committed after the pointer was copied is read
again from the buffer on restore, which is harmless because the store is
idempotent on (channel, time).  A torn record at the end of a copied segment is
cut off by the buffer's own recovery, as after a power cut.

Archive layout (`mieruka-backup/1`):

    manifest.json            format, time, mieruka version, site, schema, files + sha256
    config/<file>            every regular file of the config file's folder (site.toml,
                             tokens.toml, mieruka.env, bills, ...), modes kept
    data/mieruka.sqlite      the embedded store (one file, no WAL)
    data/buffer/...          the durable buffer (segments, committed pointer, channels)

Restore verifies every checksum before it touches anything, never follows paths
out of the archive's folders, refuses to run while a collector holds the target
data directory, and keeps what it replaces as `*.before-restore-<time>`.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import shutil
import sqlite3
import stat
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import MierukaError
from .outputs import fsync_dir
from .recording import file_sha256
from .runlock import LOCK_NAME, collector_pid
from .site import SiteConfig, load_site
from .store.embedded import DB_NAME, schema_version

FORMAT = "mieruka-backup/1"
MAX_CONFIG_FILE_BYTES = 64 * 1024 * 1024
BUFFER_DIR = "buffer"


class BackupError(MierukaError):
    """A backup archive is unusable or a restore would damage something."""


@dataclass
class BackupSummary:
    path: Path
    files: int
    bytes: int
    store_bytes: int
    readings_pending_in_buffer: bool
    not_included: list[str]


def _now_stamp() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


# ---------------------------------------------------------------------- backup
def backup(cfg: SiteConfig, out: Path, progress=None) -> BackupSummary:
    """Write a backup archive of `cfg`'s config folder, embedded store and buffer to `out`
    (written to a temporary name, fsynced and renamed: a failed backup leaves no archive).
    `progress(done, total, what)` is called as the store is copied and the archive written."""
    from . import __version__
    if cfg.source is None:
        raise BackupError("backup needs a config loaded from a file")
    out = Path(out)
    if out.exists() and not out.is_file():          # never rename over a device or a folder
        raise BackupError(f"{out}: exists and is not a regular file")
    with tempfile.TemporaryDirectory(prefix="mieruka-backup-", dir=out.parent if out.parent.exists() else None) as tmp:
        stage = Path(tmp) / "stage"
        files: dict[str, Path] = {}
        # 1. config files: the config file's folder (not recursive, regular files only)
        conf_dir = cfg.source.parent
        unreadable = []
        for p in sorted(conf_dir.iterdir()):
            if p.is_file() and not p.is_symlink() and p.stat().st_size <= MAX_CONFIG_FILE_BYTES:
                if os.access(p, os.R_OK):
                    files[f"config/{p.name}"] = p
                else:                     # e.g. mieruka.env (root only) when run as the service user
                    unreadable.append(str(p))
        if cfg.source.name not in {p.name for p in files.values()}:
            raise BackupError(f"{cfg.source}: cannot read the site config")
        outside = [str(cfg.resolve_path(p)) for p in _referenced_files(cfg)
                   if cfg.resolve_path(p).parent != conf_dir]
        # 2. the durable buffer: the committed pointer first, then the segments
        buf = cfg.data_dir / BUFFER_DIR
        if buf.is_dir():
            dst = stage / "data" / BUFFER_DIR
            dst.mkdir(parents=True)
            names = sorted((p for p in buf.rglob("*") if p.is_file()), key=lambda p: (p.name != "committed", str(p)))
            for p in names:
                rel = p.relative_to(buf)
                (dst / rel).parent.mkdir(parents=True, exist_ok=True)
                try:
                    shutil.copy2(p, dst / rel)
                except FileNotFoundError:        # a segment deleted after it was forwarded
                    continue
                files[f"data/{BUFFER_DIR}/{rel.as_posix()}"] = dst / rel
        # 3. the store, through the online backup API (a consistent snapshot while the writer runs)
        store = cfg.data_dir / DB_NAME
        schema = None
        if store.exists():
            copy = stage / "data" / DB_NAME
            copy.parent.mkdir(parents=True, exist_ok=True)
            src = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=30)
            dst_db = sqlite3.connect(copy)
            try:
                src.execute("PRAGMA busy_timeout=30000")
                src.backup(dst_db, pages=4096, progress=(lambda _status, remaining, total: progress(
                    total - remaining, total, "copying the store (pages)")) if progress else None)
                dst_db.execute("PRAGMA journal_mode=DELETE")     # one self-contained file in the archive
                schema = schema_version(dst_db)
                check = dst_db.execute("PRAGMA quick_check").fetchone()[0]
            finally:
                src.close()
                dst_db.close()
            if check != "ok":
                raise BackupError(f"{store}: the copy fails SQLite's check ({check}); the store needs attention")
            files[f"data/{DB_NAME}"] = copy
        elif cfg.storage.backend == "embedded":
            raise BackupError(f"{store}: no embedded store here (is data_dir right? has `collect` run?)")
        manifest = {
            "format": FORMAT, "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "mieruka_version": __version__, "site": cfg.site.name, "config_file": cfg.source.name,
            "config_dir": str(conf_dir), "data_dir": str(cfg.data_dir), "storage_backend": cfg.storage.backend,
            "store_schema_version": schema,
            "not_included": [f"{p} (not readable by this user)" for p in unreadable] + outside + ([f"InfluxDB data ({cfg.storage.influxdb.url}): back it up with `influx backup`"]
                                       if cfg.storage.backend == "influxdb" and cfg.storage.influxdb else []),
            "files": {name: {"sha256": file_sha256(p), "bytes": p.stat().st_size,
                             "mode": stat.S_IMODE(p.stat().st_mode)} for name, p in files.items()},
        }
        part = out.with_name(out.name + ".part")
        # level 1: float columns barely compress (a 34 MB store: 20.5 MB at level 1 and at level 9,
        # 1 s of CPU against 11 s), and a gateway has little CPU to spare
        with tarfile.open(part, "w:gz", compresslevel=1) as tar:
            data = json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8")
            info = tarfile.TarInfo("manifest.json")
            info.size, info.mtime, info.mode = len(data), int(dt.datetime.now().timestamp()), 0o600
            tar.addfile(info, io.BytesIO(data))
            total = sum(p.stat().st_size for p in files.values())
            done = 0
            for name, p in files.items():
                tar.add(p, arcname=name, recursive=False)
                done += p.stat().st_size
                if progress:
                    progress(done, total, "writing the archive (bytes)")
        os.chmod(part, 0o600)       # holds tokens and secrets
        with open(part, "rb") as f:
            os.fsync(f.fileno())
        os.replace(part, out)
    pending = any(n.startswith(f"data/{BUFFER_DIR}/seg-") and m["bytes"] for n, m in manifest["files"].items())
    return BackupSummary(out, len(files), out.stat().st_size,
                         manifest["files"].get(f"data/{DB_NAME}", {}).get("bytes", 0), pending,
                         manifest["not_included"])


def _referenced_files(cfg: SiteConfig) -> list[Path]:
    out = list(cfg.co2.factor_files)
    if cfg.co2.bills_file:
        out.append(cfg.co2.bills_file)
    if cfg.api.tokens_file:
        out.append(cfg.api.tokens_file)
    return out


# --------------------------------------------------------------------- restore
def read_manifest(archive: Path) -> dict:
    try:
        with tarfile.open(archive, "r:*") as tar:
            f = tar.extractfile("manifest.json")
            manifest = json.loads(f.read().decode("utf-8"))
    except FileNotFoundError:
        raise BackupError(f"{archive}: no such file") from None
    except (tarfile.TarError, KeyError, AttributeError, OSError, EOFError):
        raise BackupError(f"{archive}: not a mieruka backup (no readable manifest.json)") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BackupError(f"{archive}: manifest.json: not valid JSON ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or not isinstance(manifest.get("files"), dict):
        raise BackupError(f"{archive}: manifest.json: format is {manifest.get('format') if isinstance(manifest, dict) else None!r}, "
                          f"expected {FORMAT!r}")
    return manifest


def _safe_name(name: str) -> bool:
    p = PurePosixPath(name)
    return (not p.is_absolute() and ".." not in p.parts and len(p.parts) >= 2
            and p.parts[0] in ("config", "data") and (p.parts[0] != "config" or len(p.parts) == 2))


def _extract_verified(archive: Path, manifest: dict, into: Path, prefix: str) -> None:
    """Extract the manifest's files under `prefix` into `into`, checking names, types and sha256."""
    seen = set()
    with tarfile.open(archive, "r:*") as tar:
        for m in tar:
            if m.name == "manifest.json":
                continue
            if m.name not in manifest["files"] or not _safe_name(m.name):
                raise BackupError(f"{archive}: {m.name}: not listed in the manifest (refusing it)")
            if not m.isfile():
                raise BackupError(f"{archive}: {m.name}: not a regular file (refusing it)")
            if not m.name.startswith(prefix):
                continue
            dst = into / m.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            h = hashlib.sha256()
            src = tar.extractfile(m)
            with open(dst, "wb") as f:
                for block in iter(lambda: src.read(1 << 20), b""):
                    h.update(block)
                    f.write(block)
            if h.hexdigest() != manifest["files"][m.name].get("sha256"):
                raise BackupError(f"{archive}: {m.name}: sha256 does not match the manifest (damaged archive)")
            os.chmod(dst, int(manifest["files"][m.name].get("mode", 0o600)) & 0o777)
            seen.add(m.name)
    missing = {n for n in manifest["files"] if n.startswith(prefix)} - seen
    if missing:
        raise BackupError(f"{archive}: {sorted(missing)[0]}: listed in the manifest but missing (truncated archive?)")


@dataclass
class RestoreSummary:
    config: Path
    data_dir: Path
    files: int
    kept_aside: list[Path]


def restore(archive: Path, config: Path, *, force: bool = False, data_dir: Path | None = None,
            env: dict[str, str] | None = None) -> RestoreSummary:
    """Bring a backup back: its config files into `config`'s folder (the site config under
    `config`'s name), its store and buffer into the restored config's data_dir (or `data_dir`)."""
    archive, config = Path(archive), Path(config)
    manifest = read_manifest(archive)
    conf_dir = config.parent.resolve()
    stamp = _now_stamp()
    kept: list[Path] = []
    with tempfile.TemporaryDirectory(prefix=".mieruka-restore-", dir=_existing_parent(conf_dir)) as tmp:
        tmp = Path(tmp)
        _extract_verified(archive, manifest, tmp, "config/")
        site_name = f"config/{manifest.get('config_file', 'site.toml')}"
        if site_name not in manifest["files"]:
            raise BackupError(f"{archive}: the site config {site_name} is not in the archive")
        # which config files would change
        conf_files = {n.split("/", 1)[1]: tmp / n for n in manifest["files"] if n.startswith("config/")}
        conf_files[config.name] = conf_files.pop(Path(site_name).name)
        changed = [conf_dir / n for n, p in conf_files.items()
                   if (conf_dir / n).exists() and (conf_dir / n).read_bytes() != p.read_bytes()]
        if changed and not force:
            raise BackupError(f"{changed[0]}: exists and differs from the backup; use --force to replace it "
                              f"(the old file is kept as *.before-restore-{stamp})")
        # where the data goes: the restored config decides (as the services will read it)
        staged_site = tmp / "site-check" / config.name
        staged_site.parent.mkdir()
        for n, p in conf_files.items():
            shutil.copy2(p, staged_site.parent / n)
        target_cfg = load_site(staged_site, env)
        ddir = Path(data_dir).resolve() if data_dir else target_cfg.data_dir
        pid = collector_pid(ddir)
        if pid is not None:
            raise BackupError(f"{ddir}: a collector is running on this data directory"
                              + (f" (pid {pid})" if pid else "") + "; stop it first (systemctl stop mieruka-collect)")
        ddir.mkdir(parents=True, exist_ok=True)
        # the data is extracted beside where it goes (same filesystem: the final step is a rename)
        dtmp = Path(tempfile.mkdtemp(prefix=".mieruka-restore-", dir=ddir))
        try:
            kept += _restore_data(archive, manifest, dtmp, ddir, force, stamp)
        finally:
            shutil.rmtree(dtmp, ignore_errors=True)
        _restore_config(conf_files, conf_dir, stamp, kept)
        fsync_dir(ddir)
    return RestoreSummary(conf_dir / config.name, ddir, len(manifest["files"]), kept)


def _restore_data(archive: Path, manifest: dict, tmp: Path, ddir: Path, force: bool, stamp: str) -> list[Path]:
    kept: list[Path] = []
    _extract_verified(archive, manifest, tmp, "data/")
    owner = ddir.stat()
    store_new = tmp / "data" / DB_NAME
    store_old = ddir / DB_NAME
    if store_old.exists() and store_new.exists() and not force:
        raise BackupError(f"{store_old}: a store exists here; use --force to replace it "
                          f"(the old one is kept as {DB_NAME}.before-restore-{stamp})")
    buf_new, buf_old = tmp / "data" / BUFFER_DIR, ddir / BUFFER_DIR
    if buf_old.exists() and any(buf_old.iterdir()) and buf_new.exists() and not force:
        raise BackupError(f"{buf_old}: a buffer exists here; use --force to replace it")
    # from here on: move aside, then move in
    _chown_tree(tmp / "data", owner.st_uid, owner.st_gid)     # the service user keeps owning its data
    if store_new.exists():
        for suffix in ("", "-wal", "-shm"):       # an old WAL must never be applied to the new file
            old = ddir / (DB_NAME + suffix)
            if old.exists():
                aside = ddir / f"{DB_NAME}{suffix}.before-restore-{stamp}"
                os.replace(old, aside)
                kept.append(aside)
        with open(store_new, "rb") as f:
            os.fsync(f.fileno())
        os.replace(store_new, store_old)
    if buf_new.exists():
        if buf_old.exists():
            aside = ddir / f"{BUFFER_DIR}.before-restore-{stamp}"
            os.replace(buf_old, aside)
            kept.append(aside)
        os.replace(buf_new, buf_old)
    return kept


def _restore_config(conf_files: dict[str, Path], conf_dir: Path, stamp: str, kept: list[Path]) -> None:
    conf_dir.mkdir(parents=True, exist_ok=True)
    default_owner = conf_dir.stat()
    for n, p in conf_files.items():
        dst = conf_dir / n
        if dst.exists() and dst.read_bytes() == p.read_bytes():
            continue
        owner = dst.stat() if dst.exists() else default_owner
        if dst.exists():
            aside = dst.with_name(f"{dst.name}.before-restore-{stamp}")
            os.replace(dst, aside)
            kept.append(aside)
        shutil.copy2(p, dst)
        _chown_tree(dst, owner.st_uid, owner.st_gid)


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    """As root, give restored files to the owner of where they go (the `mieruka` user)."""
    if os.geteuid() != 0 or not path.exists():
        return
    for p in [path, *(path.rglob("*") if path.is_dir() else [])]:
        os.chown(p, uid, gid, follow_symlinks=False)


def _existing_parent(p: Path) -> Path:
    while not p.exists():
        p = p.parent
    return p




__all__ = ["backup", "restore", "read_manifest", "BackupError", "FORMAT", "LOCK_NAME"]
