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

# Loads that run around the clock by design (refrigeration, servers, ...): their
# load outside production is needed, not standby waste.  Placeholder list: issue 11
# extends it (and decides how the standby detector uses it); keep the name.
ALWAYS_ON_KINDS = frozenset({"always_on", "常時運転"})


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
    return _kind(x) in ALWAYS_ON_KINDS
