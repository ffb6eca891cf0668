"""The project's two plug-in interfaces stay complete: the Store (both backends
implement every method callers use) and the collector's Input (a registry entry
is all a new protocol needs).  Nobody probes them with hasattr/getattr."""
from __future__ import annotations

import ast
import asyncio
import inspect
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst

from helpers.demo import DEMO_SITE, REPO
from mieruka.collector.inputs import INPUTS, Input, build_inputs, input_class
from mieruka.collector.runner import CollectorOptions, Runner
from mieruka.errors import ConfigError
from mieruka.models import ChannelInfo, Quality, ReadingBatch
from mieruka.site import load_site, parse_site
from mieruka.store.base import Store
from mieruka.store.embedded import EmbeddedStore
from mieruka.store.influx import InfluxStore


# ------------------------------------------------------------------ store
@pytest.mark.parametrize("backend", [EmbeddedStore, InfluxStore])
def test_backends_implement_every_store_method_with_its_signature(backend):
    assert issubclass(backend, Store) and not backend.__abstractmethods__
    for name in Store.__abstractmethods__:
        impl, decl = getattr(backend, name), getattr(Store, name)
        assert impl is not decl, f"{backend.__name__}.{name} not implemented"
        assert list(inspect.signature(impl).parameters) == list(inspect.signature(decl).parameters), name


def test_store_interface_through_the_embedded_backend(tmp_path):
    """Counter offsets and the continuous read, latest OK value and count, as the
    collector (restart) and the analytics (consumption) use them."""
    t = np.array([0, 60_000, 120_000, 180_000], "datetime64[ms]")
    batch = ReadingBatch(t, np.full(4, "e", object), np.array([98.0, 99.0, 1.0, np.nan]),
                         np.array([0, 0, 0, Quality.TIMEOUT], np.uint8))
    with EmbeddedStore(tmp_path / "s.sqlite") as st:
        store: Store = st
        store.write(batch, counter_offsets=[("e", t[2], 100.0)])     # wrapped at 100 before the 3rd reading
        ot, off = store.counter_offsets("e")
        assert ot.tolist() == [t[2]] and off.tolist() == [100.0]
        _, v = store.read_continuous("e")
        assert v.tolist() == [98.0, 99.0, 101.0]            # OK readings, never stepping down
        assert store.latest_ok("e") == (t[2], 1.0)          # raw: the tracker adds the offset itself
        assert store.latest("e")[2] == Quality.TIMEOUT
        assert store.count("e") == 4 and store.count() == 4
        assert store.counter_offsets("nothing")[0].size == 0 and store.latest_ok("nothing") is None


# ------------------------------------------------------------------ inputs
class SteadyInput(Input):
    """A test protocol: one meter that reads 5 kW and a counter every 50 ms."""

    name = "steady"
    closed = 0

    @classmethod
    def from_site(cls, cfg, options):
        return cls()

    def channel_infos(self):
        return [ChannelInfo("steady.power", "power_kw", meter="steady"),
                ChannelInfo("steady.energy", "energy_kwh", meter="steady")]

    def counters(self):
        return {"steady.energy": None}

    async def run(self, emit):
        k = 0
        while True:
            t = np.array([1_700_000_000_000 + 50 * k] * 2, "datetime64[ms]")
            emit(ReadingBatch(t, np.array(["steady.power", "steady.energy"], object),
                              np.array([5.0, 10.0 + k]), np.zeros(2, np.uint8)))
            k += 1
            await asyncio.sleep(0.05)

    def close(self):
        SteadyInput.closed += 1


def test_a_new_protocol_is_one_registry_entry(tmp_path, monkeypatch):
    monkeypatch.setitem(INPUTS, "steady", f"{__name__}:SteadyInput")
    cfg = parse_site({"site": {"name": "t", "data_dir": str(tmp_path / "data")}, "collector": {"metrics_port": 0}})
    runner = Runner(cfg, options=CollectorOptions(flush_interval_s=0.1, metrics_port=0))
    assert [i.name for i in runner.inputs] == ["steady"]          # no meters, no [mqtt]: nothing else
    asyncio.run(runner.run(duration_s=1.0))
    assert SteadyInput.closed == 1
    st = EmbeddedStore.from_site(cfg, readonly=True)
    try:
        assert {c.id: c.quantity for c in st.channels()} == {"steady.power": "power_kw", "steady.energy": "energy_kwh"}
        t, v = st.read("steady.power")
        assert len(t) >= 5 and set(v.tolist()) == {5.0}
    finally:
        st.close()


