"""Every finding kind the detectors emit has a Japanese and an English label in the
report and on the dashboard (`air_leak_growth` and `base_load` showed as raw ids)."""
from __future__ import annotations

import re
from pathlib import Path

from mieruka.analytics.texts import TEMPLATES   # the detectors' texts: one per finding kind
from mieruka.reports.i18n import KINDS

ROOT = Path(__file__).resolve().parents[1]
# text variants of one kind, not kinds of their own
VARIANTS = {"standby_total", "baseline_gap_episode"}

def _kinds() -> set[str]:
    return set(TEMPLATES) - VARIANTS

def test_report_labels_every_kind():
    for k in _kinds():
        assert KINDS.get(k, {}).keys() >= {"ja", "en"}, k

def test_dashboard_labels_every_kind_in_both_languages():
    js = (ROOT / "api/static/dashboard.js").read_text("utf-8")
    ja = js[js.index("  ja: {"):js.index("  en: {")]
    en = js[js.index("  en: {"):]
    for k in _kinds():
        assert re.search(rf"\b{k}: \"", ja), ("ja", k)
        assert re.search(rf"\b{k}: \"", en), ("en", k)
