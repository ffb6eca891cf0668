"""Issue 10 item 15: the report's fiscal-year t-CO2 headline says which days it
covers (a recording of two weeks is not a year), months without data show "—"
(not 0.000), and location- and market-based totals are both labelled, in the
report and in `mieruka co2`'s table."""
from __future__ import annotations

import re

import pytest

from helpers.api_site import auth, client, loaded_site


@pytest.fixture(scope="module", params=["ja", "en"])
def report(request, tmp_path_factory):
    cfg, store, _ = loaded_site(tmp_path_factory.mktemp(f"rep-{request.param}"), language=request.param, days=14)
    try:
        html = client(cfg, store).get("/api/v1/report.html", headers=auth("read")).text
    finally:
        store.close()
    return request.param, html


def _text(html: str, element_id: str) -> str:
    m = re.search(rf'id="{element_id}"[^>]*>(.*?)</(p|div)>', html, re.S)
    assert m, element_id
    return re.sub(r"<[^>]+>", " ", m.group(1))


def test_headline_says_it_covers_the_recorded_days_only(report):
    lang, html = report
    cov = _text(html, "co2-coverage")
    # the recording: 2026-04-06 00:00 JST for 14 days -> the last reading on 2026-04-19
    assert "2026-04-06 – 2026-04-19" in cov and "14" in cov
    assert ("1 of 12 months" in cov and "not the whole fiscal year" in cov) if lang == "en" else \
        ("12 か月中 1 か月" in cov and "年度全体の値ではありません" in cov)


def test_both_totals_are_labelled(report):
    lang, html = report
    loc, mkt = _text(html, "kpi-co2-location"), _text(html, "kpi-co2-market")
    assert ("Location-based" in loc and "Market-based" in mkt) if lang == "en" else \
        ("ロケーション基準" in loc and "マーケット基準" in mkt)
    num = lambda s: float(re.findall(r"[\d,]+\.\d+", s)[-1].replace(",", ""))   # noqa: E731
    # TEPCO EP FY2022: basic 0.000457 > adjusted 0.000451 t-CO2/kWh, the same kWh
    assert num(loc) / num(mkt) == pytest.approx(0.000457 / 0.000451, rel=1e-3)


def test_months_without_data_show_a_dash_not_zero(report):
    _, html = report
    sheet = html[html.index('id="co2-sheet"'):html.index("</table>", html.index('id="co2-sheet"'))]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", sheet, re.S)[1:]
    for row in rows:
        cells = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        months = cells[1:13]
        assert months[0] not in ("—", "0.000")             # April has data
        assert months[1:] == ["—"] * 11, cells             # May..March: no data, not 0.000
    assert "0.000</td>" not in sheet


def test_co2_cli_labels_both_totals(tmp_path, capsys, monkeypatch):
    from mieruka.cli import main
    from mieruka.config import EXAMPLES_DIR
    monkeypatch.setenv("COLUMNS", "200")         # restored afterwards, whatever it was before
    assert main(["co2", str(EXAMPLES_DIR / "energy-fy2024.csv")]) == 0
    out = capsys.readouterr().out
    assert "合計 total (market-based)" in out
    assert "total, Scope 2 location-based" in out and "total, Scope 2 market-based (used in this sheet's totals)" in out
