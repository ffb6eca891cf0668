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
