"""The shipped register maps (config/registers/): each names the manual it comes from
and says per field whether it was checked against it; each is served by the
simulator and read back by the collector with plausible values; `mieruka probe`
recognises each as laid out by its own file; mbpoll, a client nobody here wrote,
reads one."""
from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import tomllib

import numpy as np
import pytest

from helpers.collect import polled, run_collector
from mieruka.collector.discovery import probe
from mieruka.collector.modbus_conn import Connection
from mieruka.collector.registers import load_register_map
from mieruka.collector.runner import CollectorOptions, Runner
from mieruka.config import REGISTERS_DIR
from mieruka.quantities import QUANTITIES
from mieruka.simulators.modbus_server import ModbusSimulator
from mieruka.site import parse_site
from mieruka.store.embedded import EmbeddedStore

MAPS = sorted(p.stem for p in REGISTERS_DIR.glob("*.toml"))
REQUIRED = {"sdm630", "eastron_sdm120", "eastron_sdm72", "mitsubishi_emu4", "panasonic_kw9m", "panasonic_kw2g",
            "omron_km_n1", "omron_km_n2", "omron_km_n3", "schneider_iem3000", "schneider_pm5000",
            "carlo_gavazzi_em24", "janitza_umg", "suto_s4xx", "cs_instruments_va5xx"}
PLAUSIBLE = {"voltage_v": (80, 300), "frequency_hz": (45, 65), "power_factor": (-1, 1), "current_a": (0, 1e5),
             "temperature_c": (-40, 150), "pressure_mpa": (-0.1, 5), "air_flow_m3min": (0, 1e4)}


def test_every_map_names_its_manual_and_checks_per_field():
    assert REQUIRED <= set(MAPS)
    for name in MAPS:
        m = load_register_map(name)
        assert m.manual and m.revision, name
        assert all(f.checked is not None for f in m.fields.values()), name     # stated for every field
        assert all(f.quantity in QUANTITIES for f in m.fields.values()), name
        raw = tomllib.loads((REGISTERS_DIR / f"{name}.toml").read_text("utf-8"))
        if not any(f.checked for f in m.fields.values()):
            assert "unchecked" in (REGISTERS_DIR / f"{name}.toml").read_text("utf-8").lower(), name
        assert raw["meter"]["model"] == name
    for name in ("panasonic_kw9m", "panasonic_kw2g"):          # the MEWTOCOL trap is written down
        assert "MEWTOCOL" in load_register_map(name).notes


def site_with_every_map(port: int, data_dir) -> object:
    text = f'[site]\nname = "all maps"\ndata_dir = "{data_dir}"\n[collector]\nmetrics_port = 0\n'
    for unit, name in enumerate(MAPS, start=1):
        text += f'\n[[meters]]\nid = "{name}"\nmodel = "{name}"\nport = {port}\nunit_id = {unit}\ntimeout_s = 0.5\n'
        for fname, f in load_register_map(name).fields.items():
            text += (f'[[meters.channels]]\nid = "{name}.{fname}"\nquantity = "{f.quantity}"\n'
                     f'register = "{fname}"\n')
    return parse_site(tomllib.loads(text), "<maps>")


@pytest.mark.slow
def test_each_map_served_by_the_simulator_reads_back_plausibly(port, data_dir):
    cfg = site_with_every_map(port, data_dir)
    with ModbusSimulator(cfg, port=port) as sim:
        runner = Runner(cfg, options=CollectorOptions(metrics_port=0))
        run_collector(runner, polled(2), min_s=2.6)

        async def probe_all():
            out = {}
            for unit, name in enumerate(MAPS, start=1):
                m = next(x for x in cfg.meters if x.id == name)
                conn = Connection(f"probe-{unit}", m)
                try:
                    out[name] = (await probe(conn, unit, load_register_map(name), 2.0))[0]
                finally:
                    conn.close()
            return out
        best = asyncio.run(probe_all())
        assert set(sim.handle.gateway.function_codes) <= {3, 4}
    s = EmbeddedStore.from_site(cfg, readonly=True)
    for name in MAPS:
        m = load_register_map(name)
        for fname, f in m.fields.items():
            t, v, q = s.read_quality(f"{name}.{fname}")
            assert len(t) >= 2 and (q == 0).all(), (name, fname, q)
            lo, hi = PLAUSIBLE.get(f.quantity, (-1e9, 1e9))
            if QUANTITIES[f.quantity].counter:
                lo = 0
            assert ((v >= lo) & (v <= hi)).all(), (name, fname, v)
        # the layout the file states wins the probe (its own word order, base 0)
        b = best[name]
        assert (b.word_order, b.address_base) == (m.word_order, 0), (name, b)
    s.close()
    assert all(d.ok_polls >= 2 for d in runner.device_stats().values())


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("mbpoll") is None, reason="mbpoll (Debian package) not installed")
def test_mbpoll_reads_a_janitza_voltage(port, data_dir):
    cfg = site_with_every_map(port, data_dir)
    unit = MAPS.index("janitza_umg") + 1
    with ModbusSimulator(cfg, port=port):
        # holding register 19000 (mbpoll counts from 1: reference 19001), float, high word first
        out = subprocess.run(["mbpoll", "-m", "tcp", "-p", str(port), "-a", str(unit), "-t", "4:float", "-B",
                              "-r", "19001", "-c", "1", "-1", "127.0.0.1"], capture_output=True, text=True, timeout=20)
        m = re.search(r"\[19001\]:\s+([-\d.]+)", out.stdout)
        assert m, out.stdout + out.stderr
        assert 80 < float(m.group(1)) < 300
        # an EM24 voltage: int32 low word first, x10
        unit = MAPS.index("carlo_gavazzi_em24") + 1
        out = subprocess.run(["mbpoll", "-m", "tcp", "-p", str(port), "-a", str(unit), "-t", "4:int", "-r", "1",
                              "-c", "1", "-1", "127.0.0.1"], capture_output=True, text=True, timeout=20)
        m = re.search(r"\[1\]:\s+(-?\d+)", out.stdout)
        assert m, out.stdout + out.stderr
        assert 800 < int(m.group(1)) < 3000


