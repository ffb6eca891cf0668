"""Explanations are read by energy managers: words, never internal ids."""
from __future__ import annotations

from mieruka.analytics.texts import explain


def test_episode_over_several_day_types_names_them_in_words():
    m = {"date": "2018-01-17", "last_date": "2018-01-27", "days": 11, "hours": 91, "excess_kwh": 13_550.0,
         "day_type": "saturday+sunday_holiday+workday", "pattern": "night_high"}
    ja = explain("baseline_gap", "plant", m, 13_550.0, "ja", template="baseline_gap_episode")
    en = explain("baseline_gap", "plant", m, 13_550.0, "en", template="baseline_gap_episode")
    assert "土曜・日曜・祝日・平日" in ja
    assert "Saturday, Sunday/holiday, workday" in en
    for text in (ja, en):
        assert "sunday_holiday" not in text and "+" not in text
    one = explain("baseline_gap", "plant", dict(m, day_type="company_holiday"), 1.0, "en")
    assert "(company holiday)" in one and "usual company holiday profile" in one
