"""InfluxStore against real servers: influxd 1.6 (v1 write + InfluxQL reads) and
VictoriaMetrics (accepts the v2 write API); the forwarder through an outage and a
refused batch."""
from __future__ import annotations

import asyncio
import json
import subprocess
import tomllib
import urllib.request

import numpy as np
import pytest

from mieruka.collector.buffer import DiskBuffer
from mieruka.collector.forward import Forwarder
from mieruka.errors import ConfigError
from mieruka.models import ChannelInfo, Quality, ReadingBatch
from mieruka.site import parse_site
from mieruka.store.influx import InfluxStore, InfluxWriteError
from helpers.net import free_port, wait_for
from helpers.proc import Process
from helpers.servers import Influxd

T0 = np.datetime64("2026-04-01T00:00:00", "ms")


def series(channel: str, n: int, step_s: int = 1, v0: float = 0.0) -> ReadingBatch:
    t = T0 + np.arange(n).astype("timedelta64[s]").astype("timedelta64[ms]") * step_s
    return ReadingBatch.single_channel(channel, t, v0 + np.arange(n, dtype=float))


@pytest.fixture(scope="module")
def influxd(tmp_path_factory):
    s = Influxd(tmp_path_factory.mktemp("influx")).start()
    yield s
    s.stop()


def test_write_read_aggregate_latest_channels(influxd):
    st = InfluxStore(influxd.url, database="store_api", site="デモ 工場, 第2")
    st.set_channels([ChannelInfo(id="press power", quantity="power_kw", meter="pm=1", equipment="プレス 1",
                                 system="electricity")])
    b = series("press power", 600)
    b.value[10], b.quality[10] = np.nan, Quality.TIMEOUT
    st.write(b)
    st.write(b)                                                  # a resend stores nothing twice
    assert st.count() == 600
    t, v = st.read("press power")
    assert len(t) == 599 and t[0] == T0 and v[-1] == 599.0 and t.dtype == np.dtype("datetime64[ms]")
    t, v, q = st.read_quality("press power", "2026-04-01T09:00:05+09:00", T0 + np.timedelta64(20, "s"))
    assert len(t) == 15 and q[5] == Quality.TIMEOUT and np.isnan(v[5])
    a = st.aggregate("press power", T0, T0 + np.timedelta64(600, "s"), 60)
    ok = np.delete(np.arange(600.0), 10).reshape(-1)
    assert len(a.time) == 10 and a.count.tolist() == [59] + [60] * 9
    assert a.mean[1] == pytest.approx(ok[59:119].mean()) and a.min[0] == 0 and a.max[-1] == 599
    assert st.latest("press power") == (T0 + np.timedelta64(599, "s"), 599.0, 0)
    assert st.latest("nothing") is None
    assert st.time_range() == (T0, T0 + np.timedelta64(599, "s"))
    # tags come back through SHOW SERIES (escaped spaces, commas, equals and Japanese intact)
    fresh = InfluxStore(influxd.url, database="store_api")
    (info,) = fresh.channels()
    assert (info.id, info.quantity, info.meter, info.equipment, info.system) == \
        ("press power", "power_kw", "pm=1", "プレス 1", "electricity")
    tags = influxd.query('SHOW TAG VALUES FROM energy WITH KEY = "site"', db="store_api")
    assert tags["results"][0]["series"][0]["values"] == [["site", "デモ 工場, 第2"]]


def test_counter_offsets_and_aggregates_aligned_on_start(influxd):
    st = InfluxStore(influxd.url, database="counters")
    b = series("e", 10)
    b.value[:] = [1, 2, 3, 0.5, 1.5, 2.5, 0.1, 0.2, 0.3, 0.4]         # two resets
    st.write(b, counter_offsets=[("e", b.time[3], 3.0), ("e", b.time[6], 5.5)])
    ot, off = st.counter_offsets("e")
    assert ot.tolist() == [b.time[3], b.time[6]] and off.tolist() == [3.0, 5.5]
    t, v = st.read_continuous("e")
    assert np.all(np.diff(v) > 0) and v[-1] == pytest.approx(5.9)
    assert st.latest_ok("e") == (b.time[-1], 0.4)
    a = st.aggregate("e", T0 + np.timedelta64(1, "s"), None, 4)    # 4 s intervals from 00:00:01
    assert a.time.tolist() == [T0 + np.timedelta64(k, "s") for k in (1, 5, 9)] and a.count.tolist() == [4, 4, 1]


