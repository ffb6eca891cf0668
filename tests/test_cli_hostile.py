"""Hostile command lines: every one ends with exit 2 and one `error:` line naming
the option/file, never a traceback, never a partial or half-replaced output."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from mieruka.cli import main
from mieruka.errors import InputError
from mieruka.outputs import write_all_atomic

from helpers.api_site import write_config


def _recording(path: Path) -> Path:
    """Two days of 10-minute press power, recording format v1."""
    rows = ["time,channel,quantity,value"]
    t0 = dt.datetime(2026, 4, 6, tzinfo=dt.timezone(dt.timedelta(hours=9)))
    for k in range(288):
        t = t0 + dt.timedelta(minutes=10 * k)
        rows.append(f"{t.isoformat()},press,power_kw,{30.0 if 8 <= t.hour < 17 else 2.0}")
    path.write_text("\n".join(rows) + "\n", "utf-8")
    return path


def _one_error_line(capsys, after_progress: bool = False) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    if after_progress:          # replay says what it loaded before it writes
        assert sum(x.startswith("error: ") for x in err) == 1 and "Traceback" not in "".join(err), err
        err = err[-1:]
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert "Traceback" not in err[0]
    return err[0]


@pytest.mark.parametrize("args", [
    ["analyze", "{dir}"],
    ["replay", "{dir}", "--config", "{cfg}"],
    ["import", "{dir}", "--mapping", "{dir}/m.toml", "-o", "{tmp}/o.csv"],
    ["co2", "{dir}"],
    ["check", "--config", "{dir}"],
    ["analyze", "{rec}", "--bogus-option"],
])
def test_usage_errors_are_one_line(tmp_path, capsys, args):
    d = tmp_path / "a-folder"
    d.mkdir()
    cfg = write_config(tmp_path)
    rec = _recording(tmp_path / "rec.csv")
    argv = [a.format(dir=d, cfg=cfg, tmp=tmp_path, rec=rec) for a in args]
    assert main(argv) == 2
    line = _one_error_line(capsys)
    assert f"mieruka {args[0]} --help" in line


def test_replay_output_in_missing_folder_fails_before_any_work(tmp_path, capsys):
    cfg = write_config(tmp_path)
    rec = _recording(tmp_path / "rec.csv")
    assert main(["replay", str(rec), "--config", str(cfg), "--no-progress",
                 "--json", str(tmp_path / "out.json"), "--report", str(tmp_path / "nope" / "r.html")]) == 2
    line = _one_error_line(capsys)
    assert "--report" in line and "nope" in line and "does not exist" in line
    assert not (tmp_path / "out.json").exists()
    assert not (tmp_path / "data").exists()          # the store was not even opened


def test_replay_unwritable_output_leaves_no_other_output(tmp_path, capsys):
    """/proc passes the folder check (root may write anywhere) but refuses files:
    the JSON, complete in memory, must not be left behind alone."""
    cfg = write_config(tmp_path)
    rec = _recording(tmp_path / "rec.csv")
    old = tmp_path / "out.json"
    old.write_text("previous run\n")
    assert main(["replay", str(rec), "--config", str(cfg), "--no-progress",
                 "--json", str(old), "--report", "/proc/mieruka-qa.html"]) == 2
    line = _one_error_line(capsys, after_progress=True)
    assert "--report /proc/mieruka-qa.html: cannot write" in line
    assert old.read_text() == "previous run\n"        # not replaced by half of the outputs
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]


def test_write_all_atomic_is_all_or_nothing(tmp_path):
    a = tmp_path / "a.txt"
    with pytest.raises(InputError, match="--b .*missing"):
        write_all_atomic([(a, b"A", None, "--a"), (tmp_path / "missing" / "b.txt", b"B", None, "--b")])
    assert not a.exists() and list(tmp_path.iterdir()) == []
    write_all_atomic([(a, b"A", None, "--a"), (tmp_path / "b.txt", None, lambda p: p.write_bytes(b"B"), "--b")])
    assert a.read_bytes() == b"A" and (tmp_path / "b.txt").read_bytes() == b"B"


def test_export_output_in_missing_folder(tmp_path, capsys):
    cfg = write_config(tmp_path)
    assert main(["export", "--config", str(cfg), "-o", str(tmp_path / "nope" / "e.csv")]) == 2
    assert "-o" in _one_error_line(capsys)


@pytest.mark.parametrize("extra, expected", [
    (["--start", "2026-04-07", "--end", "2026-04-06"], "is not after --start"),
    (["--start", "2026-04-06", "--end", "2026-04-06"], "is not after --start"),
    (["--tariff-jpy-per-kwh", "1e400"], "finite"),
    (["--tariff-jpy-per-kwh", "nan"], "finite"),
])
def test_analyze_refuses_inverted_period_and_infinite_tariff(tmp_path, capsys, extra, expected):
    rec = _recording(tmp_path / "rec.csv")
    assert main(["analyze", str(rec), "--json", *extra]) == 2
    assert expected in _one_error_line(capsys)


def _fleet(tmp_path: Path) -> Path:
    cfg = write_config(tmp_path)
    _recording(tmp_path / "rec.csv")
    m = tmp_path / "fleet.toml"
    m.write_text(f'[[sites]]\nid = "a"\nconfig = "{cfg.name}"\nrecordings = ["rec.csv"]\n', "utf-8")
    return m


def test_fleet_output_in_missing_folder_fails_before_the_run(tmp_path, capsys):
    m = _fleet(tmp_path)
    assert main(["fleet", "analyze", str(m), "--serial", "--json", str(tmp_path / "f.json"),
                 "--xlsx", str(tmp_path / "nope" / "f.xlsx")]) == 2
    assert "--xlsx" in _one_error_line(capsys)
    assert not (tmp_path / "f.json").exists()


def test_fleet_outputs_all_or_none_and_the_workbook_opens(tmp_path, capsys):
    m = _fleet(tmp_path)
    assert main(["fleet", "analyze", str(m), "--serial", "--json", str(tmp_path / "f.json"),
                 "--report", "/proc/mieruka-qa.html"]) == 2
    assert not (tmp_path / "f.json").exists()
    capsys.readouterr()
    assert main(["fleet", "analyze", str(m), "--serial", "--json", str(tmp_path / "f.json"),
                 "--xlsx", str(tmp_path / "f.xlsx")]) == 0
    from openpyxl import load_workbook
    assert load_workbook(tmp_path / "f.xlsx").sheetnames
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]


def test_notify_test_without_targets_is_a_config_error(tmp_path, capsys):
    cfg = write_config(tmp_path)
    assert main(["notify-test", "--config", str(cfg)]) == 2
    assert "no [[notify]] targets" in _one_error_line(capsys)


def test_serve_on_an_address_it_cannot_listen_on(tmp_path, capsys):
    """A port taken, a port out of range, a host name that does not resolve: one line, exit 2
    (uvicorn logged and exited 3; --port 70000 was an OverflowError traceback)."""
    import socket
    cfg = write_config(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port)]) == 2
        assert f"127.0.0.1:{port}: cannot listen there" in _one_error_line(capsys)
    assert main(["serve", "--config", str(cfg), "--port", "70000"]) == 2
    assert "--port" in _one_error_line(capsys)
    assert main(["serve", "--config", str(cfg), "--host", "no-such-host.invalid", "--port", "0"]) == 2
    assert "--host no-such-host.invalid" in _one_error_line(capsys)


@pytest.mark.parametrize("cmd", ["collect", "simulate"])
def test_negative_or_zero_duration_refused(tmp_path, capsys, cmd):
    cfg = write_config(tmp_path)
    assert main([cmd, "--config", str(cfg), "--duration", "-5"]) == 2
    assert "--duration" in _one_error_line(capsys)


@pytest.mark.parametrize("opt", ["--contract-kw", "--target-kw"])
@pytest.mark.parametrize("value", ["1e400", "nan", "-3"])
def test_demand_kw_options_finite_and_positive(tmp_path, capsys, opt, value):
    rec = _recording(tmp_path / "rec.csv")
    assert main(["demand", str(rec), opt, value, "--json"]) == 2
    assert opt in _one_error_line(capsys)
