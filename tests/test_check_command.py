"""Issue 10 items 9 and 10: `mieruka check` finds everything `collect` would refuse
(the same preparation: collector.runner.prepare), and the block printed by
`serve --hash-token` is accepted by `check` when pasted under the config."""
from __future__ import annotations

import hashlib
import pytest

from helpers.api_site import write_config

METER = '''
[[meters]]
id = "pm1"
model = "{model}"
host = "127.0.0.1"
port = 1
[[meters.channels]]
id = "p"
register = "{field}"
quantity = "power_kw"
'''


class _Result:
    def __init__(self, rc, out, err):
        self.returncode, self.stdout, self.stderr = rc, out, err


@pytest.fixture
def cli(capsys):
    """The `mieruka` command in this process (any exception but the CLI's own one-line
    errors fails the test, as a traceback would)."""
    from mieruka.cli import main

    def run(*args):
        capsys.readouterr()
        rc = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return _Result(rc, out, err)
    return run


CASES = {
    "unknown register map": (METER.format(model="no_such_meter", field="total_power"),
                             ": meters[0:pm1].model: register map 'no_such_meter' not found"),
    "unknown register field": (METER.format(model="sdm630", field="no_such_field"),
                               ": meters[0:pm1].channels[0:p].register: register map 'sdm630' has no field "
                               "'no_such_field'"),
    "missing model": (METER.replace('model = "{model}"\n', "").format(field="total_power"),
                      ": meters[0:pm1]: Modbus meters need `model`"),
    "register map file with a bad field": (METER.format(model="bad.toml", field="total_power"),
                                           ": meters[0:pm1].model: "),
    "MQTT CA file missing": ('''
[mqtt]
[[mqtt.brokers]]
url = "mqtts://127.0.0.1:8883"
ca_file = "/nonexistent/ca.pem"
[[mqtt.subscriptions]]
topic = "shellies/+/status"
decoder = "shelly"
''', ": mqtt.brokers[0:default]: "),
    "collector option": ("\n[collector]\nflush_interval_s = -1\n", "collector.flush_interval_s"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_check_refuses_what_collect_refuses_with_the_same_line(tmp_path, case, cli):
    extra, expected = CASES[case]
    (tmp_path / "bad.toml").write_text('model = "x"\n[[fields]]\nname = "p"\naddress = "x"\n', encoding="utf-8")
    cfg = write_config(tmp_path, extra=extra)
    check = cli("check", "--config", cfg)
    assert check.returncode == 2, check.stdout
    line = check.stderr.strip()
    assert "\n" not in line and "Traceback" not in line and "config OK" not in check.stdout
    assert line.startswith(f"error: {cfg}") and expected in line, line
    collect = cli("collect", "--config", cfg, "--duration", "0.2", "--quiet")
    assert collect.returncode == 2 and collect.stderr.strip() == line      # one validation, one message


def test_check_builds_inputs_without_connecting(tmp_path, cli):
    """A good config with a Modbus meter on a closed port and an MQTT broker nobody
    runs: check says OK (it connects to nothing) and lists the channel."""
    cfg = write_config(tmp_path, extra=METER.format(model="sdm630", field="total_power") + '''
[mqtt]
[[mqtt.brokers]]
url = "mqtt://127.0.0.1:1"
[[mqtt.subscriptions]]
topic = "shellies/+/status"
decoder = "shelly"
''')
    r = cli("check", "--config", cfg)
    assert r.returncode == 0, r.stderr
    assert "config OK" in r.stdout and "pm1" in r.stdout


@pytest.mark.parametrize("name, role", [(None, "read"), ('Energy "manager" 2', "admin"), ("エネルギー管理者", "read")])
def test_hash_token_block_pasted_under_the_config_passes_check(tmp_path, name, role, cli):
    cfg = write_config(tmp_path, extra=METER.format(model="sdm630", field="total_power"))   # ends in a sub-table
    args = ["serve", "--hash-token", "--role", role] + (["--token-name", name] if name else [])
    r = cli(*args)
    assert r.returncode == 0, r.stderr
    token = r.stderr.split()[1]
    assert token not in r.stdout                      # the secret never goes into the config
    with open(cfg, "a", encoding="utf-8") as f:
        f.write(r.stdout)
    check = cli("check", "--config", cfg)
    assert check.returncode == 0, check.stderr
    from mieruka.site import load_site
    tokens = load_site(cfg).api.tokens
    assert tokens[-1].sha256 == hashlib.sha256(token.encode()).hexdigest() and tokens[-1].role == role
    if name:
        assert tokens[-1].name == name


def test_check_reads_the_bills_file_as_serve_does(tmp_path, cli):
    bills = tmp_path / "bills.csv"
    bills.write_text("period,energy,amount,unit\n2026-04,electricity,abc,kWh\n", encoding="utf-8")
    cfg = write_config(tmp_path, extra='\n[co2]\nbills_file = "bills.csv"\n')
    r = cli("check", "--config", cfg)
    assert r.returncode == 2 and str(bills) in r.stderr and ":2:" in r.stderr and "amount" in r.stderr, r.stderr
    bills.unlink()
    r = cli("check", "--config", cfg)
    assert r.returncode == 2 and "co2.bills_file: no such file" in r.stderr


def test_hash_token_block_for_the_tokens_file_passes_check(tmp_path, cli):
    import os
    tokens = tmp_path / "tokens.toml"
    r = cli("serve", "--hash-token", "--for-tokens-file", "--token-name", "dash", "--role", "read")
    assert r.returncode == 0 and "[[tokens]]" in r.stdout and "[[api.tokens]]" not in r.stdout
    tokens.write_text(r.stdout, encoding="utf-8")
    os.chmod(tokens, 0o600)
    cfg = write_config(tmp_path)
    text = cfg.read_text(encoding="utf-8").replace("[api]\n", '[api]\ntokens_file = "tokens.toml"\n', 1)
    cfg.write_text(text, encoding="utf-8")
    assert cli("check", "--config", cfg).returncode == 0
    from mieruka.site import load_site
    tok = load_site(cfg).api.tokens[-1]
    assert tok.name == "dash" and tok.sha256 == hashlib.sha256(r.stderr.split()[1].encode()).hexdigest()
