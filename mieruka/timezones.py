"""Which time zone a recording's UTC offsets belong to.

A recording stamps every reading with its UTC offset (`+09:00`, `+01:00` in
winter and `+02:00` in summer, ...).  Analysed in another zone, nights become
mornings and every standby and baseline figure is wrong, silently.  So the
offsets are checked against the zone used: `offsets_sample` reads a few
thousand stamps spread over the file (not the whole file), `zone_fits` tells
whether a zone gives the same offsets at the same instants, and
`zones_fitting` names the zones that do (for the warning and `--timezone auto`).
Offsets that are all zero (`Z`, `+00:00`) say nothing: UTC is how many systems
write time, whatever the site's zone.
"""
from __future__ import annotations

import datetime as dt
import functools
import re
import zoneinfo
from pathlib import Path

import numpy as np

_OFFSET = re.compile(r"(Z|[+-]\d{2}:?\d{2})$")
# named first when several zones share the same offsets (same DST rules)
PREFERRED = ("Asia/Tokyo", "Asia/Seoul", "Asia/Shanghai", "Asia/Taipei", "Asia/Singapore", "Asia/Bangkok",
             "Asia/Kolkata", "Europe/London", "Europe/Berlin", "Europe/Paris", "Europe/Madrid", "Europe/Rome",
             "Europe/Amsterdam", "Europe/Helsinki", "Europe/Athens", "Europe/Moscow", "America/New_York",
             "America/Chicago", "America/Denver", "America/Los_Angeles", "America/Sao_Paulo",
             "Australia/Sydney", "Pacific/Auckland", "UTC")


