"""The savings plan takes the factory's own assumptions from `[savings]` in the site config."""
import json
import re
import subprocess
import sys

import pytest

from mieruka.config import EXAMPLES_DIR

MIERUKA = [sys.executable, "-m", "mieruka.cli"]
# the demo site without its own [savings] table, so each test states the one it means
DEMO = re.sub(r"\[savings\].*?\n\n", "", (EXAMPLES_DIR / "demo-site.toml").read_text(encoding="utf-8"),
              count=1, flags=re.S)


def site_with(tmp_path, savings: str):
    p = tmp_path / f"site-{abs(hash(savings))}.toml"
    p.write_text(DEMO.replace("[storage]", savings + "\n[storage]", 1), encoding="utf-8")
    return p


@pytest.fixture(scope="module")
def week(tmp_path_factory):
    out = tmp_path_factory.mktemp("sav") / "week.csv"
    subprocess.run(MIERUKA + ["simulate", "--config", str(EXAMPLES_DIR / "demo-site.toml"), "--record", str(out),
                              "--days", "7"], check=True, capture_output=True)
    return out


def plan(recording, site) -> dict:
    r = subprocess.run(MIERUKA + ["analyze", str(recording), "--config", str(site), "--json"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return {m["id"]: m for m in json.loads(r.stdout)["plan"]}


def test_investment_and_pressure_target_from_config(tmp_path, week):
    default = plan(week, site_with(tmp_path, ""))
    own = plan(week, site_with(tmp_path, "[savings]\ninvestment_jpy = { leak_repair = 123456 }\n"
                                         "pressure_target_mpa = 0.55\n"))
    leak = own["leak_repair"]
    assert leak["investment_jpy"] == 123456
    assert default["leak_repair"]["investment_jpy"] != 123456
    assert leak["payback_years"] == pytest.approx(123456 / leak["cost_jpy_per_year"], rel=1e-4)
    # a lower target pressure saves more than the default 0.6 MPa
    assert own["pressure_setpoint"]["energy_kwh_per_year"] > default["pressure_setpoint"]["energy_kwh_per_year"]


def test_bad_savings_table_names_the_key(tmp_path):
    site = site_with(tmp_path, "[savings]\ninvestment_jpy = { leak_repair = -5 }\n")
    r = subprocess.run(MIERUKA + ["check", "--config", str(site)], capture_output=True, text=True)
    assert r.returncode == 2
    assert "savings.investment_jpy: Value error" not in r.stderr
    assert "savings.investment_jpy: leak_repair: an investment cannot be negative" in r.stderr, r.stderr
    site = site_with(tmp_path, "[savings]\ninvestment_jpy = { solar = 1 }\n")
    r = subprocess.run(MIERUKA + ["check", "--config", str(site)], capture_output=True, text=True)
    assert r.returncode == 2 and "savings.investment_jpy.solar" in r.stderr, r.stderr
