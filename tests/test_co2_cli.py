"""`mieruka co2`: outputs, exit codes, one-line errors naming file/line/field, no partial output."""
import json
import subprocess
from pathlib import Path

import openpyxl
import pytest

from mieruka.cli import main
from mieruka.config import EXAMPLES_DIR

MIERUKA = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "mieruka"

GOOD = """period,energy,amount,unit,supplier,menu,cost_jpy
2024-04,electricity,10000,kWh,TEPCO,,270000
2024-05,電力,20000,kWh,東京電力エナジーパートナー,,540000
2024-04-15,灯油,1000,L,,,110000
2024-05,都市ガス,12,千m3,,,
2024-04,production,1000,個,,,
2024-05,生産量,1000,個,,,
"""
# by hand (FY2024 uses TEPCO's FY2022 results, the latest shipped): market 0.000451, location 0.000457 t/kWh
ELEC_MKT = 30_000 * 0.000451          # 13.53
ELEC_LOC = 30_000 * 0.000457          # 13.71
SCOPE1 = 1 * 2.50 + 12 * 2.05         # kerosene 1 kL + city gas 12 千m3 = 27.1


def run(args, capsys):
    rc = main(["co2", *map(str, args)])
    out, err = capsys.readouterr()
    return rc, out, err


def write(tmp_path, text, name="e.csv", encoding="utf-8"):
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    return p


def test_json_output_by_hand(tmp_path, capsys):
    rc, out, _ = run([write(tmp_path, GOOD), "--format", "json"], capsys)
    assert rc == 0
    d = json.loads(out)
    assert d["scope2_t_co2"] == pytest.approx(ELEC_MKT)
    assert d["scope1_t_co2"] == pytest.approx(SCOPE1)
    assert d["total_t_co2"] == pytest.approx(ELEC_MKT + SCOPE1)                       # 40.63
    assert d["total_location_based_t_co2"] == pytest.approx(ELEC_LOC + SCOPE1)
    assert d["by_energy"] == pytest.approx({"electricity": ELEC_MKT, "city_gas": 24.6, "kerosene": 2.5})
    assert d["by_month"]["2024-04"] == pytest.approx(4.51 + 2.50)
    assert d["by_month"]["2024-05"] == pytest.approx(9.02 + 24.6)
    assert d["by_month"]["2025-03"] == 0
    assert d["factor_set"]["id"] == "shk_2023" and d["scope2_method"] == "market"
    assert d["intensity"]["t_co2_per_unit"] == pytest.approx((ELEC_MKT + SCOPE1) / 2000)
    assert d["cost_jpy"] is None and d["cost_jpy_known_part"] == pytest.approx(920_000)
    assert d["all_factors_verified"] is True
    used = {(f["energy"], f["basis"]): f["value"] for f in d["factors"]}
    assert used[("electricity", "location")] == 0.000457 and used[("kerosene", "fuel")] == 2.5


def test_options_factor_set_scope2_and_targets(tmp_path, capsys):
    f = write(tmp_path, "period,energy,amount,unit,supplier\n2024-04,electricity,10000,kWh,TEPCO\n2024-04,灯油,1000,L,\n")
    rc, out, _ = run([f, "--format", "json", "--factor-set", "shk_legacy", "--scope2", "location",
                      "--base-year", "2022", "--base-t-co2", "45", "--fy2013-t-co2", "60"], capsys)
    assert rc == 0
    d = json.loads(out)
    assert d["factor_set"]["id"] == "shk_legacy" and d["scope2_method"] == "location"
    assert d["total_t_co2"] == pytest.approx(10_000 * 0.000457 + 2.49)               # 7.06
    sbt, jp = d["targets"]
    assert sbt["target_t_co2"] == pytest.approx(45 * (1 - 0.042 * 2)) and sbt["on_track"]
    assert jp["target_t_co2"] == pytest.approx(60 * (1 - 0.46 * 11 / 17))
    assert jp["target_fy2030_t_co2"] == pytest.approx(60 * 0.54)
    # the legacy list gives city gas per 千Nm3: a 千m3 amount is refused, not converted
    rc, _, err = run([write(tmp_path, GOOD), "--factor-set", "shk_legacy"], capsys)
    assert rc == 2 and "e.csv:5: energy: 千m3 and 千Nm3 are gas volumes at different reference states" in err
    rc, _, err = run([f, "--base-year", "2020"], capsys)
    assert rc == 2 and "base year FY2020 is not in the file" in err


