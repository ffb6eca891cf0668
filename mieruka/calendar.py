"""The production calendar: time zone, shifts, national and company holidays.

Turns an array of UTC times into local day numbers, day types and a
"production or not" mask, vectorised: the per-day and per-hour work is done on
the (few hundred) distinct days and hours, then spread over the samples by
indexing, so a year of 1-second data costs a handful of array passes.

Day types (`DAY_TYPES`): workday, saturday, sunday_holiday (Sundays and
national holidays), company_holiday.
"""
from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .site import WEEKDAYS, CalendarSection, SiteConfig

DAY_TYPES = ("workday", "saturday", "sunday_holiday", "company_holiday")
WORKDAY, SATURDAY, SUNDAY_HOLIDAY, COMPANY_HOLIDAY = range(4)
_EPOCH = dt.date(1970, 1, 1)
_MS_PER_DAY = 86_400_000
_MS_PER_HOUR = 3_600_000


@functools.lru_cache(maxsize=64)
def holidays_of_zone(zone: str) -> str:
    """The national holiday calendar of a site in `zone`: its country when the
    holidays library has it, else JP (the product's home; UTC and fixed offsets)."""
    import holidays as hol
    from .timezones import country_of_zone
    c = country_of_zone(zone)
    return c if c and c in hol.list_supported_countries() else "JP"


def fiscal_year(date: dt.date | dt.datetime) -> int:
    """Japanese fiscal year (April to March): FY2025 runs 2025-04-01 .. 2026-03-31."""
    return date.year if date.month >= 4 else date.year - 1


def fiscal_year_months(fy: int) -> list[str]:
    """The twelve months of fiscal year `fy` as YYYY-MM, April first."""
    return [f"{fy + (m < 4)}-{m:02d}" for m in (4, 5, 6, 7, 8, 9, 10, 11, 12, 1, 2, 3)]


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def parse_shift_spec(spec: str) -> dict[str, list[str]]:
    """Parse the CLI's `--shift "mon-fri 08:00-17:00; sat 08:00-12:00"` into the
    config's per-weekday lists.  Several ranges for a day: `mon-fri 08:00-12:00,13:00-17:00`."""
    out: dict[str, list[str]] = {d: [] for d in WEEKDAYS}
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        try:
            days, ranges = part.split(None, 1)
        except ValueError:
            raise ValueError(f"shift {part!r}: expected 'DAYS HH:MM-HH:MM', e.g. 'mon-fri 08:00-17:00'") from None
        sel: list[str] = []
        for d in days.lower().split(","):
            if "-" in d:
                a, b = d.split("-", 1)
                if a[:3] not in WEEKDAYS or b[:3] not in WEEKDAYS:
                    raise ValueError(f"shift {part!r}: {d!r} is not a weekday range like mon-fri")
                i, j = WEEKDAYS.index(a[:3]), WEEKDAYS.index(b[:3])
                sel += [WEEKDAYS[k % 7] for k in range(i, j + 1 if j >= i else j + 8)]
            elif d[:3] in WEEKDAYS:
                sel.append(d[:3])
            else:
                raise ValueError(f"shift {part!r}: {d!r} is not a weekday")
        for d in sel:
            out[d] += [r.strip() for r in ranges.split(",")]
    CalendarSection(shifts=out)  # validates the HH:MM ranges with the config's rules
    return out


@dataclass
class LocalTime:
    """Local-time decomposition of a UTC time array (all int arrays, one per sample)."""

    day: np.ndarray          # local day number (days since 1970-01-01, local)
    minute: np.ndarray       # minute of the local day, 0..1439
    weekday: np.ndarray      # 0 = Monday
    offset_ms: np.ndarray    # UTC offset per sample


