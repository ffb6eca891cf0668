"""One site's channels, read and prepared the way `mieruka analyze` does it.

`mieruka analyze` and `mieruka fleet analyze` both go through these functions, so
a fleet's figures for a site are those of `mieruka analyze` of that site alone
(by construction, and tested).
"""
from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..models import ChannelData
from ..recording import read_recording


def merge_config_metadata(chans: dict[str, ChannelData], cfg) -> None:
    """A recording carries quantity, equipment_kind and system; the site config may
    add allowances, rated power and capacities for the same channel ids."""
    by_id = {c.id: c for _, c in cfg.channels()}
    for cid, ch in chans.items():
        c = by_id.get(cid)
        if c is None:
            continue
        info = ch.info
        info.standby_allowance_kw = c.standby_allowance_kw or info.standby_allowance_kw
        info.rated_power_kw = c.rated_power_kw or info.rated_power_kw
        info.capacity_m3_per_min = c.capacity_m3_per_min or info.capacity_m3_per_min
        info.equipment_kind = info.equipment_kind or c.equipment_kind
        info.system = info.system or c.system
        if c.always_on is not None:
            info.always_on = c.always_on


def _ms(t: dt.datetime | None) -> np.datetime64 | None:
    return None if t is None else np.datetime64(int(t.timestamp() * 1000), "ms")


def trim(chans: dict[str, ChannelData], start: dt.datetime | None, end: dt.datetime | None) -> dict[str, ChannelData]:
    """The readings in [start, end) of every channel (None: open end)."""
    if start is None and end is None:
        return chans
    return {c: v.between(_ms(start), _ms(end)) for c, v in chans.items()}


def recording_channels(paths: list[Path], cfg, start: dt.datetime | None = None,
                       end: dt.datetime | None = None) -> dict[str, ChannelData]:
    """The channels of one or more recordings of a site (one file: exactly what
    `mieruka analyze FILE --config CFG` analyses).  Several files (e.g. one per
    month) are joined per channel in time order; a reading time given twice keeps
    the later file's reading, as loading both into the store would."""
    parts = [dict(read_recording(p).channels) for p in paths]
    if len(parts) == 1:
        chans = parts[0]
    else:
        chans = {}
        for cid in sorted({c for p in parts for c in p}):
            pieces = [p[cid] for p in parts if cid in p]
            t = np.concatenate([x.time for x in pieces])
            v = np.concatenate([x.value for x in pieces])
            q = None
            if any(x.quality is not None for x in pieces):
                q = np.concatenate([x.quality if x.quality is not None else np.zeros(len(x.time), np.uint8)
                                    for x in pieces])
            # stable sort by time, then keep the last of equal times (the later file)
            order = np.argsort(t, kind="stable")
            t, v = t[order], v[order]
            q = None if q is None else q[order]
            keep = np.r_[t[1:] != t[:-1], True] if len(t) else np.ones(0, bool)
            chans[cid] = ChannelData(pieces[0].info, t[keep], v[keep], None if q is None else q[keep])
    if cfg is not None:
        merge_config_metadata(chans, cfg)
    chans = trim(chans, start, end)
    if not chans:
        raise InputError(f"{paths[0]}: the recording has no readings")
    return chans


def store_channels(store, start: dt.datetime, end: dt.datetime, ids=None, exclude=frozenset()
                   ) -> dict[str, ChannelData]:
    """[start, end) of every channel of a store (or of those in `ids`, never those in
    `exclude`), as `analyze_store` reads them (counters with wraps and resets undone)."""
    from ..quantities import QUANTITIES

    chans = {}
    for info in store.channels():
        if (ids is not None and info.id not in ids) or info.id in exclude:
            continue
        q = QUANTITIES.get(info.quantity)
        if q is not None and q.counter:       # every Store undoes wraps and resets (mieruka.store.base)
            t, v = store.read_continuous(info.id, start, end)
        else:
            t, v = store.read(info.id, start, end)
        chans[info.id] = ChannelData(info, t, v)
    return chans


def channel_digest(cid: str, ch: ChannelData) -> str:
    """SHA-256 of one channel's readings: its id, the metadata the detectors use, times,
    values and quality codes."""
    h = hashlib.sha256()
    i = ch.info
    h.update(repr((cid, i.quantity, i.equipment_kind, i.system, i.standby_allowance_kw, i.rated_power_kw,
                   i.capacity_m3_per_min, i.always_on)).encode())
    h.update(np.ascontiguousarray(ch.time.astype("datetime64[ms]").astype(np.int64)).tobytes())
    h.update(np.ascontiguousarray(ch.value, dtype=np.float64).tobytes())
    if ch.quality is not None:
        h.update(np.ascontiguousarray(ch.quality, dtype=np.uint8).tobytes())
    return h.hexdigest()


def digests_sha256(digests: dict[str, str]) -> str:
    """One SHA-256 over channels' digests, in channel-id order: the same whether one
    task read every channel or several tasks read a group each."""
    h = hashlib.sha256()
    for cid in sorted(digests):
        h.update(cid.encode("utf-8") + b"\0" + digests[cid].encode() + b"\n")
    return h.hexdigest()


def channels_sha256(chans: dict[str, ChannelData]) -> str:
    """A digest of the readings themselves (ids, metadata that the detectors use,
    times, values, quality), independent of where they were read from."""
    return digests_sha256({cid: channel_digest(cid, ch) for cid, ch in chans.items()})
