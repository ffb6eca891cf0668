"""Production calendar: day types with Japan's holidays, company holidays, shifts, fiscal years."""
import datetime as dt

import numpy as np
import pytest

from mieruka.calendar import (COMPANY_HOLIDAY, SATURDAY, SUNDAY_HOLIDAY, WORKDAY, SiteCalendar, fiscal_year,
                              fiscal_year_months, parse_shift_spec)
from mieruka.site import CalendarSection, CompanyHoliday


def jst(*args) -> np.datetime64:
    t = dt.datetime(*args, tzinfo=dt.timezone(dt.timedelta(hours=9)))
    return np.datetime64(int(t.timestamp() * 1000), "ms")


def make(**kw) -> SiteCalendar:
    return SiteCalendar.from_section(CalendarSection(**kw), "Asia/Tokyo")


def test_day_types_japan():
    cal = make(company_holidays=[CompanyHoliday(name="年末年始", **{"from": "12-29", "to": "01-03"})])
    times = np.array([jst(2026, 5, 4, 10), jst(2026, 5, 7, 10), jst(2026, 5, 9, 10), jst(2026, 5, 10, 10),
                      jst(2026, 12, 30, 10), jst(2027, 1, 4, 10)])
    _, types, prod = cal.classify(times)
    # 2026-05-04 みどりの日 (holiday), 05-07 Thursday, 05-09 Saturday, 05-10 Sunday, 12-30 年末年始, 2027-01-04 Monday
    assert types.tolist() == [SUNDAY_HOLIDAY, WORKDAY, SATURDAY, SUNDAY_HOLIDAY, COMPANY_HOLIDAY, WORKDAY]
    assert prod.tolist() == [False, True, False, False, False, True]


def test_shift_edges_and_lunch_in_local_time():
    cal = make()   # default mon-fri 08:00-12:00, 13:00-17:00
    times = np.array([jst(2026, 5, 7, 7, 59), jst(2026, 5, 7, 8, 0), jst(2026, 5, 7, 12, 30), jst(2026, 5, 7, 16, 59),
                      jst(2026, 5, 7, 17, 0)])
    assert cal.production_mask(times).tolist() == [False, True, False, True, False]


def test_night_shift_crossing_midnight_belongs_to_its_start_day():
    cal = make(shifts={"fri": ["22:00-06:00"]})
    # Friday 23:00 and Saturday 05:00 are in the Friday night shift; Saturday 23:00 is not
    times = np.array([jst(2026, 5, 8, 23), jst(2026, 5, 9, 5), jst(2026, 5, 9, 23), jst(2026, 5, 8, 5)])
    assert cal.production_mask(times).tolist() == [True, True, False, False]


def test_dst_zone_offsets_per_sample():
    cal = SiteCalendar(timezone="Europe/Berlin", holidays_country="DE")
    t = np.array(["2026-03-29T00:30", "2026-03-29T01:30"], dtype="datetime64[ms]")   # DST starts 01:00 UTC
    lt = cal.local(t)
    assert (lt.offset_ms // 3_600_000).tolist() == [1, 2]
    assert lt.minute.tolist() == [90, 210]


def test_fiscal_year():
    assert fiscal_year(dt.date(2026, 3, 31)) == 2025
    assert fiscal_year(dt.date(2026, 4, 1)) == 2026
    assert fiscal_year_months(2025)[0] == "2025-04" and fiscal_year_months(2025)[-1] == "2026-03"


def test_parse_shift_spec():
    s = parse_shift_spec("mon-fri 08:00-12:00,13:00-17:00; sat 08:00-12:00")
    assert s["wed"] == ["08:00-12:00", "13:00-17:00"] and s["sat"] == ["08:00-12:00"] and s["sun"] == []
    with pytest.raises(ValueError, match="not a weekday"):
        parse_shift_spec("funday 08:00-17:00")


def test_year_of_minutes_is_vectorised_and_consistent():
    cal = make()
    t = np.arange(np.datetime64("2026-01-01T00:00", "ms"), np.datetime64("2027-01-01T00:00", "ms"),
                  np.timedelta64(60_000, "ms"))
    _, types, prod = cal.classify(t)
    # 2026 in Japan: 16 national holidays on weekdays... count workdays from the library independently
    import holidays
    jp = holidays.country_holidays("JP", years=2026)
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(365)]
    workdays = sum(1 for d in days if d.weekday() < 5 and d not in jp)
    assert prod.sum() == workdays * 8 * 60


@pytest.mark.parametrize("zone, country, holiday", [
    ("Asia/Seoul", "KR", dt.date(2018, 9, 24)),          # Chuseok
    ("America/New_York", "US", dt.date(2024, 7, 4)),     # Independence Day
    ("Europe/Berlin", "DE", dt.date(2024, 10, 3)),       # Tag der Deutschen Einheit
    ("Asia/Tokyo", "JP", dt.date(2024, 11, 3)),          # 文化の日 (a Sunday: still a holiday)
    ("UTC", "JP", dt.date(2024, 11, 4)),                 # no country: the product's home calendar (振替休日)
])
def test_default_holidays_follow_the_site_zone(zone, country, holiday):
    """A plant in Seoul or New York without a [calendar] holidays line gets its own
    country's holidays; Japanese ones turned Chuseok into a workday gap."""
    cal = SiteCalendar.from_section(CalendarSection(), timezone=zone)
    assert cal.holidays == country and cal.describe()["holidays"] == country
    day = (holiday - dt.date(1970, 1, 1)).days
    assert cal.day_types(day, day)[0] == SUNDAY_HOLIDAY
    # a configured country wins over the zone
    assert SiteCalendar.from_section(CalendarSection(holidays="none"), timezone=zone).holidays == "none"
    assert SiteCalendar.from_section(CalendarSection(holidays="kr"), timezone="Europe/Berlin").holidays == "KR"
