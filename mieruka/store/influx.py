"""InfluxDB backend of the `Store` interface.

Writes: line protocol, one point per reading:
`<measurement>,site=..,meter=..,channel=..,quantity=..[,equipment=..,system=..,equipment_kind=..] value=<float>,quality=<int>i <ms>`
(a reading without value, quality not OK, carries only `quality`).  Batched by
`batch_size`.  Two write paths:

- v1 HTTP API (`POST /write?db=..&precision=ms`, httpx): InfluxDB 1.x and the
  v1-compatibility endpoint of 2.x/3.x (username/password, or a token);
- v2 (`influxdb-client`, `/api/v2/write`): InfluxDB 2.x/3.x with token, org, bucket.

Reads (`read`, `aggregate`, `latest`, `channels`) use InfluxQL on `/query`: native
on 1.x, the v1-compatibility API on 2.x (needs a DBRP mapping of the bucket, which
2.x creates for buckets made by `influx v1 dbrp create` / automatically on 3.x).

InfluxDB keeps one point per series and timestamp, so writing the same reading
twice (a resend after a crash) stores it once: the store-and-forward buffer
relies on this.  Tags of a channel must therefore stay the same over time; they
come from the site config (or the MQTT subscription that found the channel).
"""
from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import httpx
import numpy as np

from ..errors import ConfigError, MierukaError
from ..models import TIME_DTYPE, ChannelInfo, Quality, ReadingBatch
from .base import Aggregate, Store, TimeLike, to_datetime64

if TYPE_CHECKING:
    from ..site import SiteConfig

log = logging.getLogger(__name__)
logging.getLogger("httpx").setLevel(logging.WARNING)      # one INFO line per write is noise on a gateway
TAG_KEYS = ("site", "meter", "channel", "quantity", "equipment", "system", "equipment_kind")


class InfluxQueryError(MierukaError):
    """A read failed (server unreachable, query refused); worded for people."""


class InfluxWriteError(Exception):
    """A write failed.  `retry` says whether trying again can help (server down,
    auth or database missing: yes; the server rejected the points as malformed: no)."""

    def __init__(self, message: str, retry: bool):
        super().__init__(message)
        self.retry = retry


def _esc_tag(v: str) -> str:
    return v.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ").replace("\n", "\\n")


def _esc_meas(v: str) -> str:
    return v.replace("\\", "\\\\").replace(",", "\\,").replace(" ", "\\ ")


def _q(v: str) -> str:
    """An InfluxQL string literal."""
    return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _ident(v: str) -> str:
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ms(t: TimeLike, tz) -> int | None:
    v = to_datetime64(t, tz)
    return None if v is None else int(v.astype(np.int64))


def _split_key(key: str) -> list[str]:
    """Split a series key on unescaped commas."""
    parts, cur, i = [], [], 0
    while i < len(key):
        c = key[i]
        if c == "\\" and i + 1 < len(key):
            cur.append(key[i + 1])
            i += 2
            continue
        if c == ",":
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return parts


