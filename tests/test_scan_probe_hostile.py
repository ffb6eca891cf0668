"""`mieruka scan` and `mieruka probe` against hostile and fussy devices (a small
misbehaving Modbus server, `tests/helpers/hostile_modbus.py`, on loopback TCP or
one end of a socat pty pair): a target that answers every unit id, exception
codes, late answers, replies with another unit id, garbage and line noise, bad
option values.  Always: no traceback, one line on error (exit 2), valid JSON on
success, and only function codes 3 and 4 on the wire."""
from __future__ import annotations

import json
import shutil

import pytest

from mieruka.cli import main
from helpers.hostile_modbus import HostileServer
from helpers.proc import socat_pty_pair


def run_cli(capsys, *args) -> tuple[int, str, str]:
    rc = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return rc, out, err


def one_line_error(rc: int, out: str, err: str) -> str:
    assert rc == 2 and out == ""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def scan_json(capsys, port, *extra) -> dict:
    rc, out, err = run_cli(capsys, "scan", "--host", "127.0.0.1", "--port", str(port), "--json", *extra)
    assert rc == 0, err
    return json.loads(out)


def test_scan_flags_a_target_that_answers_every_unit_id(port, capsys):
    """A Modbus TCP device or a gateway that ignores the unit id answers each id: scan
    lists them, but says so (it answers reserved id 248 too) instead of reporting
    many meters where there is one."""
    with HostileServer(port, default="ok") as srv:
        # every request is answered at once: a generous timeout costs nothing and keeps a
        # loaded CI box from turning a slow answer into a missing unit
        res = scan_json(capsys, port, "--units", "1-4", "--timeout", "3")
        assert [f["unit"] for f in res["found"]] == [1, 2, 3, 4]
        assert res["answers_every_unit"] is True
        rc, out, _ = run_cli(capsys, "scan", "--host", "127.0.0.1", "--port", str(port), "--units", "1-20",
                             "--timeout", "3")
        assert rc == 0 and "ignores the unit id" in out and "248" in out
        assert "17 more ids answering alike" in out        # not a 20-row table of one device
        assert srv.units_asked[248] == 2
        assert set(srv.function_codes) <= {3, 4}
    # a gateway with real devices behind it (nobody on 248: exception 11) is not flagged
    with HostileServer(port, default=("exc", 11), behaviours={2: "ok", 3: ("exc", 2)}) as srv:
        res = scan_json(capsys, port, "--units", "1-4", "--timeout", "3")
        assert [f["unit"] for f in res["found"]] == [2, 3]
        assert res["answers_every_unit"] is False
        rc, out, _ = run_cli(capsys, "scan", "--host", "127.0.0.1", "--port", str(port), "--units", "1-4",
                             "--timeout", "3")
        assert "ignores the unit id" not in out


@pytest.mark.slow
def test_scan_reads_exception_codes_and_bad_replies(port, capsys):
    """Exceptions 1-4 mean a device listened (4: there but failing), 10/11 are a
    gateway saying nobody is there; a reply with another unit id, a transaction id
    of another request, garbage or a closed connection is no answer of the unit
    asked, and the units after it are still found."""
    behaviours = {1: ("exc", 1), 2: ("exc", 2), 3: ("exc", 3), 4: ("exc", 4), 5: ("exc", 10), 6: ("exc", 11),
                  7: "wrong_unit", 8: "wrong_tid", 9: "garbage", 10: "close", 11: "ok"}
    with HostileServer(port, default="absent", behaviours=behaviours) as srv:
        res = scan_json(capsys, port, "--units", "1-12", "--timeout", "0.5")
        got = {f["unit"]: f.get("exception_code", f["answer"]) for f in res["found"]}
        assert got == {1: 1, 2: 2, 3: 3, 4: 4, 11: "registers"}, res["found"]
        assert res["answers_every_unit"] is False
        rc, out, _ = run_cli(capsys, "scan", "--host", "127.0.0.1", "--port", str(port), "--units", "4",
                             "--timeout", "3")
        assert rc == 0 and "server device failure" in out
        assert set(srv.function_codes) <= {3, 4}


