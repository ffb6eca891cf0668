"""Site config: env expansion, validation messages that name file and key, no tracebacks."""
import subprocess
import sys
from pathlib import Path

import pytest

from mieruka.config import EXAMPLES_DIR
from mieruka.envsubst import MissingVariable, expand
from mieruka.errors import ConfigError
from mieruka.site import load_site

DEMO = EXAMPLES_DIR / "demo-site.toml"
MIERUKA = [sys.executable, "-m", "mieruka.cli"]


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "site.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_expand_default_and_set_and_empty():
    env = {"PORT": "1502", "EMPTY": ""}
    assert expand("${PORT:-5020}", env) == "1502"
    assert expand("${NOPE:-5020}", env) == "5020"
    assert expand("${EMPTY:-x}", env) == "x"        # `:-` also replaces empty
    assert expand("${EMPTY-x}", env) == ""          # `-` only replaces unset
    assert expand("a$${LITERAL}b", env) == "a${LITERAL}b"
    assert expand({"k": ["${PORT}", 3]}, env) == {"k": ["1502", 3]}
    with pytest.raises(MissingVariable) as e:
        expand({"storage": {"token": "${SECRET}"}}, env)
    assert e.value.path == "storage.token"


def test_demo_config_loads_with_env(monkeypatch, tmp_path):
    monkeypatch.setenv("MIERUKA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MIERUKA_MODBUS_PORT", "15020")
    cfg = load_site(DEMO)
    assert cfg.data_dir == tmp_path / "data"
    assert {m.port for m in cfg.meters if m.protocol == "modbus_tcp"} == {15020}
    press = cfg.channel("press_power")
    assert press.process == "プレス工程" and press.equipment == "250tプレス"   # Japanese keys
    assert cfg.site.timezone == "Asia/Tokyo"


@pytest.mark.parametrize("text, expected", [
    ('[site]\nname = "x"\ntimezone = "Mars/Base"\n', "site.timezone: unknown time zone 'Mars/Base'"),
    ('[site]\nname = "x"\n[calendar]\nholidays = "XX"\n', "calendar.holidays: 'XX' is not a country code"),
    ('[site]\nname = "x"\n[calendar.shifts]\nmon = ["8-17"]\n', "calendar.shifts: mon: '8-17' is not HH:MM-HH:MM"),
    ('[site]\nname = "x"\nnmae = 1\n', "site.nmae: unknown key"),
    ('[tariffs]\nelectricity_jpy_per_kwh = 20\n', "site: required key is missing"),
    ('[site]\nname = "x"\n[[meters]]\nid = "m1"\nmodel = "sdm630"\n[[meters.channels]]\nid = "c1"\nquantity = "powr"\nregister = "total_power"\n',
     "meters[0:m1].channels[0:c1].quantity: unknown quantity 'powr'"),
    ('[site]\nname = "x"\n[[meters]]\nid = "m1"\nprotocol = "modbus_tcp"\n', "meters[0:m1]: Modbus meters need `model`"),
    ('[site]\nname = "x"\n[[meters]]\nid = "m1"\nmodel = "sdm630"\nport = 70000\n', "meters[0:m1].port:"),
    ('[site]\nname = "x"\ndata_dir = "${NOT_SET_ANYWHERE_42}"\n', "site.data_dir: environment variable NOT_SET_ANYWHERE_42 is not set"),
    ('[site\nname = "x"\n', "invalid TOML"),
    # 1e400 parses as inf: an infinite tariff would price every finding at inf yen
    ('[site]\nname = "x"\n[tariffs]\nelectricity_jpy_per_kwh = 1e400\n',
     "tariffs.electricity_jpy_per_kwh: Input should be a finite number"),
    ('[site]\nname = "x"\n[tariffs]\ngas_jpy_per_m3 = nan\n', "tariffs.gas_jpy_per_m3:"),
])
def test_validation_messages_name_file_and_key(tmp_path, text, expected):
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_site(p)
    msg = str(e.value)
    assert msg.startswith(str(p)), msg
    assert expected in msg, msg


def test_duplicate_channel_ids_refused(tmp_path):
    p = write(tmp_path, '[site]\nname = "x"\n' + ''.join(
        f'[[meters]]\nid = "m{i}"\nmodel = "sdm630"\n[[meters.channels]]\nid = "same"\nquantity = "power_kw"\nregister = "total_power"\n'
        for i in range(2)))
    with pytest.raises(ConfigError, match="channel id 'same' is used twice"):
        load_site(p)


def test_cli_check_exit_codes_without_traceback(tmp_path):
    ok = subprocess.run(MIERUKA + ["check", "--config", str(DEMO)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "config OK" in ok.stdout
    bad = write(tmp_path, '[site]\nname = "x"\ntimezone = "Nowhere"\n')
    r = subprocess.run(MIERUKA + ["check", "--config", str(bad)], capture_output=True, text=True)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert f"error: {bad}: line 3: site.timezone: unknown time zone" in r.stderr
    r = subprocess.run(MIERUKA + ["check", "--config", str(tmp_path / "missing.toml")], capture_output=True, text=True)
    assert r.returncode == 2 and "no such config file" in r.stderr


def test_every_command_has_help():
    from mieruka.cli import COMMANDS
    for name in COMMANDS:
        r = subprocess.run(MIERUKA + [name, "--help"], capture_output=True, text=True)
        assert r.returncode == 0, (name, r.stderr)
        assert "Usage:" in r.stdout


def test_check_validates_tables_other_parts_own(tmp_path):
    """`mieruka check` runs the [mqtt], [collector] and [simulation] models too."""
    for table, expected in (('[mqtt]\nbogus = 1\n', "mqtt.bogus: unknown key"),
                            ('[collector]\nmetrics_port = "abc"\n', "collector.metrics_port:"),
                            ('[simulation]\nsead = 3\n', "simulation.sead: unknown key")):
        p = write(tmp_path, '[site]\nname = "x"\n' + table)
        r = subprocess.run(MIERUKA + ["check", "--config", str(p)], capture_output=True, text=True)
        assert r.returncode == 2 and expected in r.stderr, r.stderr
        assert "Traceback" not in r.stderr


def test_japanese_quantity_names_in_a_site_config(tmp_path):
    """`電力` / `電力量` are accepted on channels as in import mappings, stored as the canonical names."""
    p = write(tmp_path, '[site]\nname = "x"\n[[meters]]\nid = "m1"\nmodel = "eastron_sdm630"\nhost = "127.0.0.1"\n'
                        '[[meters.channels]]\nid = "p"\nquantity = "電力"\nregister = "total_power"\n'
                        '[[meters.channels]]\nid = "e"\nquantity = "電力量"\nregister = "import_energy"\n')
    cfg = load_site(p)
    assert cfg.channel("p").quantity == "power_kw" and cfg.channel("e").quantity == "energy_kwh"