@dataclass
class SiteCalendar:
    timezone: str = "Asia/Tokyo"
    holidays_country: str = "auto"        # "auto": the country of `timezone` (JP when it has none)
    subdivision: str | None = None
    shifts: dict[str, list[str]] = field(default_factory=lambda: CalendarSection().shifts)
    company_holidays: list = field(default_factory=list)      # CompanyHoliday models
    workdays: list[dt.date] = field(default_factory=list)
    # False: the shifts are the default, nobody stated them; the analysis then reads the
    # production hours off the site's load (analytics/shifts.py)
    shifts_configured: bool = True

    @classmethod
    def from_config(cls, cfg: SiteConfig) -> "SiteCalendar":
        c = cfg.calendar
        return cls(cfg.site.timezone, c.holidays, c.subdivision, c.shifts, list(c.company_holidays), list(c.workdays),
                   "shifts" in c.model_fields_set)

    @classmethod
    def from_section(cls, section: CalendarSection, timezone: str = "Asia/Tokyo") -> "SiteCalendar":
        c = section
        return cls(timezone, c.holidays, c.subdivision, c.shifts, list(c.company_holidays), list(c.workdays),
                   "shifts" in c.model_fields_set)

    def describe(self) -> dict:
        """What the calendar is, for reports that must say which calendar they used."""
        return {
            "timezone": self.timezone, "holidays": self.holidays, "subdivision": self.subdivision,
            "shifts": self.shifts,
            "company_holidays": [h.model_dump(by_alias=True, exclude_none=True, mode="json") for h in self.company_holidays],
            "workdays": [d.isoformat() for d in self.workdays],
        }

    @property
    def holidays(self) -> str:
        """The holiday calendar used: the configured country, or with "auto" the
        country of the site's zone when the holidays library knows it (a plant in
        Asia/Seoul keeps Korean holidays, not Japanese ones), else JP."""
        if self.holidays_country != "auto":
            return self.holidays_country
        return holidays_of_zone(self.timezone)

    @cached_property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    # ---------------------------------------------------------------- time
    def local(self, times_utc: np.ndarray) -> LocalTime:
        """Decompose UTC times (datetime64) into local day, minute and weekday."""
        t = np.asarray(times_utc).astype("datetime64[ms]").astype(np.int64)
        if t.size == 0:
            z = np.empty(0, np.int64)
            return LocalTime(z, z, z, z)
        offset = self._offsets_ms(t)
        local_ms = t + offset
        day = np.floor_divide(local_ms, _MS_PER_DAY)
        minute = np.floor_divide(local_ms - day * _MS_PER_DAY, 60_000)
        weekday = (day + 3) % 7       # 1970-01-01 was a Thursday
        return LocalTime(day, minute, weekday, offset)

    def _offsets_ms(self, t_ms: np.ndarray) -> np.ndarray:
        # Offsets only change on whole hours in every zone in use, so one table
        # entry per UTC hour of the span is exact and cheap (8,760 a year).
        h0, h1 = int(t_ms.min()) // _MS_PER_HOUR, int(t_ms.max()) // _MS_PER_HOUR
        probe = [dt.datetime.fromtimestamp(h0 * 3600, self.tz).utcoffset(),
                 dt.datetime.fromtimestamp(h1 * 3600, self.tz).utcoffset()]
        if probe[0] == probe[1] and self._fixed_offset():
            return np.full(t_ms.shape, int(probe[0].total_seconds() * 1000), np.int64)
        table = np.array([dt.datetime.fromtimestamp(h * 3600, self.tz).utcoffset().total_seconds() * 1000
                          for h in range(h0, h1 + 1)], dtype=np.int64)
        return table[np.floor_divide(t_ms, _MS_PER_HOUR) - h0]

    def _fixed_offset(self) -> bool:
        # Zones without DST transitions in the last decades (Asia/Tokyo, Asia/Seoul, UTC).
        jan = dt.datetime(2024, 1, 15, tzinfo=self.tz).utcoffset()
        jul = dt.datetime(2024, 7, 15, tzinfo=self.tz).utcoffset()
        return jan == jul

    def to_local_datetime(self, t: np.datetime64 | dt.datetime) -> dt.datetime:
        if isinstance(t, np.datetime64):
            ms = int(t.astype("datetime64[ms]").astype(np.int64))
            t = dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc)
        return t.astimezone(self.tz)

    @staticmethod
    def day_to_date(day: int) -> dt.date:
        return _EPOCH + dt.timedelta(days=int(day))

    # ---------------------------------------------------------------- days
    def _holiday_set(self, years: range) -> dict[dt.date, str]:
        country = self.holidays
        if country == "none":
            return {}
        import holidays as hol
        return dict(hol.country_holidays(country, subdiv=self.subdivision, years=list(years)))

    def day_types(self, first_day: int, last_day: int) -> np.ndarray:
        """Day type code (see DAY_TYPES) for each local day number in [first, last]."""
        dates = [self.day_to_date(d) for d in range(first_day, last_day + 1)]
        if not dates:
            return np.empty(0, np.int8)
        national = self._holiday_set(range(dates[0].year, dates[-1].year + 1))
        company = self._company_dates(dates[0].year, dates[-1].year)
        worked = set(self.workdays)
        out = np.empty(len(dates), np.int8)
        for i, d in enumerate(dates):
            if d in worked:
                out[i] = SATURDAY if d.weekday() == 5 else WORKDAY
            elif d in company:
                out[i] = COMPANY_HOLIDAY
            elif d in national or d.weekday() == 6:
                out[i] = SUNDAY_HOLIDAY
            elif d.weekday() == 5:
                out[i] = SATURDAY
            else:
                out[i] = WORKDAY
        return out

    def holiday_names(self, first: dt.date, last: dt.date) -> dict[dt.date, str]:
        names = self._holiday_set(range(first.year, last.year + 1))
        for d, n in self._company_dates(first.year, last.year).items():
            names[d] = n
        return {d: n for d, n in names.items() if first <= d <= last}

    def _company_dates(self, y0: int, y1: int) -> dict[dt.date, str]:
        out: dict[dt.date, str] = {}
        for h in self.company_holidays:
            if h.date is not None:
                out[h.date] = h.name
                continue
            if len(h.from_) == 10:   # dated range
                a, b = dt.date.fromisoformat(h.from_), dt.date.fromisoformat(h.to)
                spans = [(a, b)]
            else:                    # yearly MM-DD range, may cross the new year
                spans = []
                for y in range(y0 - 1, y1 + 1):
                    a = dt.date(y, *map(int, h.from_.split("-")))
                    b = dt.date(y, *map(int, h.to.split("-")))
                    if b < a:
                        b = dt.date(y + 1, *map(int, h.to.split("-")))
                    spans.append((a, b))
            for a, b in spans:
                for k in range((b - a).days + 1):
                    out[a + dt.timedelta(days=k)] = h.name
        return out

    # ------------------------------------------------------------ production
    @cached_property
    def _shift_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """Two 7 x 1440 boolean tables: minutes in production that belong to a
        shift starting that weekday (same day), and the part of a shift that
        crosses midnight into the next day (indexed by the start weekday)."""
        same = np.zeros((7, 1440), bool)
        spill = np.zeros((7, 1440), bool)
        for wd, day in enumerate(WEEKDAYS):
            for r in self.shifts.get(day, []):
                a, b = (_minutes(x) for x in r.split("-"))
                if b > a:
                    same[wd, a:b] = True
                else:                  # crosses midnight, e.g. 22:00-06:00
                    same[wd, a:] = True
                    spill[wd, :b] = True
        return same, spill

    def classify(self, times_utc: np.ndarray) -> tuple[LocalTime, np.ndarray, np.ndarray]:
        """For each sample: local time parts, day type code and production mask."""
        lt = self.local(times_utc)
        if lt.day.size == 0:
            return lt, np.empty(0, np.int8), np.empty(0, bool)
        d0, d1 = int(lt.day.min()) - 1, int(lt.day.max())
        types = self.day_types(d0, d1)
        day_type = types[lt.day - d0]
        prev_type = types[lt.day - 1 - d0]
        same, spill = self._shift_tables
        works = np.isin(types, (WORKDAY, SATURDAY))
        production = (same[lt.weekday, lt.minute] & works[lt.day - d0]) | \
                     (spill[(lt.weekday - 1) % 7, lt.minute] & np.isin(prev_type, (WORKDAY, SATURDAY)))
        return lt, day_type, production

    def production_mask(self, times_utc: np.ndarray) -> np.ndarray:
        return self.classify(times_utc)[2]

    def production_minutes_per_week(self) -> int:
        same, spill = self._shift_tables
        return int(same.sum() + spill.sum())
