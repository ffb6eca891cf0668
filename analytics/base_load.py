"""Always-on loads: equipment that must run at night is base load, not standby.

A server room, a refrigerator or a laboratory's fume hoods draw power outside
production because they must.  Calling that "standby, switch it off" is the
fastest way to lose an energy manager's trust, so such a channel gets a
`base_load` finding instead: its typical kW and kWh, to review (set points,
right-sizing, free cooling), never to switch off, and no saving in the plan
unless the site says how much of it can go (`[savings] base_load_reduction_share`).

A channel is always-on when
1. the site config says so (`always_on = true` on the channel), or
2. its `equipment_kind` is one of `ALWAYS_ON_KINDS` (Japanese names too), or
3. without either, its load does not follow production: its mean outside
   production (over normal days) is at least `FOLLOWS_PRODUCTION_RATIO` (85 %)
   of its mean in production.  `always_on = false` in the config overrides 2 and 3.

The kinds live in `mieruka.roles.ALWAYS_ON_KINDS`, the project's one list of
equipment-kind roles.
"""
from __future__ import annotations

from mieruka.roles import ALWAYS_ON_KINDS, normalize_kind

FOLLOWS_PRODUCTION_RATIO = 0.85     # off-hours mean / production mean at or above this: does not follow production
MIN_HOURS_EACH = 24.0               # the ratio needs this many hours in production and outside it


def always_on_reason(always_on: bool | None, equipment_kind: str | None) -> str | None:
    """Why a channel is always-on from its configuration: "configured", "equipment_kind",
    or None (not known from the configuration; `always_on = false` also gives None)."""
    if always_on is not None:           # True/False, or 1/0 from a store
        return "configured" if always_on else None
    return "equipment_kind" if normalize_kind(equipment_kind) in ALWAYS_ON_KINDS else None


def follows_production(off_hours_mean_kw: float, production_mean_kw: float,
                       ratio: float = FOLLOWS_PRODUCTION_RATIO) -> bool:
    """False when the load outside production is at least `ratio` of the load in
    production (a load that does not drop when the factory stops)."""
    if production_mean_kw <= 0:
        return off_hours_mean_kw <= 0
    return off_hours_mean_kw < ratio * production_mean_kw