class InfluxStore(Store):
    def __init__(self, url: str, *, database: str, api: str = "v1", token: str | None = None,
                 org: str | None = None, bucket: str | None = None, username: str | None = None,
                 password: str | None = None, measurement: str = "energy", site: str | None = None,
                 batch_size: int = 5000, timeout_s: float = 10.0, retention_days: float = 0, tz=None,
                 site_only: bool = False):
        self.url = url.rstrip("/")
        self.database = database
        self.api = api
        self.token = token or None            # `${MIERUKA_INFLUX_TOKEN:-}` expands to "": no token
        self.org, self.bucket = org, bucket or database
        self.measurement = measurement
        self.site = site
        # site_only: read only the series tagged site=<site> (a central InfluxDB that many
        # gateways write into; `mieruka fleet analyze` reads one site at a time)
        self.site_only = bool(site_only and site)
        self.batch_size = batch_size
        self.retention_days = retention_days
        self.tz = tz
        self._prefix: dict[str, str] = {}
        self._infos: dict[str, ChannelInfo] = {}
        headers = {"Authorization": f"Token {self.token}"} if self.token else {}
        auth = (username, password or "") if username and not self.token else None
        self.http = httpx.Client(base_url=self.url, headers=headers, auth=auth, timeout=timeout_s)
        self._v2 = None
        self._db_checked = False
        if api == "v2":
            from influxdb_client import InfluxDBClient
            from influxdb_client.client.write_api import SYNCHRONOUS
            # retries=False: the store-and-forward layer retries (with its own backoff) and
            # must see every failure; the client's own retry would hide outages.
            self._v2 = InfluxDBClient(url=self.url, token=self.token or "", org=org, timeout=int(timeout_s * 1000),
                                      retries=False)
            self._v2_write = self._v2.write_api(write_options=SYNCHRONOUS)

    @classmethod
    def from_site(cls, cfg: "SiteConfig") -> "InfluxStore":
        ix = cfg.storage.influxdb
        if ix is None:
            raise ConfigError(f"{cfg.source or '<config>'}: storage.influxdb: missing ([storage.influxdb] url = ...)")
        token = ix.token or None
        # auto: the native v2 API needs token and org; a token alone authenticates on the v1 API
        api = ix.api if ix.api != "auto" else ("v2" if token and ix.org else "v1")
        database = ix.database or ix.bucket
        if not database:
            raise ConfigError(f"{cfg.source or '<config>'}: storage.influxdb: give `database` (v1) or `bucket` (v2)")
        if api == "v2" and not (token and ix.org):
            raise ConfigError(f"{cfg.source or '<config>'}: storage.influxdb: the v2 API needs `token` and `org`")
        store = cls(ix.url, database=database, api=api, token=token, org=ix.org, bucket=ix.bucket or database,
                    username=ix.username or None, password=ix.password, measurement=ix.measurement,
                    site=cfg.site.name, batch_size=ix.batch_size, timeout_s=ix.timeout_s,
                    retention_days=cfg.storage.retention_days, tz=cfg.tz,
                    site_only=True)     # one InfluxDB may hold many gateways' sites (docs/fleet.md)
        store.set_channels(list(cfg.channel_infos().values()))
        return store

    # ------------------------------------------------------------------ write
    def set_channels(self, infos: list[ChannelInfo]) -> None:
        for i in infos:
            self._infos[i.id] = i
            self._prefix.pop(i.id, None)

    def _line_prefix(self, channel: str) -> str:
        p = self._prefix.get(channel)
        if p is None:
            info = self._infos.get(channel)
            tags = {"site": self.site, "channel": channel}
            if info is not None:
                tags.update(meter=info.meter, quantity=info.quantity, equipment=info.equipment,
                            system=info.system, equipment_kind=info.equipment_kind)
            p = _esc_meas(self.measurement) + "".join(
                f",{k}={_esc_tag(str(tags[k]))}" for k in sorted(tags) if tags[k])  # sorted: Influx's own order
            self._prefix[channel] = p
        return p

    def lines(self, batch: ReadingBatch) -> list[str]:
        """Line protocol for a batch (ms precision)."""
        t = batch.time.astype(np.int64).tolist()
        v = batch.value.tolist()
        q = batch.quality.tolist()
        pre = [self._line_prefix(c) for c in batch.channel.tolist()]
        return [f"{p} value={vv!r},quality={qq}i {tt}" if vv == vv else f"{p} quality={qq}i {tt}"
                for p, tt, vv, qq in zip(pre, t, v, q)]

    def write(self, batch: ReadingBatch, counter_offsets: list[tuple[str, np.datetime64, float]] | None = None
              ) -> None:
        """Write and return once InfluxDB confirmed (HTTP 204); InfluxWriteError otherwise.
        `counter_offsets` (channel, time, offset) of continuous counters go to the
        `<measurement>_counter_offsets` measurement, before the readings."""
        if counter_offsets:
            meas = _esc_meas(self.measurement + "_counter_offsets")
            site = f",site={_esc_tag(self.site)}" if self.site else ""   # kept apart in a central DB
            body = "\n".join(f"{meas},channel={_esc_tag(ch)}{site} offset={float(off)!r} {int(np.datetime64(t, 'ms').astype(np.int64))}"
                             for ch, t, off in counter_offsets)
            self._write_v2(body) if self._v2 is not None else self._write_v1(body)
        for i in range(0, len(batch), self.batch_size):
            body = "\n".join(self.lines(ReadingBatch(batch.time[i:i + self.batch_size],
                                                     batch.channel[i:i + self.batch_size],
                                                     batch.value[i:i + self.batch_size],
                                                     batch.quality[i:i + self.batch_size])))
            if self._v2 is not None:
                self._write_v2(body)
            else:
                self._write_v1(body)

    def _write_v1(self, body: str) -> None:
        try:
            r = self.http.post("/write", params={"db": self.database, "precision": "ms"},
                               content=body.encode())
        except httpx.HTTPError as e:
            raise InfluxWriteError(f"InfluxDB at {self.url} unreachable: {e}", retry=True) from None
        if r.status_code == 404 and "database not found" in r.text and not self._db_checked:
            # created when missing: at the first write, and again whenever it is gone (InfluxDB
            # restarted on an empty data dir); before, the collector retried a 404 for ever
            self._db_checked = True
            try:
                self.query(f"CREATE DATABASE {_ident(self.database)}", post=True)
                log.warning("InfluxDB at %s had no database %r: created", self.url, self.database)
                return self._write_v1(body)
            except InfluxQueryError as e:
                raise InfluxWriteError(f"InfluxDB at {self.url}: database {self.database!r} not found and not "
                                       f"created ({e})", retry=True) from None
            finally:
                self._db_checked = False
        self._check(r.status_code, r.text)

    def _write_v2(self, body: str) -> None:
        from influxdb_client import WritePrecision
        from influxdb_client.rest import ApiException
        try:
            self._v2_write.write(self.bucket, self.org, body.encode(), write_precision=WritePrecision.MS)
        except ApiException as e:
            self._check(e.status or 0, str(e.body or e.reason))
        except Exception as e:     # urllib3 connection errors have no common base worth naming
            raise InfluxWriteError(f"InfluxDB at {self.url} unreachable: {e}", retry=True) from None

    def _check(self, status: int, text: str) -> None:
        if status in (200, 204):
            return
        if status == 400 and "partial write" in text and "retention" in text:
            log.warning("InfluxDB dropped points outside its retention policy: %s", text[:200])
            return
        # 400/413/422: the points themselves are refused, sending them again cannot help
        retry = status not in (400, 413, 422)
        raise InfluxWriteError(f"InfluxDB write refused (HTTP {status}): {text[:300]}", retry=retry)

    # ------------------------------------------------------------------- read
    def query(self, q: str, *, post: bool = False) -> list[dict]:
        """Run InfluxQL; the `series` of every statement (ms epochs), concatenated.
        Chunked, so large reads never hit the server's row limit."""
        params = {"db": self.database, "q": q, "epoch": "ms", "chunked": "true", "chunk_size": "20000"}
        try:
            r = (self.http.post if post else self.http.get)("/query", params=params)
        except httpx.HTTPError as e:
            raise InfluxQueryError(f"InfluxDB at {self.url} unreachable: {e}") from None
        if r.status_code != 200:
            raise InfluxQueryError(f"InfluxDB query failed (HTTP {r.status_code}): {r.text[:300]}")
        series: list[dict] = []
        for line in r.text.splitlines():
            if not line.strip():
                continue
            doc = json.loads(line)
            for res in doc.get("results", []):
                if "error" in res:
                    if "database not found" in res["error"]:
                        continue
                    raise InfluxQueryError(f"InfluxDB query failed: {res['error']} (query: {q})")
                series.extend(res.get("series", []))
        return series

    def _where(self, channel: str | None, start: TimeLike, end: TimeLike, ok_only: bool = False) -> str:
        cond = [f'"site" = {_q(self.site)}'] if self.site_only else []
        if channel is not None:
            cond.append(f'"channel" = {_q(channel)}')
        s, e = _ms(start, self.tz), _ms(end, self.tz)
        if s is not None:
            cond.append(f"time >= {s}ms")
        if e is not None:
            cond.append(f"time < {e}ms")
        if ok_only:
            cond.append(f'"quality" = {int(Quality.OK)}')
        return (" WHERE " + " AND ".join(cond)) if cond else ""

    def _columns(self, series: list[dict], names: list[str]) -> list[np.ndarray]:
        rows = [row for s in series for row in s.get("values", [])]
        if not series:
            return [np.empty(0) for _ in names]
        cols = series[0]["columns"]
        idx = [cols.index(n) for n in names]
        return [np.array([r[i] for r in rows], dtype=float if n != "time" else np.int64) for n, i in zip(names, idx)]

    def read_quality(self, channel: str, start: TimeLike = None, end: TimeLike = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s = self.query(f"SELECT value, quality FROM {_ident(self.measurement)}{self._where(channel, start, end)} ORDER BY time")
        t, v, q = self._columns(s, ["time", "value", "quality"])
        t, order = np.unique(t.astype(np.int64), return_index=True)     # one point per time (several series)
        return t.astype(TIME_DTYPE), v[order].astype(np.float64), np.nan_to_num(q[order]).astype(np.uint8)

    def counter_offsets(self, channel: str) -> tuple[np.ndarray, np.ndarray]:
        """(times, offsets) of a counter channel: continuous = raw + offset in force."""
        s = self.query(f"SELECT \"offset\" FROM {_ident(self.measurement + '_counter_offsets')}"
                       f"{self._where(channel, None, None)} ORDER BY time")
        t, off = self._columns(s, ["time", "offset"])
        return t.astype(np.int64).astype(TIME_DTYPE), off.astype(np.float64)

    def latest_ok(self, channel: str) -> tuple[np.datetime64, float] | None:
        s = self.query(f"SELECT value FROM {_ident(self.measurement)}{self._where(channel, None, None, ok_only=True)} "
                       "ORDER BY time DESC LIMIT 1")
        t, v = self._columns(s, ["time", "value"])
        return None if not len(t) else (np.datetime64(int(t[0]), "ms"), float(v[0]))

    def aggregate(self, channel: str, start: TimeLike, end: TimeLike, every_s: float) -> Aggregate:
        """Intervals aligned on `start` (or on the epoch), like the embedded store."""
        every_ms = int(round(every_s * 1000))
        if every_ms <= 0:
            raise ValueError("every_s must be positive")
        offset_ms = (_ms(start, self.tz) or 0) % every_ms
        s = self.query(f"SELECT mean(value), min(value), max(value), count(value) FROM {_ident(self.measurement)}"
                       f"{self._where(channel, start, end, ok_only=True)} "
                       f"GROUP BY time({every_ms}ms, {offset_ms}ms) fill(none)")
        t, mean, mn, mx, n = self._columns(s, ["time", "mean", "min", "max", "count"])
        return Aggregate(t.astype(TIME_DTYPE), mean, mn, mx, n.astype(np.int64))

    def latest(self, channel: str) -> tuple[np.datetime64, float, int] | None:
        s = self.query(f"SELECT value, quality FROM {_ident(self.measurement)}{self._where(channel, None, None)} "
                       "ORDER BY time DESC LIMIT 1")
        t, v, q = self._columns(s, ["time", "value", "quality"])
        if not len(t):
            return None
        return np.datetime64(int(t[0]), "ms"), float(v[0]), int(q[0])

    def count(self, channel: str | None = None) -> int:
        s = self.query(f"SELECT count(quality) FROM {_ident(self.measurement)}{self._where(channel, None, None)}")
        (n,) = self._columns(s, ["count"])
        return int(n.sum()) if len(n) else 0

    def readings_estimate(self, start: TimeLike = None, end: TimeLike = None) -> int:
        """Readings in [start, end), counted by the server."""
        s = self.query(f"SELECT count(quality) FROM {_ident(self.measurement)}{self._where(None, start, end)}")
        (n,) = self._columns(s, ["count"])
        return int(n.sum()) if len(n) else 0

    def channels(self) -> list[ChannelInfo]:
        """Channels seen in the data (from series tags), with metadata we were given."""
        out = dict(self._infos)
        where = f' WHERE "site" = {_q(self.site)}' if self.site_only else ""
        for s in self.query(f"SHOW SERIES FROM {_ident(self.measurement)}{where}"):
            for (key,) in s.get("values", []):
                tags = dict(p.split("=", 1) for p in _split_key(key)[1:] if "=" in p)
                cid = tags.get("channel")
                if cid and cid not in out:
                    out[cid] = ChannelInfo(id=cid, quantity=tags.get("quantity", "power_kw"),
                                           equipment=tags.get("equipment"), system=tags.get("system"),
                                           equipment_kind=tags.get("equipment_kind"), meter=tags.get("meter"))
        return sorted(out.values(), key=lambda i: i.id)

    def time_range(self, channel: str | None = None) -> tuple[np.datetime64, np.datetime64] | None:
        w = self._where(channel, None, None)
        first = self._columns(self.query(f"SELECT first(quality) FROM {_ident(self.measurement)}{w}"), ["time"])[0]
        last = self._columns(self.query(f"SELECT last(quality) FROM {_ident(self.measurement)}{w}"), ["time"])[0]
        if not len(first):
            return None
        return np.datetime64(int(first[0]), "ms"), np.datetime64(int(last[0]), "ms")

    def apply_retention(self, now: TimeLike = None) -> int:
        """Delete points older than `retention_days` before `now` (default: the server's
        now()); 0 days keeps all.  InfluxDB does not say how many it deleted: returns -1
        when it deleted something unknown, else 0.
        (A retention policy / bucket retention in InfluxDB itself does the same job.)"""
        if not self.retention_days:
            return 0
        keep_s = int(self.retention_days * 86400)
        cut = f"now() - {keep_s}s" if now is None else f"{_ms(now, self.tz) - keep_s * 1000}ms"
        site = f'"site" = {_q(self.site)} AND ' if self.site_only else ""    # a central DB: only this site's
        self.query(f"DELETE FROM {_ident(self.measurement)} WHERE {site}time < {cut}", post=True)
        return -1

    def close(self) -> None:
        self.http.close()
        if self._v2 is not None:
            self._v2.close()