@pytest.mark.slow
def test_scan_rtu_over_tcp_late_answer_does_not_hide_the_next_unit(port, capsys):
    """RTU framing has no transaction id: unit 2 answering after its timeout, glued by
    the converter to unit 3's answer, used to swallow unit 3 (pymodbus's decoder took
    the whole buffer as one frame).  After a timeout the link now stays quiet long
    enough for the late answer to arrive alone and be dropped.  Timings: answer 1.25 s
    after the request, timeout 1 s, quiet gap 0.5 s (half the timeout in scan): 0.25 s
    of margin either way on a loaded machine."""
    with HostileServer(port, rtu=True, default="absent", behaviours={2: ("slow", 1.25), 3: "ok"}):
        res = scan_json(capsys, port, "--rtu-over-tcp", "--units", "1-3", "--timeout", "1")
    assert [f["unit"] for f in res["found"]] == [3]


def test_probe_gateway_nobody_is_absent_at_once(port, capsys):
    """Exception 11 from a gateway: the unit is absent, said in one line after the first
    request (it used to read every field one by one and blame the map)."""
    with HostileServer(port, default=("exc", 11)) as srv:
        rc, out, err = run_cli(capsys, "probe", "--host", "127.0.0.1", "--port", str(port), "--unit", "3",
                               "--map", "sdm630", "--json")
        line = one_line_error(rc, out, err)
        assert "absent" in line and "exception 11" in line
        assert sum(srv.function_codes.values()) == 1


@pytest.mark.parametrize("behaviour, expect", [(("exc", 2), "exception 2 (illegal data address)"),
                                               (("exc", 2), "try another --map"),
                                               (("exc", 4), "exception 4 (server device failure)"),
                                               (("exc", 6), "busy"),
                                               ("short", "malformed")])
def test_probe_says_why_no_field_could_be_read(port, capsys, behaviour, expect):
    """A unit that refuses every field, or answers only replies that do not fit, is
    told apart from a silent one (a short reply used to read as "does not answer")."""
    with HostileServer(port, default=behaviour):
        rc, out, err = run_cli(capsys, "probe", "--host", "127.0.0.1", "--port", str(port), "--unit", "3",
                               "--map", "eastron_sdm120", "--timeout", "2")
    line = one_line_error(rc, out, err)
    assert expect in line and "does not answer" not in line
    if behaviour[0] == "exc" and behaviour[1] >= 4:
        assert "another --map" not in line          # a failing device is not another model


@pytest.mark.parametrize("behaviour", ["absent", ("slow", 0.6), "wrong_unit", "garbage", "close"])
def test_probe_silent_or_broken_unit_is_one_line(port, capsys, behaviour):
    with HostileServer(port, default=behaviour) as srv:
        rc, out, err = run_cli(capsys, "probe", "--host", "127.0.0.1", "--port", str(port), "--unit", "3",
                               "--map", "eastron_sdm120", "--json", "--timeout", "0.3")
        line = one_line_error(rc, out, err)
        assert "unit 3" in line and "does not answer" in line
        assert set(srv.function_codes) <= {3, 4}


def test_probe_of_an_echoing_device_is_valid_json_and_warns(port, capsys):
    """A device that answers anything (register number as value) gives implausible
    values: JSON stays valid (no NaN), the human form says no layout is plausible."""
    with HostileServer(port, default="ok"):
        rc, out, err = run_cli(capsys, "probe", "--host", "127.0.0.1", "--port", str(port), "--unit", "3",
                               "--map", "sdm630", "--json", "--timeout", "2")
        assert rc == 0, err
        res = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
        assert set(res) == {"map", "best", "candidates", "fields", "snippet"}
        rc, out, _ = run_cli(capsys, "probe", "--host", "127.0.0.1", "--port", str(port), "--unit", "3",
                             "--map", "sdm630")
        assert rc == 0 and "no layout gives plausible values" in out


