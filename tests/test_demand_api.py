"""/api/v1/demand and /api/v1/bill, the report's demand section and the Excel sheet,
on the shared two-week factory recording (the incomer is `main_power`)."""
from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pytest

from helpers.api_site import auth, client, make_recording, write_config

from mieruka.recording import read_recording

BILL = """
[demand]
contract_kw = 60
target_kw = 55
[bill]
basic_jpy_per_kw = 1800
power_factor_pct = 95
[[bill.energy_rates]]
band = "day"
hours = "08:00-22:00"
days = ["mon", "tue", "wed", "thu", "fri"]
holidays_too = false
jpy_per_kwh = 20.0
[[bill.energy_rates]]
band = "night"
jpy_per_kwh = 16.0
[bill.fuel_adjustment_jpy_per_kwh]
"2026-04" = -1.5
[bill.renewable_levy_jpy_per_kwh]
FY2026 = 3.98
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from mieruka.service.replay import load_recording
    from mieruka.site import load_site
    from mieruka.store.base import open_store
    tmp = tmp_path_factory.mktemp("demand_api")
    cfg_path = write_config(tmp, extra=BILL)
    rec_path = make_recording(tmp / "rec.csv", days=14)
    cfg = load_site(cfg_path)
    store = open_store(cfg)
    load_recording(read_recording(rec_path), cfg, store, progress=False)
    yield cfg, store, rec_path, cfg_path, tmp
    store.close()


def _cli_json(*args):
    r = subprocess.run([sys.executable, "-m", "mieruka.cli", *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.slow
def test_api_demand_is_the_cli_demand(site):
    cfg, store, rec, cfg_path, _ = site
    c = client(cfg, store)
    q = "start=2026-04-06T00:00:00%2B09:00&end=2026-04-20T00:00:00%2B09:00"
    r = c.get(f"/api/v1/demand?{q}", headers=auth("read"))
    assert r.status_code == 200, r.text
    api = r.json()
    cli = _cli_json("demand", str(rec), "--config", str(cfg_path), "--start", "2026-04-06", "--end", "2026-04-20",
                    "--json")
    assert api == cli
    assert api["channel"] == "main_power" and len(api["periods"]) == 14 * 48
    # hand check of one period: the recording's 1-minute main power, 30 samples, mean
    data = read_recording(rec).channels["main_power"]
    t0 = np.datetime64("2026-04-06T01:00", "ms")                 # 10:00 JST Monday
    m = (data.time >= t0) & (data.time < t0 + np.timedelta64(30, "m"))
    p = next(x for x in api["periods"] if x["start"] == "2026-04-06T10:00:00+09:00")
    assert p["kw"] == pytest.approx(float(data.value[m].mean()), abs=0.001)
    assert api["summary"]["contract_kw"] == 60 and api["summary"]["target_kw"] == 55
    assert len(api["peaks"]) == 10 and all(pk["shares"] for pk in api["peaks"])


def test_api_errors_are_problems(site):
    cfg, store, *_ = site
    c = client(cfg, store)
    r = c.get("/api/v1/demand?channel=nope", headers=auth("read"))
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    assert "nope" in r.json()["detail"]
    r = c.get("/api/v1/demand?period_min=7", headers=auth("read"))
    assert r.status_code == 422
    r = c.get("/api/v1/demand?start=yesterday", headers=auth("read"))
    assert r.status_code == 422 and "query.start" in r.json()["detail"]
    r = c.get("/api/v1/demand?start=1970-01-01&end=2200-01-01", headers=auth("read"))
    assert r.status_code == 422 and "3 years" in r.json()["detail"]
    assert c.get("/api/v1/demand").status_code == 401


def test_api_bill(site):
    cfg, store, *_ = site
    r = client(cfg, store).get("/api/v1/bill?start=2026-04-06&end=2026-04-20", headers=auth("read"))
    assert r.status_code == 200, r.text
    [b] = r.json()["months"]
    assert b["month"] == "2026-04" and b["power_factor_pct"] == 95
    # 契約電力: the configured 60 kW is a floor while the data covers less than 12 months
    assert b["contract_kw"] == pytest.approx(max(60.0, b["contract_kw"]))
    assert b["basic_jpy"] == int(b["contract_kw"] * 1800 * 0.90)
    assert b["total_jpy"] == b["subtotal_jpy"] + b["tax_jpy"]


@pytest.mark.slow
def test_report_and_excel_have_the_demand_part(site):
    from openpyxl import load_workbook
    cfg, store, *_ = site
    c = client(cfg, store)
    html = c.get("/api/v1/report.html?start=2026-04-06&end=2026-04-20", headers=auth("read")).text
    assert 'id="demand"' in html and 'id="chart-demand"' in html and "<svg" in html
    assert html.count("<tr><td>") and 'id="demand-peaks"' in html and 'id="bill"' in html
    assert "月間最大デマンド" in html and "基本料金" in html
    peaks = html.split('id="demand-peaks"')[1].split("</table>")[0]
    assert peaks.count("<tr><td>") == 10 and "press_power" in peaks
    r = c.get("/api/v1/export.xlsx?start=2026-04-06&end=2026-04-20", headers=auth("read"))
    assert r.status_code == 200
    wb = load_workbook(io.BytesIO(r.content))
    assert "月間最大デマンド" in wb.sheetnames and "demand_periods" in wb.sheetnames
    ws = wb["demand_periods"]
    assert ws.max_row == 14 * 48 + 1 and isinstance(ws.cell(row=2, column=2).value, float)
