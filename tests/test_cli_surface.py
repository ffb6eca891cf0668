"""Command-line surface: option values nobody meant (nan, inf, negative, huge) end
with one `error:` line and exit 2, never a traceback; text from the user's files
(site names, tags, paths, plan targets) is printed as written, never read as rich
markup (which ate `[press]` and raised MarkupError on `[/red]`)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mieruka.cli import main

from test_cli_hostile import _recording
from test_disk_full import tmpfs  # noqa: F401  (fixture: a 2 MB tmpfs)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "config" / "examples"


def _one_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0], err
    return err[0]


@pytest.mark.parametrize("args, expect", [
    (["demo", "--days", "nan"], "--days"),
    (["demo", "--collect-seconds", "-1"], "--collect-seconds"),
    (["co2", "{csv}", "--base-year", "2023", "--base-t-co2", "nan"], "--base-t-co2"),
    (["co2", "{csv}", "--fy2013-t-co2", "-10"], "--fy2013-t-co2"),
    (["co2", "{csv}", "--fy2013-t-co2", "inf"], "--fy2013-t-co2"),
    (["co2", "{csv}", "--fiscal-year", "99999999999"], "--fiscal-year"),
    (["simulate", "--config", "{site}", "--speed", "nan", "--duration", "1"], "--speed"),
    (["simulate", "--config", "{site}", "--record", "{tmp}/r.csv", "--seed", "-1"], "--seed"),
    (["simulate", "--config", "{site}", "--record", "{tmp}/r.csv", "--step", "1e-9"], "--step"),
    (["simulate", "--config", "{site}", "--record", "{tmp}/r.csv", "--days", "1e9"], "--days"),
    (["simulate", "--config", "{site}", "--record", "{tmp}/r.csv", "--days", "1e-9"], "--days"),
    (["probe", "--serial", "/dev/null", "--baud", "-5", "--unit", "1", "--map", "sdm630"], "--baud"),
    (["probe", "--host", "127.0.0.1", "--timeout", "nan", "--unit", "1", "--map", "sdm630"], "--timeout"),
    (["scan", "--serial", "/dev/null", "--baud", "-5"], "--baud"),
    (["scan", "--host", "127.0.0.1", "--timeout", "nan"], "--timeout"),
    (["notify-test", "--config", "{site}", "--retry-for", "nan"], "--retry-for"),
    (["fleet", "analyze", "{site}", "--workers", "100000"], "--workers"),
    (["replay", "{csv}", "--config", "{site}", "--fiscal-year", "0"], "--fiscal-year"),
    # year 0001 / 9999 were OverflowError tracebacks in demand and bill
    (["demand", "--config", "{site}", "--start", "0001-01-01", "--end", "9999-12-31"], "year out of range"),
    (["bill", "--config", "{site}", "--start", "0001-01-01", "--end", "2026-01-01"], "year out of range"),
    (["export", "--config", "{site}", "--start", "9999-12-31T23:59:59-14:00", "-o", "{tmp}/r.csv"], "year out of range"),
])
def test_hostile_option_values_are_one_error_line(tmp_path, capsys, monkeypatch, args, expect):
    monkeypatch.setenv("MIERUKA_DATA_DIR", str(tmp_path / "data"))
    shutil.copy(EXAMPLES / "demo-scenario.toml", tmp_path)
    site = shutil.copy(EXAMPLES / "demo-site.toml", tmp_path)
    argv = [a.format(csv=EXAMPLES / "energy-fy2024.csv", site=site, tmp=tmp_path) for a in args]
    assert main(argv) == 2
    assert expect in _one_error(capsys)
    assert not (tmp_path / "r.csv").exists()


def test_check_prints_names_and_tags_as_written(tmp_path, capsys, monkeypatch):
    """A site name with `[/red]` was a rich MarkupError traceback; `[b]` vanished."""
    monkeypatch.setenv("MIERUKA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "400")        # no wrapping of the tags column
    shutil.copy(EXAMPLES / "demo-scenario.toml", tmp_path)
    text = (EXAMPLES / "demo-site.toml").read_text("utf-8")
    text = text.replace('name = "デモ工場 (Demo Metal Works)"', 'name = "工場 [b]A[/b] [/red] [link=x]"')
    text = text.replace('"設備" = "250tプレス"', '"設備" = "[bold]250t[/] プレス"')
    p = tmp_path / "site.toml"
    p.write_text(text, "utf-8")
    assert main(["check", "--config", str(p)]) == 0
    out = capsys.readouterr().out
    assert "工場 [b]A[/b] [/red] [link=x]" in out
    assert "equipment=[bold]250t[/] プレス" in out, out


def _two_breakers(path: Path) -> Path:
    """Press and weld power: two breakers, so neither is taken for the site's only meter
    and the press's standby is a measure of the plan (`... [press]`)."""
    _recording(path)
    lines = path.read_text("utf-8").splitlines()
    weld = [r.replace(",press,", ",weld,").replace(",30.0", ",20.0") for r in lines[1:]]
    path.write_text("\n".join(lines + weld) + "\n", "utf-8")
    return path


def test_analyze_shows_the_plan_target_in_brackets(tmp_path, capsys):
    """The savings plan's `measure [target]` lost its `[press]`: rich read it as a style tag."""
    rec = _two_breakers(tmp_path / "rec.csv")
    assert main(["analyze", str(rec)]) == 0
    out = capsys.readouterr().out
    assert "[press,weld]" in out, out


def test_recording_on_a_full_disk_names_the_output_and_leaves_nothing(tmpfs, tmp_path, capsys):
    """simulate --record (and export) on a full disk said `error: DIR/.rec-x8f2.csv: No space
    left on device`, naming a hidden temporary file instead of the recording."""
    shutil.copy(EXAMPLES / "demo-scenario.toml", tmp_path)
    site = shutil.copy(EXAMPLES / "demo-site.toml", tmp_path)
    out = tmpfs / "month.csv"
    assert main(["simulate", "--config", str(site), "--record", str(out), "--days", "3"]) == 2
    line = _one_error(capsys)
    assert line.startswith(f"error: {out}: cannot write the recording: No space left"), line
    assert [p.name for p in tmpfs.iterdir() if p.suffix == ".csv"] == []


def test_a_mistyped_command_names_the_one_meant_and_analyse_works(tmp_path, capsys):
    assert main(["chek"]) == 2
    assert _one_error(capsys) == "error: No such command 'chek'. Did you mean 'check'? (see `mieruka --help`)"
    assert main(["xyz"]) == 2
    assert "Did you mean" not in _one_error(capsys)
    rec = _two_breakers(tmp_path / "rec.csv")
    assert main(["analyse", str(rec)]) == 0          # the help texts' own spelling
    assert "[press,weld]" in capsys.readouterr().out
