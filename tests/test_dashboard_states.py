"""Issue 10 item 16, in Debian's headless Chromium against `mieruka serve`: readings
older than [api] stale_after_s are said to be stale (更新なし) in words with their
age, the profile chart's y-axis carries its unit, and a channel without data says
so instead of drawing an empty grid.  The recording is from April 2026, so every
channel is months old whenever this runs."""
from __future__ import annotations

import re
import shutil

import pytest

from helpers.api_site import TOKENS, Server, loaded_site

from test_dashboard_chromium import chromium

CHROMIUM = shutil.which("chromium")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")]

NO_DATA_METER = '''
[[meters]]
id = "pm-new"
model = "sdm630"
[[meters.channels]]
id = "new_feeder"
register = "total_power"
quantity = "power_kw"
equipment_kind = "incomer"
'''


def _dom(tmp_path_factory, lang: str, extra: str = "") -> str:
    tmp = tmp_path_factory.mktemp(f"dash-{lang}")
    cfg, store, _ = loaded_site(tmp, language=lang, days=14, extra=extra)
    store.close()
    srv = Server(cfg.source)
    try:
        r = chromium(tmp, "--dump-dom", url=f"{srv.url}/dashboard#token={TOKENS['read']}")
        assert 'data-loaded="yes"' in r.stdout, r.stderr[-2000:]
        png = tmp.parent / f"dashboard-{lang}{'-nodata' if extra else ''}.png"
        chromium(tmp, f"--screenshot={png}", url=f"{srv.url}/dashboard#token={TOKENS['read']}")
        return r.stdout
    finally:
        srv.stop()


def _card(dom: str, channel: str) -> str:
    """The text of one channel's card (up to the next card or the end of the cards)."""
    start = dom.index(f'data-channel="{channel}"')
    end = min(i for i in (dom.find('<div class="card ', start), dom.find("</section>", start)) if i > 0)
    return re.sub(r"<[^>]+>", " ", dom[start:end])


@pytest.mark.parametrize("lang, stale, months_ago, unit_label", [("ja", "更新なし", "か月前", "最新データの日"),
                                                                  ("en", "stale", "months ago", "latest day with data")])
def test_stale_values_said_in_words_and_unit_on_the_axis(tmp_path_factory, lang, stale, months_ago, unit_label):
    dom = _dom(tmp_path_factory, lang)
    card = _card(dom, "main_power")
    assert 'class="card stale"' in dom
    assert stale in card and "2026-04-19 23:59" in card and months_ago in card, card
    assert re.search(r'class="y-unit"[^>]*>kW<', dom)                 # the profile's y-axis unit
    assert unit_label in dom                                         # April 19 is not "today"


def test_channel_without_data_says_so(tmp_path_factory):
    dom = _dom(tmp_path_factory, "ja", extra=NO_DATA_METER)
    assert "データなし" in _card(dom, "new_feeder")
    chart = dom[dom.index('id="profile-chart"'):]
    assert "new_feeder: この計測点にはデータがありません" in chart[:400]
    assert "<svg" not in chart[:400]                                 # no empty grid
