"""Equipment-kind roles: the one place that says what an `equipment_kind` tag
means to the analytics, the CO2 sheet, the reports and the simulators.

Tags are free text in the site config and in recordings, in English or
Japanese (主幹, 受電, コンプレッサ, ...); they are compared after NFKC
normalisation (full-width letters, half-width katakana), stripping and
lower-casing, so "Incomer", "ＩＮＣＯＭＥＲ" and " incomer " are one tag.

    is_site_total(info)   # the meter of the whole site (its incomer / main breaker)
    is_compressor(info)   # an air compressor's power
    is_air_meter(info)    # a compressed-air flow/pressure meter
    is_always_on(info)    # needed around the clock: outside production it is not waste
"""
from __future__ import annotations

import unicodedata

# The incomer / main meter: measures the whole site, so the breakers below it are
# part of it and are never added to it (findings, site energy, CO2 sheet).
SITE_TOTAL_KINDS = frozenset({"incomer", "main", "total", "site", "受電", "主幹", "主幹盤", "受電盤", "全体"})

# Air compressors (their findings come from the air systems: night stop, leaks).
COMPRESSOR_KINDS = frozenset({"compressor", "air_compressor", "コンプレッサ", "コンプレッサー", "空気圧縮機"})

# Compressed-air flow and pressure meters.
AIR_METER_KINDS = frozenset({"air_meter", "air_flow_meter", "flow_meter", "エア流量計", "流量計"})

# Loads that run around the clock by design: servers, refrigeration, laboratories ...
# Their load outside production is needed, not standby waste: the analytics give them a
# `base_load` finding (to review, never "switch off") and claim no saving for it unless
# the site sets `[savings] base_load_reduction_share` (analytics/base_load.py).  A channel's
# `always_on = true/false` in the site config overrides its kind.  Compared after
# normalize_kind (NFKC, stripped, lower case).
ALWAYS_ON_KINDS = frozenset({
    "always_on", "常時運転",
    "it", "server", "servers", "server_room", "data_centre", "data_center", "datacenter", "network", "ups",
    "refrigeration", "refrigerator", "fridge", "freezer", "cold_storage", "cold_store", "cold_room",
    "lab", "laboratory", "clean_room", "cleanroom", "fume_hood", "incubator",
    "emergency_lighting", "security", "fire", "medical",
    "サーバ", "サーバー", "サーバー室", "サーバ室", "電算室", "冷蔵", "冷蔵庫", "冷凍", "冷凍庫", "冷蔵倉庫",
    "冷凍倉庫", "実験室", "研究室", "クリーンルーム", "非常灯", "防災",
})


def normalize_kind(kind: str | None) -> str:
    """The comparable form of an equipment-kind tag ("" for none)."""
    if not kind:
        return ""
    return unicodedata.normalize("NFKC", str(kind)).strip().lower()


def _kind(x) -> str:
    return normalize_kind(x if isinstance(x, str) or x is None else getattr(x, "equipment_kind", None))


def is_site_total(x) -> bool:
    """True for the site's incomer/main meter; `x` is a ChannelInfo, a config
    Channel or a tag."""
    return _kind(x) in SITE_TOTAL_KINDS


def is_compressor(x) -> bool:
    return _kind(x) in COMPRESSOR_KINDS


def is_air_meter(x) -> bool:
    return _kind(x) in AIR_METER_KINDS


def is_always_on(x) -> bool:
    """True for a channel that must run outside production: `always_on` set on it (a
    ChannelInfo or config Channel; False overrides the kind), else its kind is listed."""
    flag = getattr(x, "always_on", None) if not isinstance(x, str) and x is not None else None
    if flag is not None:
        return bool(flag)
    return _kind(x) in ALWAYS_ON_KINDS