def offsets_sample(path: str | Path, time_column: int = 0, positions: int = 200, lines_each: int = 12
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(UTC ms, offset minutes) of stamps read at `positions` places spread over the
    file (`lines_each` lines at each); stamps without an offset are skipped."""
    path = Path(path)
    size = path.stat().st_size
    t_ms, off_min = [], []
    with open(path, "rb") as f:
        f.readline()                                   # header
        starts = sorted({int(size * k / positions) for k in range(positions)}) if size > 1 << 16 else [0]
        for pos in starts:
            f.seek(pos)
            if pos:
                f.readline()                           # the rest of a cut line
            for _ in range(lines_each if size > 1 << 16 else 10 ** 9):
                line = f.readline()
                if not line:
                    break
                fields = line.decode("utf-8", errors="replace").split(",")
                if len(fields) <= time_column:
                    continue
                text = fields[time_column].strip().strip('"')
                m = _OFFSET.search(text)
                if not m:
                    continue
                try:
                    t = dt.datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
                except ValueError:
                    continue
                if t.tzinfo is None:
                    continue
                t_ms.append(int(t.timestamp() * 1000))
                off_min.append(int(t.utcoffset().total_seconds() // 60))
    return np.array(t_ms, np.int64), np.array(off_min, np.int64)


def informative(off_min: np.ndarray) -> bool:
    """Offsets that say something about the zone (not all UTC)."""
    return off_min.size > 0 and bool(np.any(off_min != 0))


def zone_offsets_min(zone: str, t_ms: np.ndarray) -> np.ndarray:
    """UTC offset in minutes of `zone` at each instant."""
    tz = zoneinfo.ZoneInfo(zone)
    return np.array([int(dt.datetime.fromtimestamp(int(t) / 1000.0, tz).utcoffset().total_seconds() // 60)
                     for t in np.asarray(t_ms, np.int64)], np.int64)


def zone_fits(zone: str, t_ms: np.ndarray, off_min: np.ndarray) -> bool:
    return bool(np.array_equal(zone_offsets_min(zone, t_ms), off_min))


@functools.lru_cache(maxsize=1)
def _all_zones() -> tuple[str, ...]:
    names = [z for z in zoneinfo.available_timezones()
             if "/" in z and not z.startswith(("Etc/", "SystemV/", "US/", "posix/", "right/"))]
    return tuple(sorted(names, key=lambda z: (z not in PREFERRED, PREFERRED.index(z) if z in PREFERRED else 0, z)))


def _thin(t_ms: np.ndarray, off_min: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The instants around each change of offset, and 24 others spread over the sample."""
    order = np.argsort(t_ms, kind="stable")
    t_ms, off_min = t_ms[order], off_min[order]
    ch = np.nonzero(np.diff(off_min))[0]
    keep = np.unique(np.concatenate([ch, ch + 1, np.linspace(0, off_min.size - 1, min(off_min.size, 24)).astype(int)]))
    return t_ms[keep], off_min[keep]


def zones_fitting(t_ms: np.ndarray, off_min: np.ndarray, limit: int = 5) -> list[str]:
    """Zones whose offsets equal the recording's at every sampled instant, the
    well-known ones first (at most `limit`)."""
    if off_min.size == 0:
        return []
    t, o = _thin(t_ms, off_min)
    out = []
    for z in _all_zones():
        try:
            if zone_fits(z, t, o):
                out.append(z)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            continue
        if len(out) >= limit:
            break
    if not out and np.all(o == o[0]):
        out.append("UTC" if o[0] == 0 else f"Etc/GMT{'-' if o[0] > 0 else '+'}{abs(int(o[0])) // 60}")
    return out


def check_zone(path: str | Path, zone: str, time_column: int = 0) -> tuple[bool, list[str]]:
    """(offsets agree with `zone` or say nothing, zones that fit the offsets)."""
    t, o = offsets_sample(path, time_column)
    if not informative(o):
        return True, []
    t, o = _thin(t, o)
    if zone_fits(zone, t, o):
        return True, [zone]
    return False, zones_fitting(t, o)


# The country of a zone, for the default holiday calendar: a site in Asia/Seoul keeps
# Korean holidays, one in Europe/Berlin German ones.  The IANA database's own table
# (zone.tab: zone -> ISO 3166 country) is read when the system has it; these cover the
# usual zones when it does not.
_ZONE_COUNTRY = {
    "Asia/Tokyo": "JP", "Asia/Seoul": "KR", "Asia/Shanghai": "CN", "Asia/Taipei": "TW", "Asia/Hong_Kong": "HK",
    "Asia/Singapore": "SG", "Asia/Bangkok": "TH", "Asia/Ho_Chi_Minh": "VN", "Asia/Jakarta": "ID",
    "Asia/Manila": "PH", "Asia/Kuala_Lumpur": "MY", "Asia/Kolkata": "IN", "Europe/London": "GB",
    "Europe/Berlin": "DE", "Europe/Paris": "FR", "Europe/Madrid": "ES", "Europe/Rome": "IT",
    "Europe/Amsterdam": "NL", "Europe/Brussels": "BE", "Europe/Vienna": "AT", "Europe/Zurich": "CH",
    "Europe/Warsaw": "PL", "Europe/Prague": "CZ", "Europe/Stockholm": "SE", "Europe/Helsinki": "FI",
    "America/New_York": "US", "America/Chicago": "US", "America/Denver": "US", "America/Los_Angeles": "US",
    "America/Phoenix": "US", "America/Toronto": "CA", "America/Vancouver": "CA", "America/Mexico_City": "MX",
    "America/Sao_Paulo": "BR", "Australia/Sydney": "AU", "Australia/Melbourne": "AU", "Pacific/Auckland": "NZ",
}


@functools.lru_cache(maxsize=1)
def _zone_tab() -> dict[str, str]:
    out: dict[str, str] = {}
    for root in zoneinfo.TZPATH:
        p = Path(root) / "zone.tab"
        try:
            text = p.read_text("utf-8")
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("#"):
                continue
            parts = line.split("\t")
            if len(parts) >= 3:
                out[parts[2].strip()] = parts[0].strip().upper()
        if out:
            break
    return out


def country_of_zone(zone: str) -> str | None:
    """ISO 3166 country code of an IANA zone (`Asia/Seoul` -> `KR`), None for UTC,
    fixed offsets and zones of no one country."""
    return _ZONE_COUNTRY.get(zone) or _zone_tab().get(zone)