class LosesACancelInput(SteadyInput):
    """Goes on after its first cancellation, as a poll loop does on Python < 3.12 when the
    cancel lands in the same loop turn as the reply it waits for (asyncio.wait_for, CPython
    gh-86296: pymodbus awaits every reply so); the second one ends it."""
    name = "loses_a_cancel"
    cancels = 0

    async def run(self, emit):
        while True:
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                LosesACancelInput.cancels += 1
                if LosesACancelInput.cancels > 1:
                    raise


def test_the_runner_stops_an_input_whose_cancellation_was_lost(tmp_path, monkeypatch):
    monkeypatch.setitem(INPUTS, "steady", f"{__name__}:LosesACancelInput")
    cfg = parse_site({"site": {"name": "t", "data_dir": str(tmp_path / "data")}, "collector": {"metrics_port": 0}})
    runner = Runner(cfg, options=CollectorOptions(flush_interval_s=0.1, metrics_port=0))

    async def main():
        # one cancel and an unbounded wait hung here for ever (a pytest-timeout in a loaded CI run)
        await asyncio.wait_for(runner.run(duration_s=0.3), 30)
    asyncio.run(main())
    assert LosesACancelInput.cancels == 2


def test_inputs_built_for_a_site(tmp_path):
    demo = load_site(DEMO_SITE, env={"MIERUKA_MODBUS_PORT": "1502", "MIERUKA_DATA_DIR": str(tmp_path)})
    built = build_inputs(demo, CollectorOptions())
    assert [i.name for i in built] == ["modbus"] and built[0].devices
    mqtt_only = load_site(REPO / "config/examples/shelly-mqtt-influx.toml",
                          env={"MIERUKA_DATA_DIR": str(tmp_path), "MIERUKA_INFLUX_URL": "http://127.0.0.1:8086",
                               "MIERUKA_MQTT_URL": "mqtt://127.0.0.1:1883"})
    assert [i.name for i in build_inputs(mqtt_only, CollectorOptions())] == ["mqtt"]
    assert input_class("modbus_rtu") is input_class("modbus_tcp")          # one input, shared lines
    with pytest.raises(KeyError, match="no input for protocol 'bacnet' \\(known: modbus_rtu, modbus_tcp, mqtt"):
        input_class("bacnet")


def test_mqtt_fields_on_meters_are_gone(tmp_path):
    p = tmp_path / "site.toml"
    p.write_text('[site]\nname = "t"\n[[meters]]\nid = "pm1"\nmodel = "sdm630"\ntopic = "a/b"\n'
                 '[[meters.channels]]\nid = "p"\nquantity = "power_kw"\nregister = "total_power"\n')
    with pytest.raises(ConfigError, match=r"meters\[0:pm1\]\.topic: unknown key"):
        load_site(p)
    p.write_text('[site]\nname = "t"\n[[meters]]\nid = "sh1"\nprotocol = "mqtt"\n')
    with pytest.raises(ConfigError, match=r"site.toml: meters\[0:sh1\]\.protocol: MQTT meters are configured as "
                                          r"\[\[mqtt.subscriptions\]\]"):
        load_site(p)


# ------------------------------------------------------------------ no probing
PROBED = {"store", "self.store", "inp", "input"}      # the names stores and inputs go by


def _probes(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("hasattr", "getattr") \
                and node.args and ast.unparse(node.args[0]) in PROBED:
            out.append(f"{path.relative_to(REPO)}:{node.lineno}: {ast.unparse(node)}")
    return out


def test_no_hasattr_probing_of_stores_or_inputs():
    files = [*REPO.glob("collector/*.py"), *REPO.glob("analytics/*.py"), *REPO.glob("mieruka/**/*.py"),
             *REPO.glob("api/*.py")]
    assert [p for f in files for p in _probes(f)] == []


@settings(max_examples=80, deadline=None)
@given(hst.lists(hst.one_of(hst.dictionaries(hst.sampled_from(["id", "protocol", "topic", "model"]),
                                          hst.one_of(hst.text(max_size=5), hst.sampled_from(["mqtt", "modbus_tcp"]),
                                                    hst.integers())),
                          hst.text(max_size=3), hst.integers()), max_size=3))
def test_any_meters_table_is_a_config_error_or_a_site(meters):
    """Whatever `[[meters]]` holds (MQTT leftovers, wrong types), loading gives a site or
    a one-line-per-problem ConfigError naming the file, never another exception."""
    try:
        parse_site({"site": {"name": "t"}, "meters": meters}, "site.toml")
    except ConfigError as e:
        assert str(e).startswith("site.toml: ")
        if any(isinstance(m, dict) and m.get("protocol") == "mqtt" for m in meters):
            assert "[[mqtt.subscriptions]]" in str(e)
