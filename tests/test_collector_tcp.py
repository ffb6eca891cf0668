"""The Modbus collector against the simulator over real TCP sockets: schedule, quality
flags under injected faults, illegal addresses, coalescing and read-only operation."""
from __future__ import annotations

import asyncio
import logging

import numpy as np
import pytest

from helpers.collect import polled, run_collector
from helpers.demo import demo_site
from mieruka.collector.modbus_conn import WriteRefused, _only_reads
from mieruka.collector.modbus_plan import Block, plan_reads
from mieruka.collector.registers import load_register_map
from mieruka.collector.runner import CollectorOptions, Runner
from mieruka.models import Quality
from mieruka.simulators.modbus_server import ModbusSimulator
from mieruka.simulators.scenario import FaultSpec
from mieruka.store.embedded import EmbeddedStore


def collect(cfg, seconds: float, until=None, **opts):
    """At least `seconds` of collection, and on until `until(runner)` holds."""
    runner = Runner(cfg, options=CollectorOptions(**{"metrics_port": 0, **opts}))   # not the fixed 9810
    stats = run_collector(runner, until, min_s=seconds)
    return runner, stats


def on_grid(t: np.ndarray, step_ms: int = 1000) -> bool:
    ti = t.astype(np.int64)
    return bool((ti % step_ms == 0).all() and (np.diff(ti) == step_ms).all())


@pytest.mark.slow
def test_collects_every_demo_channel_on_the_one_second_grid(port, data_dir):
    cfg = demo_site(port, data_dir)
    with ModbusSimulator(cfg, port=port):
        runner, stats = collect(cfg, 3.6, polled(3))
    s = EmbeddedStore.from_site(cfg, readonly=True)
    for _, ch in cfg.channels():
        t, v, q = s.read_quality(ch.id)
        assert len(t) >= 3, ch.id
        assert on_grid(t), (ch.id, t)
        assert (q == Quality.OK).all(), (ch.id, q)
    t, v = s.read("main_voltage_l1")
    assert ((v > 80) & (v < 300)).all()                      # a plausible mains voltage, decoded right
    assert (np.diff(s.read("main_energy")[1]) >= 0).all()     # counters do not run backwards
    assert {c.id for c in s.channels()} >= {"main_power", "air_volume"}
    assert next(c for c in s.channels() if c.id == "air_flow").system == "air1"
    assert all(d.missed_slots == 0 for d in runner.device_stats().values())


@pytest.mark.slow
def test_faulty_meters_are_flagged_and_the_others_keep_their_schedule(port, data_dir, caplog):
    from helpers.net import free_port
    dead = free_port()                                 # pm-machining sits behind a gateway that is off
    cfg = demo_site(port, data_dir, lambda t: t.replace(
        'model = "omron_km_n1"\nhost = "127.0.0.1"\nport = "${MIERUKA_MODBUS_PORT:-5020}"',
        f'model = "omron_km_n1"\nhost = "127.0.0.1"\nport = {dead}'))
    assert next(m for m in cfg.meters if m.id == "pm-machining").port == dead
    faults = [FaultSpec(meter="pm-hvac", kind="timeout"),
              FaultSpec(meter="pm-compressor", kind="exception", exception_code=4),
              FaultSpec(meter="pm-press", kind="garbage", garbage="nan"),
              FaultSpec(meter="pm-main", kind="stuck")]       # the incomer never reads 0 (zeros are never stale)
    caplog.set_level(logging.WARNING, logger="mieruka.collector")
    with ModbusSimulator(cfg, port=port, faults=faults):
        runner, stats = collect(cfg, 4.6, lambda r: polled(4, "pm-lighting", "fm-air")(r) and polled(
            4, "pm-compressor", "pm-machining", "pm-main", ok=False)(r) and r.device_stats()["pm-hvac"].errors["timeout"] >= 2,
            stale_after_s=1.5)
    s = EmbeddedStore.from_site(cfg, readonly=True)

    def q(ch):
        return s.read_quality(ch)[2]

    assert (q("hvac_power") == Quality.TIMEOUT).all() and len(q("hvac_power")) >= 2
    assert (q("compressor_power") == Quality.EXCEPTION).all() and len(q("compressor_power")) >= 4
    assert (q("press_power") == Quality.OUT_OF_RANGE).all() and (q("press_energy") == Quality.OUT_OF_RANGE).all()
    for ch in ("main_power", "main_voltage_l1"):
        qm = q(ch)
        assert qm[0] == Quality.OK and (qm[-2:] == Quality.STALE).all(), (ch, qm)
    assert (q("main_energy") == Quality.OK).all()               # a counter may stand still
    assert np.isnan(s.read_quality("hvac_power")[1]).all()
    assert (q("machining_power") == Quality.ERROR).all() and len(q("machining_power")) >= 4
    # the healthy meters behind the same gateway: every slot polled, stamped on the grid, all OK
    for ch in ("lighting_power", "air_flow", "air_volume", "air_pressure"):
        t, _, qq = s.read_quality(ch)
        assert len(t) >= 4 and on_grid(t) and (qq == Quality.OK).all(), ch
    dev = runner.device_stats()
    assert dev["pm-lighting"].missed_slots == 0 and dev["fm-air"].missed_slots == 0
    assert dev["pm-hvac"].errors["timeout"] >= 2
    # one log line when a problem starts (with its reason), not one per failed read
    assert any("pm-machining" in r.getMessage() and "cannot connect" in r.getMessage() for r in caplog.records)
    starts = [r for r in caplog.records if "problem starts" in r.getMessage()]
    assert sorted(r.getMessage().split()[0] for r in starts) == ["pm-compressor", "pm-hvac", "pm-machining", "pm-main",
                                                                    "pm-press"]


