"""Which energy rate of the bill applies when: one table over season × weekday ×
holiday × minute of the day, built once from `[bill] energy_rates` (first match
wins).  Used to validate the config (every minute priced) and by the bill."""
from __future__ import annotations

import numpy as np

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SEASONS = ("summer", "other")


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def rate_table(bill) -> np.ndarray:
    """int array [season (0 summer, 1 other), weekday (0 Monday), holiday (0/1), minute]
    -> index into `bill.energy_rates`, -1 where no rate matches."""
    table = np.full((2, 7, 2, 1440), -1, np.int64)
    minute = np.arange(1440)
    for i in range(len(bill.energy_rates) - 1, -1, -1):     # later rates first, earlier overwrite: first wins
        r = bill.energy_rates[i]
        if r.hours is None:
            in_hours = np.ones(1440, bool)
        else:
            a, b = (_minutes(x) for x in r.hours.split("-"))
            b = 1440 if b == 1440 else b
            in_hours = (minute >= a) & (minute < b) if a < b else (minute >= a) | (minute < b)
        for s, season in enumerate(SEASONS):
            if r.season not in ("all", season):
                continue
            for wd, name in enumerate(WEEKDAYS):
                if name not in r.days:
                    continue
                for hol in (0, 1):
                    if hol and not r.holidays_too:
                        continue
                    table[s, wd, hol, in_hours] = i
    return table


def unpriced_slot(bill) -> str | None:
    """A readable description of the first minute no rate covers, or None."""
    table = rate_table(bill)
    if (table >= 0).all():
        return None
    s, wd, hol, m = (int(x[0]) for x in np.nonzero(table < 0))
    return (f"{SEASONS[s]} {WEEKDAYS[wd]}{' holidays' if hol else ''} {m // 60:02d}:{m % 60:02d}")
