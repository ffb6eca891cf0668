"""Issue 10 item 12: `replay --pdf` without `--report` writes the PDF only (printed
from a temporary HTML copy), never replacing an HTML file beside it; outputs that
name one file (or the recording) are refused before anything is written."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from helpers.api_site import make_recording, write_config


@pytest.mark.slow
def test_pdf_alone_leaves_an_existing_html_file_alone(tmp_path):
    if shutil.which("chromium") is None:
        pytest.skip("chromium is not installed (deploy/apt-packages.txt installs it)")
    cfg = write_config(tmp_path)
    rec = make_recording(tmp_path / "rec.csv", days=2)
    out = tmp_path / "out"
    out.mkdir()
    mine = out / "report.html"
    mine.write_text("<p>the manager's own notes</p>", encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "mieruka.cli", "replay", str(rec), "--config", str(cfg), "--no-progress",
                        "--pdf", str(out / "report.pdf")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert mine.read_text(encoding="utf-8") == "<p>the manager's own notes</p>"
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.pdf"]     # no temp file left either
    assert (out / "report.pdf").read_bytes().startswith(b"%PDF")


@pytest.mark.parametrize("args, msg", [
    (["--report", "{d}/a.out", "--xlsx", "{d}/a.out"], "--xlsx {d}/a.out: the same file as --report"),
    (["--json", "{d}/rec.csv"], "--json {d}/rec.csv: the same file as the recording"),
])
def test_outputs_naming_one_file_are_refused_before_writing(tmp_path, capsys, args, msg):
    from mieruka.cli import main
    cfg = write_config(tmp_path)
    rec = tmp_path / "rec.csv"
    rec.write_text("time,channel,quantity,value\n", encoding="utf-8")
    rc = main(["replay", str(rec), "--config", str(cfg), "--no-progress", *[a.format(d=tmp_path) for a in args]])
    err = capsys.readouterr().err
    assert rc == 2 and err.strip() == "error: " + msg.format(d=tmp_path) + "; give each output its own file"
    assert rec.read_text(encoding="utf-8") == "time,channel,quantity,value\n" and not (tmp_path / "a.out").exists()


def _plant_recording(path, channel: str, kind: str, first_day: str, kw: float, days: int = 3):
    import datetime as dt
    t0 = dt.datetime.fromisoformat(first_day + "T00:00:00+09:00")
    rows = ["time,channel,quantity,value,equipment_kind"]
    for h in range(24 * days):
        t = t0 + dt.timedelta(hours=h)
        rows.append(f"{t.isoformat()},{channel},power_kw,{kw * (3 if 8 <= t.hour < 17 else 1)},{kind}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.mark.slow
def test_report_of_a_replay_uses_only_its_recordings_channels(tmp_path):
    """Two plants replayed with one auditor's config share its store: the second report's
    CO2 sheet took the first plant's incomer (its months were empty: 'no data') and its
    demand the other plant's meter."""
    from openpyxl import load_workbook
    cfg = write_config(tmp_path)
    a = _plant_recording(tmp_path / "a.csv", "steel_main", "incomer", "2024-04-01", 500.0)
    b = _plant_recording(tmp_path / "b.csv", "press", "", "2024-10-01", 10.0)
    for rec, name in ((a, "a"), (b, "b")):
        r = subprocess.run([sys.executable, "-m", "mieruka.cli", "replay", str(rec), "--config", str(cfg),
                            "--no-progress", "--report", str(tmp_path / f"{name}.html"),
                            "--xlsx", str(tmp_path / f"{name}.xlsx")], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
    html = (tmp_path / "b.html").read_text("utf-8")
    assert "steel_main" not in html
    # plant b's only meter is its demand channel; its peaks say why they have no breakdown
    assert "内訳なし（分岐回路の計測なし）" in html
    wb = load_workbook(tmp_path / "b.xlsx")
    cells = " ".join(str(c.value) for ws in wb.worksheets for row in ws.iter_rows() for c in row if c.value is not None)
    assert "steel_main" not in cells
    # plant b's October electricity is in its CO2 sheet: 3 days x (9 h x 30 kW + 15 h x 10 kW)
    sheet = wb.worksheets[0]
    values = [c.value for row in sheet.iter_rows() for c in row]
    assert any(isinstance(v, (int, float)) and abs(v - 3 * (9 * 30 + 15 * 10)) < 1e-6 for v in values), values[:80]


@pytest.mark.slow
def test_co2_sheet_of_a_replay_leaves_pv_generation_out(tmp_path):
    """The report's CO2 sheet summed a PV channel (negative power) with the load, as the
    analysis once did: the site's electricity shrank by the generation."""
    import datetime as dt
    from openpyxl import load_workbook
    cfg = write_config(tmp_path)
    t0 = dt.datetime.fromisoformat("2024-10-01T00:00:00+09:00")
    rows = ["time,channel,quantity,value"]
    for h in range(24 * 3):
        t = t0 + dt.timedelta(hours=h)
        rows.append(f"{t.isoformat()},load,power_kw,{30.0 if 8 <= t.hour < 17 else 10.0}")
        rows.append(f"{t.isoformat()},pv,power_kw,{-20.0 if 9 <= t.hour < 15 else 0.0}")
    rec = tmp_path / "pv.csv"
    rec.write_text("\n".join(rows) + "\n", encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "mieruka.cli", "replay", str(rec), "--config", str(cfg),
                        "--no-progress", "--xlsx", str(tmp_path / "pv.xlsx")], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    values = [c.value for row in load_workbook(tmp_path / "pv.xlsx").worksheets[0].iter_rows() for c in row]
    load_kwh = 3 * (9 * 30.0 + 15 * 10.0)
    assert any(isinstance(v, (int, float)) and abs(v - load_kwh) < 1e-6 for v in values)
    assert not any(isinstance(v, (int, float)) and abs(v - (load_kwh - 3 * 6 * 20.0)) < 1e-6 for v in values)
