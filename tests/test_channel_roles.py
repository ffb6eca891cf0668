"""One channel model: equipment-kind roles in one place (mieruka.roles), channel
infos from SiteConfig, and the double count they fix (a main meter tagged 主幹
was the site total for the findings but main + breakers in the CO2 sheet)."""
import datetime as dt
import textwrap
from pathlib import Path

import numpy as np
import pytest

from mieruka.models import ChannelInfo, ReadingBatch
from mieruka.reports.loadprofile import day_type_profiles, site_power_channels
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
        assert site_power_channels(ctx.infos()) == ["main_kw"]
        # the report's site profile is the incomer alone, not main + breakers
        prof = day_type_profiles(ctx, site_power_channels(ctx.infos()), *rng)
        assert np.nanmax(prof["workday"]) == pytest.approx(100.0)
    finally:
        store.close()


def test_without_a_main_meter_the_breakers_are_summed(tmp_path):
    infos = {c: ChannelInfo(c, "power_kw", equipment_kind=k) for c, k in (("a", "press"), ("b", "hvac"))}
    assert metered_channels(infos) == {"electricity": [("a", "rate"), ("b", "rate")]}
    assert site_power_channels(infos) == ["a", "b"]


def test_site_profile_without_an_incomer_sums_the_breakers(tmp_path):
    """The report's 日負荷曲線 showed the first breaker as if it were the site; it is the
    sum of the breakers, slot by slot (a breaker missing a slot adds nothing there), and
    a generating channel's negative power is no consumption."""
    cfg = load_site(_config(tmp_path))
    store = open_store(cfg)
    try:
        store.set_channels([ChannelInfo("a", "power_kw", "kW", equipment_kind="press"),
                            ChannelInfo("b", "power_kw", "kW", equipment_kind="hvac"),
                            ChannelInfo("pv", "power_kw", "kW", equipment_kind="pv")])
        n = 1440
        t = START + np.arange(n).astype("timedelta64[m]").astype("timedelta64[ms]")
        hour = np.arange(n) // 60                                  # local hour (START is 00:00 JST)
        a = np.where((hour >= 8) & (hour < 17), 60.0, 5.0)
        b = np.full(n, 40.0)
        b_ok = hour != 3                                           # b lost 03:00-04:00
        pv = np.where((hour >= 10) & (hour < 14), -20.0, 0.0)
        for cid, kw, ok in (("a", a, np.ones(n, bool)), ("b", b, b_ok), ("pv", pv, np.ones(n, bool))):
            store.write(ReadingBatch(t[ok], np.full(ok.sum(), cid, dtype=object), kw[ok], np.zeros(ok.sum(), np.uint8)))
        ctx = Context(cfg, store)
        chans = site_power_channels(ctx.infos())
        assert sorted(chans) == ["a", "b", "pv"]
        rng = (dt.datetime(2025, 5, 1, tzinfo=cfg.tz), dt.datetime(2025, 5, 2, tzinfo=cfg.tz))
        prof = day_type_profiles(ctx, chans, *rng)
        (day,) = prof.values()                                     # one day, one day type
        slot = {h: day[h * 4] for h in (2, 3, 9, 12)}
        assert slot[2] == pytest.approx(45.0) and slot[9] == pytest.approx(100.0)
        assert slot[3] == pytest.approx(5.0)                       # only a measured then
        assert slot[12] == pytest.approx(100.0)                    # pv's -20 kW is not subtracted
        one, listed = day_type_profiles(ctx, "a", *rng), day_type_profiles(ctx, ["a"], *rng)
        assert one.keys() == listed.keys() and all(np.array_equal(one[k], listed[k]) for k in one)
    finally:
        store.close()


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
