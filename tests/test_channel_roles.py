"""One channel model: equipment-kind roles in one place (mieruka.roles), channel
infos from SiteConfig, and the double count they fix (a main meter tagged 主幹
was the site total for the findings but main + breakers in the CO2 sheet)."""
import datetime as dt
import textwrap
from pathlib import Path

import numpy as np
import pytest

from mieruka.models import ChannelInfo, ReadingBatch
from mieruka.reports.loadprofile import main_power_channel
from mieruka.roles import SITE_TOTAL_KINDS, is_air_meter, is_compressor, is_site_total
from mieruka.service.co2sheet import co2_sheet, metered_channels
from mieruka.service.context import Context
from mieruka.site import load_site
from mieruka.store.base import open_store

START = np.datetime64("2025-04-30T15:00", "ms")          # 2025-05-01 00:00 JST


@pytest.mark.parametrize("tag", ["主幹", "受電", "incomer", "Incomer", " main ", "ＩＮＣＯＭＥＲ", "主幹盤"])
def test_site_total_tags(tag):
    assert is_site_total(tag) and is_site_total(ChannelInfo("x", "power_kw", equipment_kind=tag))


def test_other_roles():
    assert is_compressor("コンプレッサー") and is_compressor("ｺﾝﾌﾟﾚｯｻ")        # half-width katakana
    assert is_air_meter("air_meter") and not is_air_meter("press")
    assert not is_site_total(None) and not is_site_total("press") and not is_compressor("")
    assert "主幹" in SITE_TOTAL_KINDS


def _config(tmp: Path, meters: str = "") -> Path:
    p = tmp / "site.toml"
    p.write_text(textwrap.dedent(f"""
        [site]
        name = "主幹テスト"
        timezone = "Asia/Tokyo"
        data_dir = "{tmp / 'data'}"
        [calendar]
        holidays = "JP"
        [tariffs]
        electricity_jpy_per_kwh = 25.0
        [[contracts]]
        id = "hv"
        retailer = "東京電力エナジーパートナー"
    """) + textwrap.dedent(meters), encoding="utf-8")
    return p


def _site_with_main_tagged_shukan(tmp: Path):
    """A main meter tagged 主幹 (100 kW) over two breakers (60 + 40 kW), one day of minutes."""
    cfg = load_site(_config(tmp))
    store = open_store(cfg)
    infos = [ChannelInfo("main_kw", "power_kw", "kW", equipment_kind="主幹"),
             ChannelInfo("line_a_kw", "power_kw", "kW", equipment_kind="press"),
             ChannelInfo("line_b_kw", "power_kw", "kW", equipment_kind="hvac")]
    store.set_channels(infos)
    n = 1440
    t = START + np.arange(n).astype("timedelta64[m]").astype("timedelta64[ms]")
    for cid, kw in (("main_kw", 100.0), ("line_a_kw", 60.0), ("line_b_kw", 40.0)):
        store.write(ReadingBatch(t, np.full(n, cid, dtype=object), np.full(n, kw), np.zeros(n, np.uint8)))
    return cfg, store


def test_co2_sheet_counts_the_main_meter_once(tmp_path):
    cfg, store = _site_with_main_tagged_shukan(tmp_path)
    try:
        ctx = Context(cfg, store)
        assert metered_channels(ctx.infos()) == {"electricity": [("main_kw", "rate")]}
        sheet = co2_sheet(ctx, 2025)
        may = sheet["months"].index("2025-05")
        kwh = sheet["sheet"]["amount"]["electricity"][may]
        assert sheet["sheet"]["metered_channels"] == {"electricity": ["main_kw"]}
        assert kwh == pytest.approx(100.0 * 24)          # main only; main + breakers would be 4,800 kWh
        # the findings' site total is the same channel: one definition for both
        rng = (dt.datetime(2025, 5, 1, tzinfo=cfg.tz), dt.datetime(2025, 5, 2, tzinfo=cfg.tz))
        view = ctx.analysis(*rng)
        assert view.summary["site"]["channels"] == ["main_kw"]
        assert view.summary["site"]["energy_kwh"] == pytest.approx(kwh, rel=1e-3)
        assert main_power_channel(ctx.infos()) == "main_kw"
    finally:
        store.close()


def test_without_a_main_meter_the_breakers_are_summed(tmp_path):
    infos = {c: ChannelInfo(c, "power_kw", equipment_kind=k) for c, k in (("a", "press"), ("b", "hvac"))}
    assert metered_channels(infos) == {"electricity": [("a", "rate"), ("b", "rate")]}


def test_site_config_gives_the_channel_infos(tmp_path):
    cfg = load_site(_config(tmp_path, """
        [[meters]]
        id = "pm-main"
        model = "sdm630"
        [[meters.channels]]
        id = "main_kw"
        quantity = "power_kw"
        register = "total_power"
        equipment_kind = "主幹"
        breaker = "VCB-1"
        standby_allowance_kw = 3.0
    """))
    info = cfg.channel_infos()["main_kw"]
    assert info == ChannelInfo("main_kw", "power_kw", None, "主幹", None, "VCB-1", None, None, "pm-main", 3.0)
    store = open_store(cfg)
    try:
        assert Context(cfg, store).infos()["main_kw"] == info
    finally:
        store.close()
