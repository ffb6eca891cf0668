"""Building findings and measures with their explanations in both languages."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from mieruka.models import Finding

from . import savings as sav
from .texts import MEASURE_NAMES, explain


def local_dt(ms: int, tz) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000.0, dt.timezone.utc).astimezone(tz)


@dataclass
class Collector:
    """Findings (with their texts in ja and en) and measures as the detectors produce them."""

    tz: object
    lang: str
    assumptions: sav.SavingsAssumptions
    findings: list[Finding] = field(default_factory=list)
    texts: list[dict[str, str]] = field(default_factory=list)
    measures: list[sav.Measure] = field(default_factory=list)

    def finding(self, kind: str, channel: str, start_ms: int, end_ms: int, energy_kwh: float, metrics: dict,
                annual: float | None = None, template: str | None = None, **extra) -> Finding:
        tx = {lg: explain(kind, channel, metrics, energy_kwh, lg, template, **extra) for lg in ("en", "ja")}
        f = Finding(kind, channel, local_dt(start_ms, self.tz), local_dt(end_ms, self.tz), float(energy_kwh),
                    tx[self.lang], metrics, annual_energy_kwh=annual)
        self.findings.append(f)
        self.texts.append(tx)
        return f

    def measure(self, mid: str, target: str, kwh: float, basis: str, investment: float | None = None,
                kind: str = "operation") -> sav.Measure:
        en, ja = MEASURE_NAMES[mid]
        inv = self.assumptions.investment_jpy.get(mid) if investment is None else investment
        m = sav.Measure(mid, ja if self.lang == "ja" else en, en, ja, target, float(kwh), basis, inv, kind=kind)
        self.measures.append(m)
        return m
