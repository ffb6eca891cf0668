"""Always-on loads: equipment that must run at night is base load, not standby.

A server room, a refrigerator or a laboratory's fume hoods draw power outside
production because they must.  Calling that "standby, switch it off" is the
fastest way to lose an energy manager's trust, so such a channel gets a
`base_load` finding instead: its typical kW and kWh, to review (set points,
right-sizing, free cooling), never to switch off, and no saving in the plan
unless the site says how much of it can go (`[savings] base_load_reduction_share`).

A channel is always-on when
1. the site config says so (`always_on = true` on the channel), or
2. its `equipment_kind` is one of `ALWAYS_ON_KINDS` (below; Japanese names too), or
3. without either, its load does not follow production: its mean outside
   production (over normal days) is at least `FOLLOWS_PRODUCTION_RATIO` (85 %)
   of its mean in production.  `always_on = false` in the config overrides 2 and 3.

This list is the project's one list of always-on equipment kinds.
"""
from __future__ import annotations

# equipment kinds that run around the clock by design (lower case; Japanese beside English)
ALWAYS_ON_KINDS = frozenset({
    "it", "server", "servers", "server_room", "data_centre", "data_center", "datacenter", "network", "ups",
    "refrigeration", "refrigerator", "fridge", "freezer", "cold_storage", "cold_room", "chiller_storage",
    "lab", "laboratory", "clean_room", "cleanroom", "fume_hood", "incubator", "aquarium",
    "emergency_lighting", "security", "fire", "medical",
    "サーバ", "サーバー", "サーバー室", "電算室", "冷蔵", "冷蔵庫", "冷凍", "冷凍庫", "冷凍機", "冷蔵倉庫",
    "実験室", "研究室", "クリーンルーム", "非常灯", "防災",
})
FOLLOWS_PRODUCTION_RATIO = 0.85     # off-hours mean / production mean at or above this: does not follow production
MIN_HOURS_EACH = 24.0               # the ratio needs this many hours in production and outside it


def always_on_reason(always_on: bool | None, equipment_kind: str | None) -> str | None:
    """Why a channel is always-on from its configuration: "configured", "equipment_kind",
    or None (not known from the configuration; `always_on = false` also gives None)."""
    if always_on is not None:           # True/False, or 1/0 from a store
        return "configured" if always_on else None
    kind = (equipment_kind or "").strip().lower()
    return "equipment_kind" if kind in ALWAYS_ON_KINDS else None


def follows_production(off_hours_mean_kw: float, production_mean_kw: float,
                       ratio: float = FOLLOWS_PRODUCTION_RATIO) -> bool:
    """False when the load outside production is at least `ratio` of the load in
    production (a load that does not drop when the factory stops)."""
    if production_mean_kw <= 0:
        return off_hours_mean_kw <= 0
    return off_hours_mean_kw < ratio * production_mean_kw
