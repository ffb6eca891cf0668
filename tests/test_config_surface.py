"""What a person typing a TOML file meets: a byte-order mark, CRLF, a typo in a key,
an IME left on (full-width digits), several mistakes at once.  Every error is one
line `FILE: line N: key.path: what is wrong`, with the closest known key for a typo.
The text-level fuzz mutates the annotated examples in config/examples/ byte by byte."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from mieruka.errors import ConfigError
from mieruka.site import load_site, read_toml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "config" / "examples"
DEMO = (EXAMPLES / "demo-site.toml").read_text("utf-8")
ENV = {"MIERUKA_DATA_DIR": "/tmp/mieruka-surface", "MIERUKA_INFLUX_URL": "http://127.0.0.1:9",
       "MIERUKA_MQTT_URL": "mqtt://127.0.0.1:9", "MIERUKA_INFLUX_TOKEN": "t"}


def _site(tmp: Path, text: str, name: str = "site.toml", raw: bytes | None = None) -> Path:
    shutil.copy(EXAMPLES / "demo-scenario.toml", tmp / "demo-scenario.toml")
    p = tmp / name
    if raw is not None:
        p.write_bytes(raw)
    else:
        p.write_text(text, "utf-8")
    return p


def _error(path: Path) -> str:
    with pytest.raises(ConfigError) as e:
        load_site(path, env=ENV)
    msg = str(e.value)
    assert "\n" not in msg, msg
    return msg


def test_byte_order_mark_and_crlf_load_like_plain_utf8(tmp_path):
    """Notepad and Excel save UTF-8 with a BOM: it was 'invalid TOML at line 1, column 1'."""
    plain = load_site(_site(tmp_path, DEMO), env=ENV)
    bom = load_site(_site(tmp_path, "", "bom.toml", raw=b"\xef\xbb\xbf" + DEMO.encode()), env=ENV)
    crlf = load_site(_site(tmp_path, "", "crlf.toml", raw=DEMO.replace("\n", "\r\n").encode()), env=ENV)
    assert bom.model_dump() == plain.model_dump() == crlf.model_dump()
    assert read_toml(tmp_path / "bom.toml") == read_toml(tmp_path / "site.toml")


@pytest.mark.parametrize("old, new, expect", [
    ('timezone = "Asia/Tokyo"', 'timezon = "Asia/Tokyo"',
     "line 8: site.timezon: unknown key 'timezon' (did you mean 'timezone'?)"),
    ('"設備" = "250tプレス"', '"設備" = "250tプレス"\nequipmnt_kind = "press"',
     "meters[1:pm-press].channels[0:press_power].equipmnt_kind: unknown key 'equipmnt_kind' "
     "(did you mean 'equipment_kind'?)"),
    ("contract_kw = 110", "contract_kv = 110", "demand.contract_kv: unknown key 'contract_kv' (did you mean 'contract_kw'?)"),
    ("[storage]\n", "[storage.bufer]\nmax_bytes = 1\n[storage]\n",
     "storage.bufer: unknown key 'bufer' (did you mean 'buffer'?)"),
])
def test_a_typo_names_file_line_key_and_the_key_meant(tmp_path, old, new, expect):
    assert old in DEMO
    p = _site(tmp_path, DEMO.replace(old, new, 1))
    msg = _error(p)
    assert msg.startswith(f"{p}: line "), msg
    assert expect in msg, msg
    line = int(msg.split(": line ")[1].split(":")[0])
    bad_key = expect.split("unknown key '")[1].split("'")[0]
    assert bad_key in p.read_text("utf-8").splitlines()[line - 1]


def test_a_typo_in_a_notify_target_is_one_line_without_the_union_member(tmp_path):
    """pydantic puts the union member (`webhook`) in the location and reports the key
    the typo meant as missing too: one line, the typo first, the count of the rest."""
    p = _site(tmp_path, DEMO + '\n[[notify]]\ntype = "webhook"\nurll = "http://127.0.0.1:9/x"\n')
    msg = _error(p)
    n = len(p.read_text("utf-8").splitlines())
    assert msg == (f"{p}: line {n}: notify[0].urll: unknown key 'urll' (did you mean 'url'?) "
                   "(and 1 more problem in this file)"), msg


def test_a_missing_environment_variable_names_its_line(tmp_path):
    p = _site(tmp_path, DEMO.replace('unit_id = 2', 'unit_id = "${NO_SUCH_UNIT}"'))
    msg = _error(p)
    n = next(i for i, x in enumerate(p.read_text("utf-8").splitlines(), 1) if "NO_SUCH_UNIT" in x)
    assert msg.startswith(f"{p}: line {n}: meters[1].unit_id: environment variable NO_SUCH_UNIT is not set"), msg


def test_full_width_digits(tmp_path):
    """An IME left on: a quoted number in full-width digits reads as the number; a bare
    one (not TOML) names the line and shows it in half-width."""
    ok = load_site(_site(tmp_path, DEMO.replace("poll_interval_s = 1.0", 'poll_interval_s = "２．５"')), env=ENV)
    assert ok.meters[0].poll_interval_s == 2.5
    p = _site(tmp_path, DEMO.replace("poll_interval_s = 1.0", "poll_interval_s = １.０"), "fw.toml")
    msg = _error(p)
    assert "line 89" in msg and "full-width" in msg and "`poll_interval_s = 1.0`" in msg, msg
    # a full-width digit in a text field is text, kept as written
    ok = load_site(_site(tmp_path, DEMO.replace('name = "プレスライン分電盤"', 'name = "第２ライン"')), env=ENV)
    assert ok.meters[1].name == "第２ライン"


_EDITS = st.sampled_from(["", "=", "[", "]", "[[", '"', "'", "\n", "#", ".", "０", "　", "\ufeff", "\r\n", "-1",
                          "nan", "1e400", "${NOPE}", "meters", "x = 1\n", "[meters]\n", "[[meters.channels]]\n",
                          "工程 = 1\n", "\x00"])


def _loader(example: str):
    if "scenario" in example:
        from simulators.scenario import load_scenario
        return load_scenario
    if example.startswith("import-"):
        from mieruka.importer.mapping import load_mapping
        return load_mapping
    return lambda p: load_site(p, env=ENV)


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.toml")))
def test_mutated_example_files_load_or_fail_with_one_line(tmp_path_factory, example):
    """Byte-level mutations of each shipped example (a cut, an insertion, a line
    doubled): load_site either loads or raises one ConfigError line naming the file;
    never another exception, never a line number past the end of the file."""
    tmp = tmp_path_factory.mktemp("mut")
    for p in EXAMPLES.glob("*"):
        if p.is_file():
            shutil.copy(p, tmp / p.name)
    text = (EXAMPLES / example).read_text("utf-8")
    target = tmp / ("mutated-" + example)
    load = _loader(example)
    load(EXAMPLES / example)

    @settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.integers(0, len(text)), st.integers(0, 40), _EDITS, st.booleans())
    def check(pos, cut, insert, double_line):
        t = text[:pos] + insert + text[pos + cut:]
        if double_line:
            lines = t.splitlines(keepends=True)
            k = pos % max(len(lines), 1)
            t = "".join(lines[:k + 1] + lines[k:k + 1] + lines[k + 1:])
        target.write_bytes(t.encode("utf-8", "surrogatepass"))
        try:
            load(target)
        except ConfigError as e:
            msg = str(e)
            assert msg.startswith(str(target)) and "\n" not in msg, msg
            if ": line " in msg:
                n = int(msg.split(": line ")[1].split(":")[0].split(",")[0])
                assert 1 <= n <= len(t.splitlines()) + 1, msg

    check()


@pytest.mark.parametrize("old, new, expect", [
    ('id = "pm-press"', 'id = "pm-main"', "meters[1].id: meter id 'pm-main' is used twice (first on line 82)"),
    ('id = "press_energy"', 'id = "main_power"',
     "meters[1].channels[1].id: channel id 'main_power' is used twice (first on line 91)"),
])
def test_a_duplicate_id_names_both_lines(tmp_path, old, new, expect):
    """Was `site.toml: (top level): meter id 'pm-main' is used twice`: no line, no key."""
    p = _site(tmp_path, DEMO.replace(old, new, 1))
    msg = _error(p)
    n = [i for i, x in enumerate(p.read_text("utf-8").splitlines(), 1) if x == new][-1]
    assert msg == f"{p}: line {n}: {expect}", msg


def test_fleet_manifest_errors_name_their_line(tmp_path):
    from mieruka.service.fleet_manifest import load_manifest
    site = EXAMPLES / "demo-site.toml"
    p = tmp_path / "fleet.toml"
    p.write_text(f'[[sites]]\nid = "a"\nconfig = "{site}"\nrecordings = ["x.csv"]\n'
                 f'[[sites]]\nid = "a"\nconfig = "{site}"\nrecordings = ["x.csv"]\n', "utf-8")
    with pytest.raises(ConfigError) as e:
        load_manifest(p)
    assert str(e.value) == f"{p}: line 6: sites[1].id: site id 'a' is used twice (first on line 2)"
    p.write_text(f'[[sites]]\nid = "a"\nconfig = "{site}"\nrecordings = ["x.csv"]\n', "utf-8")
    error = load_manifest(p).sites[0].error       # that site fails, the others are analysed
    assert error.startswith(f"{p}: line 4: sites[0:a].recordings: 'x.csv' matches no .csv"), error


REGMAP = (ROOT / "config" / "registers" / "sdm630.toml").read_text("utf-8")


@pytest.mark.parametrize("old, new, expect", [
    ("address = 0x0000", 'address = "abc"', "line 22: fields.voltage_l1.address: Input should be a valid integer"),
    ('type = "float32"\nunit = "V"', 'type = "float32"\nscale = 0\nunit = "V"', "fields.voltage_l1.scale: scale 0"),
    ('type = "float32"\nunit = "V"', 'type = "float32"\nscale = "x"\nunit = "V"', "fields.voltage_l1.scale:"),
    ("min = 0\nmax = 500", 'min = "low"\nmax = 500', "fields.voltage_l1.min:"),
    ("min = 0\nmax = 500", "min = 500\nmax = 0", "min 500 is above max 0"),
    ("max_registers_per_read = 80", 'max_registers_per_read = "x"', "meter.max_registers_per_read:"),
    ('type = "float32"', 'type = ["float32"]', "fields.voltage_l1.type:"),
    ('[fields.voltage_l1]', '[fields.voltage_l1]\ncounter = "yes"', "fields.voltage_l1.counter:"),
    ('quantity = "voltage_v"', 'quantity = "volts"', "fields.voltage_l1.quantity: unknown quantity 'volts'"),
    ('unit = "V"', 'unti = "V"', "fields.voltage_l1.unti: unknown key 'unti' (did you mean 'unit'?)"),
])
def test_register_map_files_are_validated_like_the_config(tmp_path, old, new, expect):
    """A custom register map (`model = "path/to/map.toml"`) with a wrong value was a
    ValueError/TypeError traceback (address "abc", scale "x", min "low", a list as type)
    or was accepted (scale 0, min above max, counter = "yes", an unknown quantity)."""
    from collector.registers import load_register_map
    assert old in REGMAP
    p = tmp_path / "meter.toml"
    p.write_text(REGMAP.replace(old, new, 1), "utf-8")
    with pytest.raises(ConfigError) as e:
        load_register_map(str(p))
    assert str(e.value).startswith(f"{p}: ") and expect in str(e.value) and "\n" not in str(e.value), str(e.value)


@pytest.mark.parametrize("url, expect", [
    ("http://127.0.0.1:99999/hook/SECRET", "'http://127.0.0.1:99999/…': the port is not a number in 1..65535"),
    ("http://exa mple.com/SECRET", "is not an http:// or https:// URL"),
    ("http://:80/SECRET", "'http://:80/…': no host"),
    ("file:///etc/passwd", "is not an http:// or https:// URL"),
])
def test_webhook_url_that_would_fail_at_the_first_alarm_is_refused_at_start(tmp_path, url, expect):
    """Port 99999 and a space in the host were accepted: the first alarm, maybe years
    later, would have failed.  The message never shows the URL's path (a webhook's secret)."""
    p = _site(tmp_path, DEMO + f'\n[[notify]]\ntype = "webhook"\nurl = "{url}"\n')
    msg = _error(p)
    assert "notify[0].url:" in msg and expect in msg and "SECRET" not in msg, msg


@pytest.mark.parametrize("raw", [b"", b"\n\r\n  \n", b"\xef\xbb\xbf"])
def test_an_empty_file_is_called_empty(tmp_path, raw):
    p = _site(tmp_path, "", raw=raw)
    assert _error(p) == f"{p}: empty config file (see config/examples/ for an annotated one)"


def test_import_mapping_duplicate_channel_names_both_lines(tmp_path):
    """Was 'map.toml: (top level): channel ... is given to two columns' (no line)."""
    from mieruka.importer.mapping import load_mapping
    text = (EXAMPLES / "import-steel-industry.toml").read_text("utf-8")
    p = tmp_path / "map.toml"
    p.write_text(text.replace('channel = "plant"\n', 'channel = "plant_kvar_lagging"\n', 1), "utf-8")
    lines = p.read_text("utf-8").splitlines()
    first, second = [i for i, x in enumerate(lines, 1) if x == 'channel = "plant_kvar_lagging"']
    with pytest.raises(ConfigError) as e:
        load_mapping(p)
    assert str(e.value) == (f"{p}: line {second}: columns[1].channel: channel 'plant_kvar_lagging' is mapped twice "
                            f"(first on line {first}, columns[0])")


@pytest.mark.parametrize("edit, expect", [
    (lambda t, d: t.replace('scenario = "demo-scenario.toml"', f'scenario = "{d}"'),
     "simulation.scenario: {d}: is a folder, not a scenario file"),
    (lambda t, d: t.replace('scenario = "demo-scenario.toml"', 'scenario = "nope.toml"'),
     "simulation.scenario: {tmp}/nope.toml: no such scenario file"),
    (lambda t, d: t + f'\n[api]\ntokens_file = "{d}"\n', "api.tokens_file: {d} is a folder, not a tokens file"),
    (lambda t, d: t.replace('factor_set = "shk_2023"', f'factor_set = "shk_2023"\nbills_file = "{d}"'),
     "co2.bills_file: is a folder, not a bills file: {d}"),
    (lambda t, d: t.replace('factor_set = "shk_2023"', f'factor_set = "shk_2023"\nfactor_files = ["{d}"]'),
     "co2.factor_files: {d}: is a folder, not a factor file"),
])
def test_check_names_folders_and_missing_files_the_config_points_to(tmp_path, capsys, monkeypatch, edit, expect):
    """`check` said 'config OK' for a scenario that is a folder or missing (simulate then
    failed), and called a tokens folder 'readable by others (mode 0755)'."""
    from mieruka.cli import main
    monkeypatch.setenv("MIERUKA_DATA_DIR", str(tmp_path / "data"))
    d = tmp_path / "a-folder"
    d.mkdir()
    p = _site(tmp_path, edit(DEMO, d))
    assert main(["check", "--config", str(p)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and expect.format(d=d, tmp=tmp_path) in err, err
