"""Reduction target paths and this year's gap to them.

- SBT for SMEs (Scope 1+2): target(FY) = base × (1 − 0.042 × (FY − base FY)),
  never below zero; the base year is chosen by the firm (last year is allowed).
- Japan's NDC: −46 % by FY2030 against FY2013, taken as a straight line from
  FY2013 (target(FY) = base × (1 − 0.46 × (FY − 2013) / 17), flat at −46 % after).
"""
from __future__ import annotations

SBT_RATE_PER_YEAR = 0.042
JAPAN_BASE_FY, JAPAN_TARGET_FY, JAPAN_REDUCTION = 2013, 2030, 0.46


def sbt_target_t(base_t: float, base_fy: int, fy: int) -> float:
    return base_t * max(0.0, 1.0 - SBT_RATE_PER_YEAR * (fy - base_fy))


def japan_target_t(fy2013_t: float, fy: int) -> float:
    frac = min(1.0, max(0.0, (fy - JAPAN_BASE_FY) / (JAPAN_TARGET_FY - JAPAN_BASE_FY)))
    return fy2013_t * (1.0 - JAPAN_REDUCTION * frac)


def _row(name: str, label: str, base_fy: int, base_t: float, target_t: float, target_2030: float,
         actual_t: float, fy: int) -> dict:
    return {"name": name, "label": label, "base_fiscal_year": base_fy, "base_t_co2": base_t,
            "fiscal_year": fy, "target_t_co2": target_t, "actual_t_co2": actual_t,
            "gap_t_co2": actual_t - target_t, "on_track": actual_t <= target_t + 1e-12,
            "target_fy2030_t_co2": target_2030}


def target_rows(actual_t: float, fy: int, base_fy: int | None = None, base_t: float | None = None,
                fy2013_t: float | None = None) -> list[dict]:
    """The target rows this year's total is compared with (only those whose base is known).
    `gap_t_co2` > 0 means above the path (more cut needed)."""
    out = []
    if base_fy is not None and base_t is not None and base_fy <= fy:
        out.append(_row("sbt", "SBT (−4.2 %/year)", base_fy, base_t, sbt_target_t(base_t, base_fy, fy),
                        sbt_target_t(base_t, base_fy, 2030), actual_t, fy))
    if fy2013_t is not None:
        out.append(_row("japan_2030", "Japan −46 % by FY2030 vs FY2013", JAPAN_BASE_FY, fy2013_t,
                        japan_target_t(fy2013_t, fy), japan_target_t(fy2013_t, 2030), actual_t, fy))
    return out
