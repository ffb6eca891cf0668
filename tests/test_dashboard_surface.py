"""What an energy manager sees on the dashboard (headless Chromium against `mieruka
serve`): channels described in the site's words (設備, 工程, breaker, meter), not by id
alone; the profile chart says which line is the day and which the baseline; a
Japanese page speaks Japanese when no collector runs; and names from the config
that look like markup or formulas are shown as text."""
from __future__ import annotations

import re

import pytest

from helpers.api_site import METER_TOML, TOKENS, Server, loaded_site, sha
from test_dashboard_chromium import CHROMIUM, chromium

pytestmark = [pytest.mark.slow, pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")]

EXPIRED = "expired-token-0123456789"
EQUIPMENT = '<img src=x onerror="document.title=1">受電VCB'


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dash-surface")
    extra = METER_TOML.replace('equipment_kind = "incomer"\n', f'equipment_kind = "incomer"\nequipment = \'{EQUIPMENT}\'\n'
                               'process = "=HYPERLINK(\\"x\\")"\nbreaker = "VCB-1"\n', 1)
    extra += f'[[api.tokens]]\nname = "old"\nsha256 = "{sha(EXPIRED)}"\nexpires = 2020-03-31\n'
    cfg, store, _ = loaded_site(tmp, days=10, extra=extra)
    store.close()
    srv = Server(cfg.source)
    try:
        r = chromium(tmp, "--dump-dom", url=f"{srv.url}/dashboard#token={TOKENS['read']}")
        old = chromium(tmp, "--dump-dom", url=f"{srv.url}/dashboard#token={EXPIRED}")
        yield r.stdout, r.stderr, old.stdout
    finally:
        srv.stop()


def test_channels_and_findings_are_described_in_the_sites_words(page):
    dom, err, _ = page
    assert 'data-loaded="yes"' in dom, err[-2000:]
    card = re.search(r'<div class="card [a-z_]+" data-channel="main_power".*?</div></div>', dom, re.S)
    assert card, dom[:3000]
    desc = re.search(r'<div class="desc">([^<]*)</div>', card.group(0))
    assert desc and "受電VCB" in desc.group(1) and "VCB-1" in desc.group(1) and "pm-main" in desc.group(1)
    assert "&lt;img src=x" in dom and "<img src=x" not in dom          # text, never markup
    row = re.search(r'<tr class="finding"><td>[^<]*</td><td>main_power<div class="desc">([^<]*)</div>', dom)
    assert row and "受電VCB" in row.group(1), "the incomer's finding names its equipment"


def test_profile_has_a_legend_and_the_japanese_page_stays_japanese(page):
    dom, _, _ = page
    assert 'class="legend-today"' in dom and re.search(r'class="legend-baseline"[^>]*>ベースライン', dom)
    note = re.search(r'<p id="demand-note"[^>]*>([^<]*)</p>', dom)
    assert note and note.group(1).startswith("デマンドの現在値はまだありません")
    assert not re.search(r"[A-Za-z]{4,} [A-Za-z]{4,}", note.group(1).replace("mieruka collect", "")), note.group(1)


def test_an_expired_token_says_so_and_asks_for_another(page):
    """The page went back to the token form without a word: the user could not tell a
    typo from a token past its expiry day."""
    _, _, dom = page
    assert re.search(r'<form id="login"(?![^>]*hidden)', dom)
    err = re.search(r'<p id="error" class="error"(?![^>]*hidden)[^>]*>([^<]*)</p>', dom)
    assert err and "'old' expired" in err.group(1), dom[-3000:]