@pytest.mark.parametrize("args, field", [
    (["scan", "--serial", "/dev/null", "--baud", "-5"], "--baud"),
    (["scan", "--serial", "/dev/null", "--baud", "0"], "--baud"),
    (["scan", "--serial", "/dev/null", "--baud", "9600,96000"], "--baud"),
    (["scan", "--serial", "/dev/null", "--baud", "12345678901234567890"], "--baud"),
    (["probe", "--serial", "/dev/null", "--baud", "-1", "--unit", "1", "--map", "sdm630"], "--baud"),
    (["probe", "--serial", "/dev/null", "--baud", "0", "--unit", "1", "--map", "sdm630"], "--baud"),
    (["scan", "--host", "", "--units", "1"], "--host"),
    (["scan", "--host", "127.0.0.1:502", "--units", "1"], "--host"),
    (["probe", "--host", "127.0.0.1:1502", "--unit", "1", "--map", "sdm630"], "--host"),
    (["scan", "--serial", " ", "--units", "1"], "--serial"),
    (["scan", "--host", "127.0.0.1", "--units", "0-300"], "--units"),
    (["scan", "--host", "127.0.0.1", "--units", "248"], "--units"),
    (["scan", "--host", "127.0.0.1", "--units", "7-3"], "--units"),
    (["probe", "--host", "127.0.0.1", "--unit", "300", "--map", "sdm630"], "--unit"),
    (["scan", "--host", "127.0.0.1", "--port", "0"], "--port"),
])
def test_bad_option_values_are_one_line(capsys, args, field):
    """Out-of-range unit ids, ports and baud rates (a negative or huge baud rate used
    to end in a pyserial traceback, 0 in a silent empty scan), an empty host or one
    with the port glued on: one line naming the option, before any I/O."""
    line = one_line_error(*run_cli(capsys, *args))
    assert field in line


def test_site_config_refuses_a_baud_rate_no_line_speaks():
    from mieruka.errors import ConfigError
    from mieruka.site import parse_site
    cfg = {"site": {"name": "x"}, "meters": [{"id": "m", "protocol": "modbus_rtu", "model": "sdm630",
                                              "serial_port": "/dev/ttyUSB0", "baudrate": 96000}]}
    with pytest.raises(ConfigError, match="baudrate"):
        parse_site(cfg, "site.toml")
    cfg["meters"][0]["baudrate"] = 19200
    assert parse_site(cfg, "site.toml").meters[0].baudrate == 19200


@pytest.mark.skipif(shutil.which("socat") is None, reason="socat (Debian package) not installed")
def test_scan_and_probe_on_a_noisy_serial_line(tmp_path, capsys):
    """Noise bytes before an answer on an RS-485 line: pymodbus's RTU decoder dropped
    the whole buffer at the first candidate with a wrong CRC, losing the answer; the
    hunting decoder finds the frame behind the noise.  Pure garbage stays absent."""
    behaviours = {2: ("noise", 6), 3: "garbage", 4: "ok", 5: ("noise", 40), 6: ("exc", 2)}
    with socat_pty_pair(tmp_path) as (a, b), HostileServer(None, behaviours, default="absent", serial_port=a,
                                                           seed=7) as srv:
        rc, out, err = run_cli(capsys, "scan", "--serial", b, "--baud", "19200", "--parity", "N", "--units", "2-6",
                               "--json", "--timeout", "1")
        assert rc == 0, err
        res = json.loads(out)
        assert [(f["unit"], f["answer"]) for f in res["found"]] == \
            [(2, "registers"), (4, "registers"), (5, "registers"), (6, "exception")]
        rc, out, err = run_cli(capsys, "probe", "--serial", b, "--baud", "19200", "--unit", "5",
                               "--map", "eastron_sdm120", "--json", "--timeout", "2")
        assert rc == 0, err
        assert json.loads(out)["fields"]
        assert set(srv.function_codes) <= {3, 4}


@pytest.mark.parametrize("rtu", [False, True])
def test_a_reply_for_another_function_code_is_not_taken(port, capsys, rtu):
    """A device that answers a holding-register read with an input-register reply (or
    the other way round): pymodbus passed it on as the answer, and probe/collector took
    the other table's words as the field's value.  Now it is a malformed reply."""
    with HostileServer(port, default="wrong_fc", rtu=rtu):
        rc, out, err = run_cli(capsys, "probe", "--host", "127.0.0.1", "--port", str(port), "--unit", "3",
                               "--map", "eastron_sdm120", "--timeout", "2",
                               *(["--rtu-over-tcp"] if rtu else []))
    line = one_line_error(rc, out, err)
    assert "malformed" in line