def test_unverified_default_is_flagged_everywhere(tmp_path, capsys):
    f = write(tmp_path, "period,energy,amount,unit\n2024-04,electricity,10000,kWh\n")
    rc, out, _ = run([f, "--format", "json"], capsys)
    d = json.loads(out)
    assert rc == 0 and d["all_factors_verified"] is False
    assert d["unverified_factors"][0]["energy"] == "electricity" and d["rows"][0]["verified"] is False
    rc, out, _ = run([f, "--format", "csv"], capsys)
    assert "t_co2,electricity,電力,2,t-CO2," in out and ",false" in out.splitlines()[2]
    rc, out, _ = run([f], capsys)
    assert "UNVERIFIED" in out and "電力 ※" in out
    x = tmp_path / "u.xlsx"
    assert run([f, "--format", "xlsx", "-o", x], capsys)[0] == 0
    wb = openpyxl.load_workbook(x)
    assert "※" in wb.worksheets[0]["A6"].value
    assert any("UNVERIFIED" in str(c.value) for row in wb["係数 factors"].iter_rows() for c in row)


def test_table_fits_100_columns(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    rc, out, _ = run([EXAMPLES_DIR / "energy-fy2024.csv"], capsys)
    assert rc == 0
    assert "CO2 sheet FY2024" in out and "4月" in out and "3月" in out and "構成比" in out
    assert "Scope 2 location-based" in out and "Scope 2 market-based" in out
    from rich.cells import cell_len      # Japanese characters take two terminal cells
    assert max(cell_len(line) for line in out.splitlines()) <= 100


def test_csv_output_opens_in_excel(tmp_path, capsys):
    out = tmp_path / "sheet.csv"
    rc, _, err = run([write(tmp_path, GOOD), "--format", "csv", "-o", out], capsys)
    assert rc == 0 and "wrote" in err
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")                     # UTF-8 BOM: Excel reads Japanese right
    lines = raw.decode("utf-8-sig").splitlines()
    header = lines[1].split(",")
    assert header[5] == "2024-04" and header[16] == "2025-03"
    total = next(line for line in lines if line.startswith("t_co2,total,"))
    assert float(total.split(",")[17]) == pytest.approx(ELEC_MKT + SCOPE1)


def test_xlsx_sheet_and_chart(tmp_path, capsys):
    out = tmp_path / "sheet.xlsx"
    rc, _, _ = run([EXAMPLES_DIR / "energy-fy2024.csv", "--format", "xlsx", "-o", out], capsys)
    assert rc == 0
    wb = openpyxl.load_workbook(out)
    ws = wb.worksheets[0]
    assert ws.title == "CO2 FY2024"
    assert [ws.cell(5, 2 + j).value for j in range(12)] == [f"{m}月" for m in (4, 5, 6, 7, 8, 9, 10, 11, 12, 1, 2, 3)]
    names = [ws.cell(r, 1).value for r in range(6, 11)]
    assert names[0].startswith("電力") and "都市ガス" in names
    total_row = 11
    assert ws.cell(total_row, 1).value == "合計"
    # the total row equals the sum of the energy rows, month by month; shares sum to 1
    for col in range(2, 15):
        assert ws.cell(total_row, col).value == pytest.approx(sum(ws.cell(r, col).value for r in range(6, 11)))
    assert sum(ws.cell(r, 16).value for r in range(6, 11)) == pytest.approx(1.0)
    charts = ws._charts
    assert len(charts) == 1 and charts[0].grouping == "stacked" and len(charts[0].series) == 5
    assert {"使用量 amounts", "費用 cost", "Scope・目標", "係数 factors"} <= set(wb.sheetnames)


def test_bom_shift_jis_and_japanese_headers(tmp_path, capsys):
    text = "年月,エネルギー,使用量,単位,金額\n2024-04,灯油,\"1,000\",Ｌ,110000\n2024-05,軽油,1,kl,\n"
    for enc, name in (("utf-8-sig", "bom.csv"), ("cp932", "sjis.csv")):
        rc, out, err = run([write(tmp_path, text, name, enc), "--format", "json"], capsys)
        assert rc == 0, err
        d = json.loads(out)
        assert d["total_t_co2"] == pytest.approx(2.50 + 2.62)


BAD = [
    ("2024-04,灯油x,1,L", "e.csv:3: energy: unknown energy '灯油x'; did you mean '灯油'?"),
    ("2024-04,酸素,100,m3", "e.csv:3: energy: '酸素' is an industrial gas"),
    ("2024-04,灯油,1O0,L", "e.csv:3: amount: '1O0' is not a number"),
    ("2024-04,灯油,-5,L", "e.csv:3: amount: amount -5 is negative"),
    ("2024-04,electricity,100,L", "e.csv:3: unit: unit L does not fit electricity"),
    ("2024-04,灯油,100,gallon", "e.csv:3: unit: unknown unit 'gallon'"),
    ("2024-13,灯油,1,L", "e.csv:3: period: '2024-13' is not YYYY-MM"),
    ("2024-04,灯油,1,L,2.5,t-CO2/kWh", "e.csv:3: factor_unit: L (volume_liquid) cannot be converted to kWh"),
    ("2024-04,都市ガス,1,千m3,2.23,t-CO2/千Nm3", "e.csv:3: factor_unit: 千m3 and 千Nm3 are gas volumes"),
    ("2024-04,灯油,1,L,2.5,", "e.csv:3: factor_unit: factor is given without its unit"),
    ("2024-04,electricity,1,kWh,,,ほげ電力", "e.csv:3: supplier: no electricity factor for supplier 'ほげ電力'"),
    ("2024-04,灯油,,L", "e.csv:3: amount: empty"),
]


@pytest.mark.parametrize("line, msg", BAD)
def test_bad_rows_exit_2_and_write_nothing(tmp_path, capsys, line, msg):
    f = write(tmp_path, "period,energy,amount,unit,factor,factor_unit,supplier\n2024-04,灯油,1,L\n" + line + "\n")
    out = tmp_path / "out.json"
    rc, _, err = run([f, "--format", "json", "-o", out], capsys)
    assert rc == 2
    assert msg in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists() and list(tmp_path.iterdir()) == [f]


@pytest.mark.parametrize("text, msg", [
    ("", "empty file"),
    ("period,energy,amount\n2024-04,灯油,1\n", "e.csv:1: missing required column unit"),
    ("period,energy,amount,unit,colour\n", "e.csv:1: unknown column 'colour'"),
    ("period,energy,amount,unit\n", "no energy rows"),
    ("period,energy,amount,unit\n2024-04,灯油,1,L,extra\n", "e.csv:2: 5 fields, the header has 4"),
])
def test_bad_files(tmp_path, capsys, text, msg):
    rc, _, err = run([write(tmp_path, text), "--format", "xlsx", "-o", tmp_path / "x.xlsx"], capsys)
    assert rc == 2 and msg in err
    assert not (tmp_path / "x.xlsx").exists()


def test_xlsx_needs_output_and_missing_file(tmp_path, capsys):
    rc, _, err = run([write(tmp_path, GOOD), "--format", "xlsx"], capsys)
    assert rc == 2 and "-o" in err
    rc, _, err = run([tmp_path / "nope.csv"], capsys)
    assert rc == 2 and "nope.csv: no such file" in err


def test_site_config_contract_tariffs_and_bad_names(tmp_path, capsys):
    site = tmp_path / "site.toml"
    site.write_text('[site]\nname = "t"\n[tariffs]\nelectricity_jpy_per_kwh = 30\n'
                    '[tariffs.prices]\n"都市ガス" = { jpy_per_unit = 150, unit = "m3" }\n'
                    '[[contracts]]\nid = "hv"\nretailer = "九州電力"\nmenu = "B"\nresults_fiscal_year = 2022\n'
                    '[co2]\nbase_fiscal_year = 2023\nbase_year_t_co2 = 50\n', encoding="utf-8")
    f = write(tmp_path, "period,energy,amount,unit\n2024-04,electricity,10000,kWh\n2024-04,都市ガス,1,千m3\n")
    rc, out, err = run([f, "--format", "json", "--config", site], capsys)
    assert rc == 0, err
    d = json.loads(out)
    assert d["by_energy"]["electricity"] == pytest.approx(10_000 * 0.000467)         # 九州電力 menu B adjusted
    assert d["scope2_location_based_t_co2"] == pytest.approx(10_000 * 0.000399)
    assert d["cost_jpy"] == pytest.approx(10_000 * 30 + 1000 * 150)
    sbt = d["targets"][0]
    assert sbt["target_t_co2"] == pytest.approx(50 * (1 - 0.042)) and sbt["base_fiscal_year"] == 2023
    # a user's factor file named in the site config (relative to it): a new retailer year
    (tmp_path / "own.toml").write_text('title = "own"\nsource = "letter"\n[[suppliers]]\nname = "九州電力"\n'
                                       'results_fiscal_year = 2023\nbasic = 0.0004\nadjusted = { menu_B = 0.0003 }\n',
                                       encoding="utf-8")
    site.write_text(site.read_text(encoding="utf-8").replace("results_fiscal_year = 2022\n", "")
                    + 'factor_files = ["own.toml"]\n', encoding="utf-8")
    rc, out, err = run([f, "--format", "json", "--config", site], capsys)
    assert rc == 0, err
    assert json.loads(out)["by_energy"]["electricity"] == pytest.approx(10_000 * 0.0003)   # FY2024 -> FY2023 results
    bad = tmp_path / "bad.toml"
    bad.write_text('[site]\nname = "t"\n[tariffs.prices]\n"窒素" = { jpy_per_unit = 1, unit = "m3" }\n', encoding="utf-8")
    rc, _, err = run([f, "--config", bad], capsys)
    assert rc == 2 and "bad.toml: line 3: tariffs.prices: 窒素: '窒素' is an industrial gas" in err


def test_real_command_exit_codes(tmp_path):
    ok = subprocess.run([str(MIERUKA), "co2", str(EXAMPLES_DIR / "energy-fy2024.csv"), "--format", "json"],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and json.loads(ok.stdout)["fiscal_year"] == 2024
    bad = write(tmp_path, "period,energy,amount,unit\n2024-04,灯油,1,kWh\n")
    r = subprocess.run([str(MIERUKA), "co2", str(bad)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.strip() == f"error: {bad}:2: unit: unit kWh does not fit kerosene (灯油); use L, kL"
    h = subprocess.run([str(MIERUKA), "co2", "--help"], capture_output=True, text=True, timeout=60)
    assert h.returncode == 0 and "--fiscal-year" in h.stdout


@pytest.mark.slow
def test_xlsx_opens_in_libreoffice(tmp_path, capsys):
    """LibreOffice (a real third-party reader) converts the workbook and keeps the numbers and the chart."""
    import shutil
    import zipfile
    soffice = shutil.which("soffice")
    if soffice is None:
        pytest.skip("libreoffice-calc-nogui is not installed (deploy/apt-packages.txt installs it)")
    x = tmp_path / "sheet.xlsx"
    assert run([write(tmp_path, GOOD), "--format", "xlsx", "-o", x], capsys)[0] == 0
    lo = [soffice, "--headless", "--norestore", f"-env:UserInstallation=file://{tmp_path}/profile"]
    csv_filter = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1"
    for target in ("ods", csv_filter):
        r = subprocess.run([*lo, "--convert-to", target, "--outdir", str(tmp_path / "out"), str(x)],
                           capture_output=True, text=True, timeout=120, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
        assert r.returncode == 0, r.stderr
    with zipfile.ZipFile(tmp_path / "out" / "sheet.ods") as z:
        chart = z.read("Object 1/content.xml").decode()
    assert 'chart:class="chart:bar"' in chart and 'chart:stacked="true"' in chart
    assert chart.count("<chart:series ") == 3                     # electricity, city gas, kerosene
    lines = (tmp_path / "out" / "sheet-CO2 FY2024.csv").read_text(encoding="utf-8").splitlines()
    assert lines[4].split(",")[:3] == ["エネルギー", "4月", "5月"]
    total = next(line.split(",") for line in lines if line.startswith("合計"))
    assert float(total[13]) == pytest.approx(ELEC_MKT + SCOPE1)   # 40.63 t, by hand above


@pytest.mark.parametrize("line, msg", [
    ("2024-04,electricity,1,kWh,,,TEPCO,Z", "e.csv:2: menu: 東京電力エナジーパートナー FY2022: no adjusted factor for menu 'Z'"),
    ("2024-04,steam,1,GJ,,,,", "e.csv:2: energy: factor set 'shk_2023' has no factor for steam"),
])
def test_lookup_errors_name_the_right_field(tmp_path, capsys, line, msg):
    f = write(tmp_path, "period,energy,amount,unit,factor,factor_unit,supplier,menu\n" + line + "\n")
    rc, _, err = run([f], capsys)
    assert rc == 2 and msg in err


def test_lpg_in_kl_with_its_own_factor_is_computed_with_a_warning(tmp_path, capsys, caplog):
    p = write(tmp_path, "period,energy,amount,unit,factor,factor_unit\n"
                        "2025-04,LPG,1.5,kL,3.00,t-CO2/kL\n2025-04,電気,1000,kWh,,\n")
    rc = main(["co2", str(p), "--format", "json"])
    out = capsys.readouterr().out
    assert rc == 0
    sheet = json.loads(out)
    assert "e.csv:2: lpg (LPG) is usually measured in kg, t, here in kL" in caplog.text
    assert json.dumps(sheet).count("4.5") >= 1
    bad = write(tmp_path, "period,energy,amount,unit,factor,factor_unit\n2025-04,LPG,1.5,kL,3.00,t-CO2/t\n", "bad.csv")
    assert main(["co2", str(bad)]) == 2
    assert "bad.csv:2: factor_unit: kL (volume_liquid) cannot be converted to t (mass)" in capsys.readouterr().err