def test_influx_cli_reads_the_points(influxd):
    st = InfluxStore(influxd.url, database="cli_interop", site="s")
    st.set_channels([ChannelInfo(id="m1.power", quantity="power_kw", meter="m1")])
    st.write(series("m1.power", 5, v0=1.5))
    out = subprocess.run(["influx", "-host", "127.0.0.1", "-port", str(influxd.port), "-database", "cli_interop",
                          "-precision", "ms", "-format", "json", "-execute",
                          "SELECT value, quality FROM energy WHERE meter = 'm1' AND quantity = 'power_kw'"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)["results"][0]["series"][0]["values"]
    assert rows[0] == [int(T0.astype(np.int64)), 1.5, 0] and len(rows) == 5


class VictoriaMetrics(Process):
    def __init__(self, tmp):
        self.port = free_port()
        self.spawn(["/usr/bin/victoria-metrics", "-httpListenAddr", f"127.0.0.1:{self.port}",
                    "-storageDataPath", tmp / "vm", "-retentionPeriod", "100y"], port=self.port, timeout_s=60)

    def export(self) -> list[dict]:
        base = f"http://127.0.0.1:{self.port}"
        urllib.request.urlopen(base + "/internal/force_flush", timeout=30).read()
        q = urllib.parse.quote('{__name__=~"energy_.*"}')
        body = urllib.request.urlopen(f"{base}/api/v1/export?match[]={q}&start=0", timeout=30).read().decode()
        return [json.loads(line) for line in body.splitlines() if line]


def test_v2_write_api_with_influxdb_client(tmp_path):
    vm = VictoriaMetrics(tmp_path)
    try:
        st = InfluxStore(f"http://127.0.0.1:{vm.port}", database="energy", api="v2", token="t0ken", org="factory",
                         bucket="energy", site="s", batch_size=250)
        st.set_channels([ChannelInfo(id="a", quantity="power_kw", meter="m")])
        b = series("a", 1000)
        b.value[3], b.quality[3] = np.nan, Quality.EXCEPTION
        st.write(b)
        got = wait_for(lambda: {r["metric"]["__name__"]: r for r in vm.export()}, 60, what="exported series")
        val, qual = got["energy_value"], got["energy_quality"]
        assert len(qual["values"]) == 1000 and len(val["values"]) == 999
        assert val["metric"]["channel"] == "a" and val["metric"]["quantity"] == "power_kw"
        assert qual["values"][3] == 2 and val["timestamps"][0] == int(T0.astype(np.int64))
        st.close()
    finally:
        vm.stop()


def test_from_site_picks_the_api():
    def site(influx: str):
        doc = tomllib.loads(f'[site]\nname="x"\n[storage]\nbackend="influxdb"\n[storage.influxdb]\n{influx}')
        return parse_site(doc, "site.toml")
    assert InfluxStore.from_site(site('url="http://h:8086"\ndatabase="e"\ntoken=""')).api == "v1"
    assert InfluxStore.from_site(site('url="http://h:8086"\nbucket="e"\ntoken="t"\norg="o"')).api == "v2"
    v1_token = InfluxStore.from_site(site('url="http://h:8086"\ndatabase="e"\ntoken="t"'))
    assert v1_token.api == "v1" and v1_token.http.headers["Authorization"] == "Token t"
    with pytest.raises(ConfigError, match="v2 API needs `token` and `org`"):
        InfluxStore.from_site(site('url="http://h:8086"\nbucket="e"\napi="v2"'))
    with pytest.raises(ConfigError, match="give `database`"):
        InfluxStore.from_site(site('url="http://h:8086"'))


@pytest.mark.slow
def test_forwarder_waits_out_an_outage_then_delivers_exactly_once(tmp_path):
    port = free_port()
    st = InfluxStore(f"http://127.0.0.1:{port}", database="energy", timeout_s=1)
    with pytest.raises(InfluxWriteError) as e:
        st.write(series("x", 1))
    assert e.value.retry
    buf = DiskBuffer(tmp_path / "buf")
    fw = Forwarder(buf, st, batch_size=300, max_backoff_s=0.5)
    b = series("x", 1000)
    for k in range(0, 1000, 100):                       # ten records
        buf.append(ReadingBatch(b.time[k:k + 100], b.channel[k:k + 100], b.value[k:k + 100], b.quality[k:k + 100]))
    server = Influxd(tmp_path, port=port)

    async def main():
        stop = asyncio.Event()
        task = asyncio.create_task(fw.run(stop))
        await asyncio.sleep(2.0)
        assert fw.stats.failures >= 2 and fw.stats.down_since is not None and buf.pending == 1000
        await asyncio.to_thread(server.start)
        await asyncio.to_thread(wait_for, lambda: buf.pending == 0, 20)
        stop.set()
        await task

    try:
        asyncio.run(main())
        assert server.count() == 1000 and fw.stats.written == 1000 and fw.stats.down_since is None
    finally:
        server.stop()


def test_a_batch_the_server_refuses_is_saved_counted_and_skipped(influxd, tmp_path, caplog):
    st = InfluxStore(influxd.url, database="refuse")
    # a string field `value` already in this series: float points conflict (HTTP 400, not retryable);
    # the database is created checked (HTTP 200 can carry an error) and seen listed before the write
    influxd.create_database("refuse")
    influxd.write_lines("refuse", f'energy,channel=bad value="text",quality=0i {int(T0.astype(np.int64))}')
    buf = DiskBuffer(tmp_path / "buf")
    fw = Forwarder(buf, st, batch_size=5)
    buf.append(series("x", 5))
    buf.append(series("good", 5))

    async def main():
        assert await fw.forward_once() == 5          # refused: saved, counted, and the buffer moves on
        influxd.query("DROP MEASUREMENT energy", db="refuse", post=True)     # someone fixed the schema
        assert await fw.forward_once() == 5

    asyncio.run(main())
    assert fw.stats.rejected == 5 and fw.stats.written == 5 and buf.pending == 0
    (saved,) = (tmp_path / "buf" / "rejected").glob("*.npz")
    assert np.load(saved)["value"].tolist() == [0, 1, 2, 3, 4]
    assert "refused 5 readings for good" in caplog.text
    assert influxd.count(db="refuse", where="WHERE channel = 'good'") == 5


def test_retention_before_a_given_time(influxd):
    # keep 1 day before `now` = T0 + 2.5 d: the cut is T0 + 1.5 d, so of the readings at
    # T0, T0 + 1 d and T0 + 2 d only the last stays; without `now` the server's clock counts
    st = InfluxStore(influxd.url, database="retention", retention_days=1)
    day = np.timedelta64(86_400_000, "ms")
    st.write(ReadingBatch.single_channel("a", np.array([T0, T0 + day, T0 + 2 * day]), np.array([1.0, 2.0, 3.0])))
    assert st.apply_retention(now=T0 + 2 * day + day // 2) == -1          # InfluxDB does not say how many
    assert st.read("a")[1].tolist() == [3.0]
    assert InfluxStore(influxd.url, database="retention").apply_retention() == 0   # 0 days: keep all
