"""`replay --mapping`: the provenance names the logger exports and the mapping the
auditor was handed (sha256 of each), not only the temporary recording made of
them, and the findings JSON stays byte-identical across runs, folders and the
order the files are given in."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

from mieruka.cli import main

from helpers.api_site import write_config

MAP = """
[time]
column = "time"
format = "%Y-%m-%d %H:%M"
[[columns]]
column = "press_kw"
channel = "press"
quantity = "power_kw"
equipment_kind = "press"
"""


def _day(path: Path, day: int) -> Path:
    """One day of 10-minute data of one logger: 30 kW in shift, 2 kW standby."""
    rows = ["time,press_kw"]
    t0 = dt.datetime(2026, 4, 6 + day)
    for k in range(144):
        now = t0 + dt.timedelta(minutes=10 * k)
        rows.append(f"{now:%Y-%m-%d %H:%M},{30.0 if 8 <= now.hour < 17 else 2.0}")
    path.write_text("\n".join(rows) + "\n", "utf-8")
    return path


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _replay(work: Path, files: list[Path], mapping: Path) -> tuple[bytes, dict]:
    work.mkdir()
    out = work / "f.json"
    rc = main(["replay", *map(str, files), "--mapping", str(mapping), "--config", str(write_config(work)),
               "--no-progress", "--json", str(out), "--xlsx", str(work / "r.xlsx")])
    assert rc == 0
    return out.read_bytes(), json.loads(out.read_bytes())


def test_provenance_names_the_source_exports_and_is_byte_identical(tmp_path):
    src = tmp_path / "handed-over"
    src.mkdir()
    a, b = _day(src / "day1.csv", 0), _day(src / "day2.csv", 1)
    mp = src / "map.toml"
    mp.write_text(MAP, "utf-8")

    first, doc = _replay(tmp_path / "run1", [a, b], mp)
    second, _ = _replay(tmp_path / "run2", [b, a], mp)      # other order, other store: same bytes
    assert first == second

    imported = doc["provenance"]["input"]["imported_from"]
    assert imported["files"] == [{"file": "day1.csv", "sha256": _sha(a)},
                                 {"file": "day2.csv", "sha256": _sha(b)}]
    assert imported["mapping"] == {"file": "map.toml", "sha256": _sha(mp)}
    assert str(tmp_path) not in first.decode()              # names, never the auditor's folders
    # the recording's own hash is still stated (it is what the figures were computed from)
    assert len(doc["provenance"]["input"]["sha256"]) == 64

    from openpyxl import load_workbook
    cells = [str(c.value) for row in load_workbook(tmp_path / "run1" / "r.xlsx").worksheets[-1].iter_rows()
             for c in row]
    assert any(_sha(a) in c and "day1.csv" in c for c in cells)

    # one changed byte in a source export shows in the provenance
    b.write_text(b.read_text("utf-8").replace(",2.0\n", ",2.5\n", 1), "utf-8")
    _, doc3 = _replay(tmp_path / "run3", [a, b], mp)
    assert doc3["provenance"]["input"]["imported_from"]["files"][1]["sha256"] == _sha(b) != _sha(a)
    assert doc3["provenance"]["input"]["imported_from"]["files"][1]["sha256"] != imported["files"][1]["sha256"]


def test_plain_replay_has_no_imported_from(tmp_path):
    src = _day(tmp_path / "day1.csv", 0)
    mp = tmp_path / "map.toml"
    mp.write_text(MAP, "utf-8")
    rec = tmp_path / "rec.csv"
    assert main(["import", str(src), "--mapping", str(mp), "-o", str(rec)]) == 0
    work = tmp_path / "w"
    work.mkdir()
    assert main(["replay", str(rec), "--config", str(write_config(work)), "--no-progress",
                 "--json", str(work / "f.json")]) == 0
    prov = json.loads((work / "f.json").read_text("utf-8"))["provenance"]
    assert prov["input"] == {"sha256": _sha(rec)}


def test_bills_file_named_in_the_provenance(tmp_path):
    """`--bills` replaces metered months in the CO2 sheet: its hash belongs to what the auditor needs."""
    src = _day(tmp_path / "day1.csv", 0)
    mp = tmp_path / "map.toml"
    mp.write_text(MAP, "utf-8")
    bills = tmp_path / "bills.csv"
    bills.write_text("period,energy,amount,unit\n2026-04,electricity,61200,kWh\n", "utf-8")
    work = tmp_path / "w"
    work.mkdir()
    assert main(["replay", str(src), "--mapping", str(mp), "--config", str(write_config(work)), "--no-progress",
                 "--bills", str(bills), "--json", str(work / "f.json"), "--report", str(work / "r.html")]) == 0
    prov = json.loads((work / "f.json").read_text("utf-8"))["provenance"]
    assert prov["bills"] == {"file": "bills.csv", "sha256": _sha(bills)}
    assert _sha(bills) in (work / "r.html").read_text("utf-8")
