"""Workbooks are reproducible: the same content gives the same bytes (an auditor's
replay compares files), whatever the time of writing.  openpyxl stamps the zip
entries and docProps/core.xml with the time of saving unless told otherwise."""
from __future__ import annotations

import datetime as dt
import io
import subprocess
import sys
import zipfile
from pathlib import Path

from openpyxl import Workbook, load_workbook

from mieruka.xlsxcells import workbook_bytes

ROOT = Path(__file__).resolve().parents[1]


def _times(data: bytes) -> tuple[set, str]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {i.date_time for i in z.infolist()}, z.read("docProps/core.xml").decode()


def test_workbook_bytes_carry_no_time_of_writing():
    wb = Workbook()
    wb.active.append(["kWh", 1.5])
    stamp = dt.datetime(2018, 12, 31, 15, 0, tzinfo=dt.timezone.utc)
    data = workbook_bytes(wb, stamp)
    dates, core = _times(data)
    assert dates == {(1980, 1, 1, 0, 0, 0)}
    assert "2018-12-31T15:00:00Z" in core and str(dt.date.today().year) + "-" not in core
    assert load_workbook(io.BytesIO(data)).active["B1"].value == 1.5      # still a workbook Excel opens
    assert workbook_bytes(wb, stamp) == data


def test_co2_sheet_xlsx_written_twice_is_byte_identical(tmp_path):
    outs = []
    for name in ("a.xlsx", "b.xlsx"):
        r = subprocess.run([sys.executable, "-m", "mieruka.cli", "co2", str(ROOT / "config/examples/energy-fy2024.csv"),
                            "--format", "xlsx", "-o", str(tmp_path / name)], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        outs.append((tmp_path / name).read_bytes())
    assert outs[0] == outs[1]
    assert _times(outs[0])[0] == {(1980, 1, 1, 0, 0, 0)}