def test_check_loads_every_meters_map_and_fields(tmp_path, capsys):
    from mieruka.cli import main
    site = tmp_path / "site.toml"
    base = '[site]\nname = "x"\n[[meters]]\nid = "m1"\nmodel = "{model}"\n' \
           '[[meters.channels]]\nid = "c1"\nquantity = "power_kw"\nregister = "{reg}"\n'
    for model, reg, needle in (("nosuch", "total_power", "meters[0:m1].model: register map 'nosuch' not found"),
                               ("sdm630", "totl_power", "meters[0:m1].channels[0:c1].register: register map 'sdm630' has "
                                                        "no field 'totl_power'")):
        site.write_text(base.format(model=model, reg=reg), "utf-8")
        assert main(["check", "--config", str(site)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {site}: ") and needle in err and "Traceback" not in err
    site.write_text(base.format(model="janitza_umg", reg="total_power"), "utf-8")
    assert main(["check", "--config", str(site)]) == 0


def test_docs_table_states_each_maps_checked_count():
    """docs/collector.md's shipped-maps table gives `checked / fields` for every map: the
    counts must be the files' own, so the table cannot drift from the maps."""
    from pathlib import Path
    doc = (Path(__file__).resolve().parents[1] / "docs" / "collector.md").read_text("utf-8")
    rows = {}
    for line in doc.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0].startswith("`"):
            names = re.findall(r"`([a-z0-9_]+)`", cells[0])
            counts = re.findall(r"(\d+) / (\d+)", cells[3])
            if len(counts) == 1:
                counts = counts * len(names)
            for name, (c, n) in zip(names, counts):
                rows[name] = (int(c), int(n))
    assert set(MAPS) <= set(rows), set(MAPS) - set(rows)
    for name in MAPS:
        fields = load_register_map(name).fields.values()
        assert rows[name] == (sum(bool(f.checked) for f in fields), len(fields)), name


# Figures confirmed from public sources (named in each map's header and `source`):
# (map, field) -> (0-based address, type, word order, scale).  Pinned so that an edit
# of a checked field cannot slip through unnoticed.
CONFIRMED = {
    ("omron_km_n1", "voltage"): (0x0000, "int32", "big", 0.1),
    ("omron_km_n1", "current"): (0x0006, "int32", "big", 0.001),
    ("omron_km_n1", "power_factor"): (0x000C, "int32", "big", 0.01),
    ("omron_km_n1", "frequency"): (0x000E, "int32", "big", 0.1),
    ("omron_km_n1", "active_power"): (0x0010, "int32", "big", 0.0001),     # 0.1 W -> kW
    ("omron_km_n1", "energy_wh"): (0x0200, "uint32", "big", 0.001),        # Wh -> kWh
    ("omron_km_n1", "energy_kwh"): (0x0220, "uint32", "big", 1.0),
    ("suto_s4xx", "temperature"): (0, "float32", "little", 1.0),
    ("suto_s4xx", "pressure"): (2, "float32", "little", 0.1),              # bar -> MPa
    ("suto_s4xx", "flow"): (6, "float32", "little", 1.0),
    ("suto_s4xx", "consumption"): (8, "uint32", "little", 1.0),
    ("suto_s4xx", "reverse_consumption"): (14, "uint32", "little", 1.0),
    ("schneider_pm5000", "total_reactive_power"): (3067, "float32", "big", 1.0),
    ("schneider_pm5000", "import_energy"): (3203, "int64", "big", 0.001),   # Wh -> kWh
    ("schneider_pm5000", "export_energy"): (3207, "int64", "big", 0.001),
}


@pytest.mark.parametrize("key", sorted(CONFIRMED))
def test_confirmed_fields_match_their_public_sources(key):
    name, field = key
    f = load_register_map(name).fields[field]
    assert (f.address, f.type, f.word_order, f.scale) == CONFIRMED[key]
    assert f.checked is True and f.function_code == 3


def test_checked_maps_name_where_the_figures_come_from():
    """A map with checked fields names the public source they were confirmed from; a
    placeholder map (none checked) says in its header that it is unchecked."""
    for name in MAPS:
        m = load_register_map(name)
        if any(f.checked for f in m.fields.values()):
            assert m.source and "placeholder" not in m.source.lower(), name