@pytest.mark.slow
def test_illegal_address_loses_only_that_field(port, data_dir, caplog):
    # pm-main read in one coalesced block (fill_holes) that the simulator refuses because it
    # touches total_power: the collector bisects, flags that field, keeps the rest
    cfg = demo_site(port, data_dir, lambda t: t.replace("unit_id = 1\n", "unit_id = 1\nfill_holes = 100\n", 1))
    faults = [FaultSpec(meter="pm-main", kind="exception", exception_code=2, address=0x34)]
    caplog.set_level(logging.WARNING, logger="mieruka.collector")
    with ModbusSimulator(cfg, port=port, faults=faults):
        runner, _ = collect(cfg, 3.6, polled(3, "pm-main", ok=False), recheck_bad_fields_s=1.0)
    s = EmbeddedStore.from_site(cfg, readonly=True)
    assert (s.read_quality("main_power")[2] == Quality.EXCEPTION).all()
    # re-probed every second, still refused: said once, not once per probe
    assert sum("answers Modbus exception 2" in r.getMessage() for r in caplog.records) == 1
    for ch in ("main_voltage_l1", "main_energy"):
        t, _, q = s.read_quality(ch)
        assert len(t) >= 3 and (q == Quality.OK).all() and on_grid(t), ch
    dev = runner.device_stats()["pm-main"]
    assert dev.bad_fields == {"total_power": 2}
    # after the first poll the plan reads around the bad field: 2 requests per poll, not a bisection each time
    m = next(d for d in runner.inputs[0].devices if d.meter.id == "pm-main")
    assert sorted(b.address for b in m.plan) == [0, 72]


def test_coalescing_fill_holes_and_caps():
    rm = load_register_map("sdm630")
    fields = list(rm.fields.values())
    one_each = plan_reads(fields, 125, 0, per_field=True)
    assert len(one_each) == len(fields)
    tight = plan_reads(fields, rm.max_registers_per_read, 0)
    filled = plan_reads(fields, rm.max_registers_per_read, 20)
    assert len(filled) < len(tight) < len(one_each)
    for plan in (tight, filled):
        assert all(b.count <= 80 for b in plan)                 # the SDM630's own cap
        got = sorted(f.name for b in plan for f in b.fields)
        assert got == sorted(rm.fields)                          # every field read exactly once
        for b in plan:
            assert all(b.address <= f.address and f.address + f.count <= b.address + b.count for f in b.fields)
    assert len(plan_reads(fields, 10, 100)) > len(filled)        # a lower per-device cap splits more


def test_the_collector_cannot_send_a_write():
    from pymodbus.pdu.register_message import WriteSingleRegisterRequest, ReadInputRegistersRequest
    with pytest.raises(WriteRefused):
        _only_reads(True, WriteSingleRegisterRequest(address=0, registers=[1], dev_id=1))
    assert _only_reads(True, ReadInputRegistersRequest(address=0, count=2, dev_id=1)) is not None

    async def try_block():
        from mieruka.collector.modbus_conn import Connection
        from mieruka.site import Meter
        c = Connection("x", Meter(id="m", model="sdm630", port=1))
        await c.read(Block(fc=6, address=0, count=1, fields=()), 1)
    with pytest.raises(WriteRefused):
        asyncio.run(try_block())


@pytest.mark.parametrize("model", ["sdm630", "omron_km_n1", "suto_s4xx"])
def test_block_decode_equals_the_register_map_codec(model):
    rm = load_register_map(model)
    rng = np.random.default_rng(3)
    for plan in (plan_reads(list(rm.fields.values()), 125, 200), plan_reads(list(rm.fields.values()), 125, 0)):
        for b in plan:
            for _ in range(50):
                regs = rng.integers(0, 65536, b.count).tolist()
                want = {f.name: f.decode(b.words(regs, f)) for f in b.fields}
                got = dict(b.decode(regs))
                assert got.keys() == want.keys()
                for k in want:
                    assert (got[k] == want[k]) or (np.isnan(got[k]) and np.isnan(want[k])), (model, k)


@pytest.mark.slow
def test_shared_gateway_connection_a_dead_unit_costs_the_others_no_slot(port, data_dir):
    # one TCP connection for all seven meters (gateways that take a single client): the silent
    # unit holds the line one timeout per attempt, never its whole retry sequence
    cfg = demo_site(port, data_dir, lambda t: t.replace("poll_interval_s = 1.0\n", "poll_interval_s = 1.0\n", 1)
                    .replace("unit_id = 5\n", "unit_id = 5\ntimeout_s = 0.15\n"))
    with ModbusSimulator(cfg, port=port, faults=[FaultSpec(meter="pm-hvac", kind="timeout")]):
        runner, _ = collect(cfg, 4.6, polled(4, "pm-main", "pm-press", "pm-machining", "fm-air", "pm-compressor"),
                            tcp_connection="per_gateway")
    assert len(runner.inputs[0].connections) == 1
    s = EmbeddedStore.from_site(cfg, readonly=True)
    assert (s.read_quality("hvac_power")[2] == Quality.TIMEOUT).all()
    for ch in ("main_power", "press_power", "machining_power", "air_flow", "compressor_power"):
        t, _, q = s.read_quality(ch)
        assert len(t) >= 4 and on_grid(t) and (q == Quality.OK).all(), ch
    dev = runner.device_stats()
    assert all(dev[m].missed_slots == 0 for m in dev if m != "pm-hvac"), {m: d.missed_slots for m, d in dev.items()}
