"""The HTML report (with its SVG charts, in Japanese and English), its PDF, and
the Excel export, through the API and the replay command."""
from __future__ import annotations

import io
from pathlib import Path
import re
import subprocess
import sys

import pytest
from openpyxl import load_workbook

from helpers.api_site import auth, client, loaded_site, make_recording, write_config


@pytest.fixture(scope="module")
def ja(tmp_path_factory):
    cfg, store, rec = loaded_site(tmp_path_factory.mktemp("ja"), language="ja")
    yield client(cfg, store), rec
    store.close()


def _sections(html: str) -> dict[str, str]:
    return {m.group(1): m.group(0) for m in re.finditer(r'<div class="chart[^"]*" id="([^"]+)">.*?</svg>', html, re.S)}


def test_report_html_has_charts_and_japanese_labels(ja):
    c, rec = ja
    r = c.get("/api/v1/report.html", headers=auth("read"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.headers["content-security-policy"].startswith("default-src 'none'")
    html = r.text
    charts = _sections(html)
    assert {"chart-co2-monthly", "chart-co2-share", "chart-profile"} <= set(charts)
    for svg in charts.values():
        assert "<path" in svg                                   # drawn, not empty
    # standby and leak findings come with their own charts
    kinds = re.findall(r'class="chart finding-chart" data-kind="([a-z_]+)"', html)
    assert "standby" in kinds and "air_leak" in kinds
    assert html.count("<svg") >= 3 + len(kinds)
    for label in ("4月", "3月", "電気", "待機電力", "エア漏れ", "投資回収年数", "ロケーション基準", "マーケット基準"):
        assert label in html, label
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "").replace(
        'xmlns:xlink="http://www.w3.org/1999/xlink"', "")     # self-contained: no external resources
    assert "shk_2023" in html and "Asia/Tokyo" in html


def test_report_in_english(tmp_path):
    cfg, store, _ = loaded_site(tmp_path, language="en", days=7)
    try:
        html = client(cfg, store).get("/api/v1/report.html", headers=auth("read")).text
    finally:
        store.close()
    for label in ("Apr 2026", "Electricity", "Standby power", "Savings plan", "Payback (years)"):
        assert label in html, label
    assert "待機電力" not in html


def test_excel_export_opens_with_sheet_findings_and_plan(ja):
    c, _ = ja
    r = c.get("/api/v1/export.xlsx", headers=auth("read"))
    assert r.status_code == 200
    wb = load_workbook(io.BytesIO(r.content))
    assert wb.sheetnames == ["月別CO2", "検出結果", "削減計画", "月間最大デマンド", "demand_periods", "再現性情報"]
    ws = wb["月別CO2"]
    assert [ws.cell(row=3, column=j).value for j in (2, 13)] == ["4月", "3月"]
    assert ws.cell(row=4, column=1).value == "電気"
    assert ws.cell(row=4, column=2).value > 0 and ws._charts
    findings = list(wb["検出結果"].iter_rows(min_row=2, values_only=True))
    assert {"待機電力", "エア漏れ"} <= {row[0] for row in findings}
    plan = list(wb["削減計画"].iter_rows(min_row=2, values_only=True))
    assert plan and all(row[2] is None or row[2] >= 0 for row in plan)


def test_co2_sheet_matches_metered_energy_by_hand(ja):
    """April: the incomer's energy (1-minute means / 60) x TEPCO EP's published
    FY2022 basic factor 0.000457 t-CO2/kWh (location) and adjusted 0.000451 (market)."""
    import numpy as np
    from mieruka.recording import read_recording
    c, rec = ja
    main = read_recording(rec).channels["main_power"]
    kwh = float(np.sum(main.value)) / 60.0            # all of it lies in April 2026 (JST)
    doc = c.get("/api/v1/co2/2026", headers=auth("read")).json()
    s = doc["sheet"]
    assert doc["months"][0] == "2026-04" and doc["source"] == "metered"
    assert s["amount"]["electricity"][0] == pytest.approx(kwh, rel=1e-6)
    assert s["location_t_co2"]["electricity"][0] == pytest.approx(kwh * 0.000457, rel=1e-6)
    assert s["market_t_co2"]["electricity"][0] == pytest.approx(kwh * 0.000451, rel=1e-6)
    assert s["location_t_co2"]["electricity"][1:] == [0.0] * 11


@pytest.mark.slow
def test_replay_writes_html_pdf_and_xlsx(tmp_path):
    cfg = write_config(tmp_path)
    rec = make_recording(tmp_path / "rec.csv", days=7)
    out = tmp_path / "report.html"
    r = subprocess.run([sys.executable, "-m", "mieruka.cli", "replay", str(rec), "--config", str(cfg), "--no-progress",
                        "--report", str(out), "--pdf", str(tmp_path / "report.pdf"), "--xlsx", str(tmp_path / "r.xlsx")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    html = out.read_text(encoding="utf-8")
    import hashlib
    assert hashlib.sha256(rec.read_bytes()).hexdigest() in html and "rec.csv" in html
    pdf = (tmp_path / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 50_000
    assert load_workbook(tmp_path / "r.xlsx").sheetnames[0] == "月別CO2"


def test_bills_join_the_metered_sheet(tmp_path):
    """A gas bill adds 都市ガス (1,000 m3 x 2.05 t-CO2/千m3 = 2.05 t); an electricity bill
    for May replaces nothing metered (the recording ends in April) and adds its month."""
    from mieruka.api.app import create_app
    from fastapi.testclient import TestClient
    cfg, store, _ = loaded_site(tmp_path, days=3)
    bills = tmp_path / "bills.csv"
    bills.write_text("period,energy,amount,unit\n2026-04,都市ガス,1000,m3\n2026-05,電気,20000,kWh\n", encoding="utf-8")
    try:
        c = TestClient(create_app(cfg, store, env={}, bills_path=bills))
        doc = c.get("/api/v1/co2/2026", headers=auth("read")).json()
        s = doc["sheet"]
        assert doc["source"] == "metered+bills"
        assert s["location_t_co2"]["city_gas"][0] == pytest.approx(2.05)
        assert s["amount"]["electricity"][1] == pytest.approx(20000) and s["amount"]["electricity"][0] > 0
        assert s["location_t_co2"]["electricity"][1] == pytest.approx(20000 * 0.000457)
        html = c.get("/api/v1/report.html", headers=auth("read")).text
        assert "都市ガス" in html
        bills.write_text("period,energy,amount,unit\n2026-04,都市ガス,lots,m3\n", encoding="utf-8")
        c = TestClient(create_app(cfg, store, env={}, bills_path=bills))
        r = c.get("/api/v1/co2/2026", headers=auth("read"))
        assert r.status_code == 422 and "bills.csv" in r.json()["detail"] and "2" in r.json()["detail"]
    finally:
        store.close()


def test_bills_file_from_the_site_config(tmp_path):
    """`[co2] bills_file` gives the API the same bills as `serve --bills`."""
    from mieruka.api.app import create_app
    from fastapi.testclient import TestClient
    cfg, store, _ = loaded_site(tmp_path, days=2)
    (tmp_path / "bills.csv").write_text("period,energy,amount,unit\n2026-04,都市ガス,2000,m3\n", encoding="utf-8")
    cfg.co2.bills_file = Path("bills.csv")
    cfg.source = tmp_path / "site.toml"          # relative to the config file's folder
    try:
        c = TestClient(create_app(cfg, store, env={}))
        doc = c.get("/api/v1/co2/2026", headers=auth("read")).json()
        assert doc["source"] == "metered+bills"
        assert doc["sheet"]["location_t_co2"]["city_gas"][0] == pytest.approx(2 * 2.05)
    finally:
        store.close()


def test_profile_of_hourly_interval_data_has_a_line_to_draw():
    """Hourly data on the profile's 15-minute slots left three slots in four empty: the
    chart of an hourly utility export drew nothing.  Each interval mean holds over the
    slots it covers; a real hole (no data for hours) stays empty."""
    import numpy as np

    from mieruka.reports.loadprofile import _hold_interval_means
    row = np.full(96, np.nan)
    row[::4] = np.arange(24.0)                 # hourly means at each hour's first slot
    row[40:60] = np.nan                        # 10:00-15:00 not measured at all
    out = _hold_interval_means(row)
    assert list(out[4:8]) == [1.0, 1.0, 1.0, 1.0] and list(out[92:96]) == [23.0] * 4
    assert np.isnan(out[40:60]).all() and out[36:40].tolist() == [9.0] * 4
    assert np.isfinite(out).sum() == 96 - 20
