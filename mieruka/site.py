"""The site config: one TOML file describing a factory, validated at start.

Every part of mieruka (collectors, simulators, analytics, API) reads the same
:class:`SiteConfig`.  :func:`load_site` parses the file, expands `${VAR}` /
`${VAR:-default}` from the environment, validates it with pydantic and turns
any problem into a :class:`~mieruka.errors.ConfigError` naming the file, the
key and what is wrong.

Japanese key names are accepted beside English ones where people write them
(`工程` for `process`, `設備` for `equipment`).
"""
from __future__ import annotations

import datetime as dt
import difflib
import re
import tomllib
import types
import unicodedata
import zoneinfo
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (AliasChoices, BaseModel, ConfigDict, Field, ValidationError,
                      field_validator, model_validator)

from .energy import check_unit_fits, normalize_energy
from .envsubst import MissingVariable, expand
from .errors import ConfigError
from .ids import validate_channel_id
from .models import ChannelInfo
from .quantities import QUANTITIES, parse_quantity
from .units import parse_unit

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM_RANGE = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


class _Model(BaseModel):
    # inf/nan in a config (1e400 parses as inf) would price or bound everything as inf
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=False,
                              protected_namespaces=(), allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _halfwidth_numbers(cls, data: Any) -> Any:
        """A number written as a string with full-width digits (`"１２０"`, `"０．８"`, an IME
        left on) is read like its half-width form, as pydantic reads `"120"`."""
        if not isinstance(data, dict):
            return data
        out = None
        for key, value in data.items():
            if isinstance(value, str) and _FULLWIDTH_DIGIT.search(value) and _numeric_field(cls, key):
                out = dict(data) if out is None else out
                out[key] = unicodedata.normalize("NFKC", value).strip()
        return data if out is None else out


_FULLWIDTH_DIGIT = re.compile(r"[\uff10-\uff19]")


def _numeric_field(model: type[BaseModel], key: str) -> bool:
    f = model.model_fields.get(key)
    if f is None:
        for cand in model.model_fields.values():
            va = cand.validation_alias
            if isinstance(va, AliasChoices) and key in va.choices:
                f = cand
                break
    if f is None:
        return False
    opts = _options(f.annotation)
    return bool(opts) and all(o in (int, float) for o in opts)


def check_quantity(v: str) -> str:
    """Pydantic validator for a `quantity` key (channels, MQTT field mappings): the
    canonical name, or a Japanese/English alias (`電力`, `流量`) as import mappings
    accept, stored as the canonical name."""
    if not isinstance(v, str):
        raise ValueError(f"unknown quantity {v!r}; one of: {', '.join(QUANTITIES)}")
    return parse_quantity(v)


def check_http_url(v: str) -> str:
    """An http(s) URL a client library can use: scheme, host, a port in 1..65535, no
    spaces (a URL that only fails at the first alarm, years later, is refused at start).
    Messages show the URL up to its host only: a webhook's path is its secret."""
    import urllib.parse
    shown = repr("/".join(v.split("/")[:3]) + ("/…" if v.count("/") > 2 else "")) if isinstance(v, str) else repr(v)
    if not isinstance(v, str) or not re.match(r"^https?://[^\s/]+", v) or re.search(r"\s", v):
        raise ValueError(f"{shown} is not an http:// or https:// URL (without spaces)")
    u = urllib.parse.urlsplit(v)
    try:
        port = u.port
    except ValueError:
        raise ValueError(f"{shown}: the port is not a number in 1..65535") from None
    if not u.hostname:
        raise ValueError(f"{shown}: no host")
    if port == 0:
        raise ValueError(f"{shown}: port 0")
    return v


def _check_id(v: str) -> str:
    """Channel, meter and contract ids: the one id rule of mieruka.ids."""
    return validate_channel_id(v)


# --------------------------------------------------------------------------- site
class SiteSection(_Model):
    name: str = Field(min_length=1)
    timezone: str = "Asia/Tokyo"
    language: Literal["ja", "en"] = "ja"
    data_dir: Path = Path("./mieruka-data")

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (use an IANA name such as Asia/Tokyo)") from None
        return v


# ----------------------------------------------------------------------- calendar
class CompanyHoliday(_Model):
    """A company holiday: one `date`, or a yearly range `from`/`to` given as MM-DD
    (a range may cross the new year, like 年末年始 12-29..01-03), or a dated range."""

    name: str = "company holiday"
    date: dt.date | None = None
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None

    @model_validator(mode="after")
    def _one_form(self) -> "CompanyHoliday":
        if (self.date is None) == (self.from_ is None):
            raise ValueError("give either `date` or `from` and `to`")
        if self.from_ is not None:
            if self.to is None:
                raise ValueError("`from` needs `to`")
            for v in (self.from_, self.to):
                if not re.match(r"^(\d{4}-)?\d{2}-\d{2}$", v):
                    raise ValueError(f"{v!r} is not MM-DD or YYYY-MM-DD")
            if (len(self.from_) == 5) != (len(self.to) == 5):
                raise ValueError("`from` and `to` must both be MM-DD or both YYYY-MM-DD")
        return self


class CalendarSection(_Model):
    holidays: str = Field(default="auto", description="country code for the `holidays` library, 'none', or "
                                                      "'auto' (default): the country of the site's time zone")
    subdivision: str | None = None
    shifts: dict[str, list[str]] = Field(default_factory=lambda: {
        d: (["08:00-12:00", "13:00-17:00"] if d not in ("sat", "sun") else []) for d in WEEKDAYS})
    company_holidays: list[CompanyHoliday] = Field(default_factory=list)
    workdays: list[dt.date] = Field(default_factory=list, description="dates worked although holidays")

    @field_validator("holidays")
    @classmethod
    def _country(cls, v: str) -> str:
        if v.lower() in ("none", "auto"):
            return v.lower()
        import holidays as hol
        if v.upper() not in hol.list_supported_countries():
            raise ValueError(f"{v!r} is not a country code the holidays library knows (e.g. JP, KR, US, DE)")
        return v.upper()

    @field_validator("shifts")
    @classmethod
    def _shifts(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        out = {d: [] for d in WEEKDAYS}
        for day, ranges in v.items():
            key = day.lower()[:3]
            if key not in out:
                raise ValueError(f"{day!r} is not a weekday (mon..sun)")
            for r in ranges:
                m = _HHMM_RANGE.match(r)
                if not m:
                    raise ValueError(f"{day}: {r!r} is not HH:MM-HH:MM")
                if r.split("-")[0] == r.split("-")[1]:
                    raise ValueError(f"{day}: {r!r} is empty")
            out[key] = list(ranges)
        return out


# ------------------------------------------------------------------------ tariffs
class TimeOfUseBand(_Model):
    name: str
    hours: str = Field(description="HH:MM-HH:MM in site time, may cross midnight")
    days: list[str] = Field(default_factory=lambda: list(WEEKDAYS))
    holidays_too: bool = True
    electricity_jpy_per_kwh: float = Field(ge=0)

    @field_validator("hours")
    @classmethod
    def _hours(cls, v: str) -> str:
        if not _HHMM_RANGE.match(v):
            raise ValueError(f"{v!r} is not HH:MM-HH:MM")
        return v


class FuelPrice(_Model):
    jpy_per_unit: float = Field(ge=0)
    unit: str


class TariffsSection(_Model):
    electricity_jpy_per_kwh: float = Field(default=25.0, ge=0)
    gas_jpy_per_m3: float | None = Field(default=None, ge=0)
    fuel_jpy_per_l: float | None = Field(default=None, ge=0)
    prices: dict[str, FuelPrice] = Field(default_factory=dict,
                                         description="energy name -> price per unit, e.g. kerosene = {jpy_per_unit=110, unit='L'}")
    time_of_use: list[TimeOfUseBand] = Field(default_factory=list)

    @field_validator("prices")
    @classmethod
    def _price_energies(cls, v: dict[str, FuelPrice]) -> dict[str, FuelPrice]:
        for name, p in v.items():
            try:
                check_unit_fits(normalize_energy(name), parse_unit(p.unit))
            except ValueError as e:
                raise ValueError(f"{name}: {e}") from None
        return v


# ---------------------------------------------------------------------- contracts
class Contract(_Model):
    """An electricity (or gas) supply contract: whose factor applies and for which year."""

    id: str
    energy: str = "electricity"
    retailer: str | None = None
    menu: str = "company_wide"
    results_fiscal_year: int | None = Field(default=None, description="fiscal year of the factor list entry to use")
    meters: list[str] = Field(default_factory=list, description="meter ids on this contract (empty: all)")
    _check = field_validator("id")(_check_id)
    _energy = field_validator("energy")(normalize_energy)


class CO2Section(_Model):
    factor_set: str = "shk_2023"
    factor_files: list[Path] = Field(default_factory=list, description="extra factor files (user's own)")
    base_fiscal_year: int | None = None
    base_year_t_co2: float | None = Field(default=None, ge=0)
    production_unit: str | None = None
    scope2_method: Literal["market", "location"] = Field(
        default="market", description="which Scope 2 figure is the headline total (both are always shown)")
    fy2013_t_co2: float | None = Field(default=None, ge=0, description="FY2013 emissions, for Japan's -46% path")
    bills_file: Path | None = Field(default=None, description="CSV of bills (the `mieruka co2` format) for the API's "
                                                             "CO2 sheet; relative to the config file")


class SavingsSection(_Model):
    """Assumptions of the savings plan (see analytics/savings.py for the rules of
    thumb); any key left out keeps the shipped default.  `investment_jpy` gives a
    measure's investment, so that its payback years are the factory's own."""

    pressure_power_per_01mpa: float | None = Field(default=None, ge=0, le=0.5)
    pressure_target_mpa: float | None = Field(default=None, gt=0)
    pressure_assumed_mpa: float | None = Field(default=None, gt=0)
    vsd_floor_of_full_load: float | None = Field(default=None, ge=0, le=1)
    leak_target_share_of_capacity: float | None = Field(default=None, ge=0, le=1)
    leak_target_share_of_today: float | None = Field(default=None, ge=0, le=1)
    pulse_blow_share_of_air: float | None = Field(default=None, ge=0, le=1)
    pulse_blow_air_saving: float | None = Field(default=None, ge=0, le=1)
    vsd_investment_jpy_per_kw: float | None = Field(default=None, ge=0)
    base_load_reduction_share: float | None = Field(default=None, ge=0, le=1, description="share of always-on base "
                                                    "load the site expects to cut (default 0: no saving claimed)")
    investment_jpy: dict[Literal["standby_off", "fix_baseline_gaps", "compressor_night_stop",
                                 "pressure_setpoint", "leak_repair", "pulse_blow", "review_base_load", "peak_cut"],
                            float] = Field(default_factory=dict)

    @field_validator("investment_jpy")
    @classmethod
    def _non_negative(cls, v: dict[str, float]) -> dict[str, float]:
        for k, x in v.items():
            if x < 0:
                raise ValueError(f"{k}: an investment cannot be negative")
        return v


# ------------------------------------------------------------------- demand, bill
class DemandSection(_Model):
    """30-minute demand (デマンド): which channel, the period, the contract and the
    target the alarm stages are fractions of (see analytics/demand.py)."""

    channel: str | None = Field(default=None, description="incomer channel (power or energy counter); "
                                                         "default: the site-total channel")
    period_min: int = Field(default=30, ge=1, le=1440, validation_alias=AliasChoices("period_min", "デマンド時限"))
    contract_kw: float | None = Field(default=None, gt=0, validation_alias=AliasChoices("contract_kw", "契約電力"))
    target_kw: float | None = Field(default=None, gt=0, validation_alias=AliasChoices("target_kw", "目標電力"))
    alarm_stages: list[float] = Field(default_factory=lambda: [0.8, 0.9, 1.0],
                                      description="fractions of target_kw, ascending: warning, alarm, limit")
    top_peaks: int = Field(default=10, ge=1, le=1000)

    @field_validator("period_min")
    @classmethod
    def _divides_day(cls, v: int) -> int:
        if 1440 % v:
            raise ValueError(f"{v} does not divide a day into whole periods (use e.g. 15, 30 or 60)")
        return v

    @field_validator("alarm_stages")
    @classmethod
    def _stages(cls, v: list[float]) -> list[float]:
        if not 1 <= len(v) <= 5:
            raise ValueError("give 1 to 5 stages, e.g. [0.8, 0.9, 1.0]")
        if any(not 0 < x <= 2 for x in v):
            raise ValueError("each stage is a fraction of target_kw in (0, 2]")
        if any(b <= a for a, b in zip(v, v[1:])):
            raise ValueError("stages must rise, e.g. [0.8, 0.9, 1.0]")
        return v


# ----------------------------------------------------------- alarms, notifications
NOTIFY_EVENTS = ("demand_alarm", "demand_clear", "meter_offline", "meter_back", "buffer_dropping",
                 "disk_low", "findings_digest", "test")


class AlarmsSection(_Model):
    """When the collector raises an event (collector/alarms.py) and how often a still
    standing one may be repeated (mieruka/service/notify.py); see docs/alarms.md."""

    demand_min_elapsed_s: float = Field(default=120.0, ge=0, le=3600,
                                        description="no demand alarm in a period's first seconds (the "
                                                    "prediction is a guess there)")
    demand_clear_margin: float = Field(default=0.05, ge=0, le=0.5,
                                       description="a stage ends only when the prediction is this share of "
                                                   "the target below the stage's threshold (hysteresis)")
    offline_after_s: float = Field(default=60.0, gt=0, description="no good reading this long -> meter_offline")
    disk_low_pct: float = Field(default=5.0, ge=0, le=100, description="free space of data_dir below this % -> "
                                                                         "disk_low (0: off)")
    disk_low_mb: float = Field(default=200.0, ge=0, description="... or below this many MB (0: off)")
    repeat_after_min: float = Field(default=60.0, ge=0, description="the same standing event is sent again "
                                                                     "at most this often (0: never)")
    check_interval_s: float = Field(default=1.0, gt=0, le=60)
    digest_at: str | None = Field(default="08:00", description="local HH:MM of the daily findings_digest "
                                                               '("off": no digest)')
    queue_size: int = Field(default=1000, ge=1, le=1_000_000, description="events waiting for delivery; "
                                                                          "beyond it the oldest are dropped")
    retry_for_s: float = Field(default=600.0, gt=0, description="a failing target is retried with back-off "
                                                                "this long, then the event is given up")

    @field_validator("digest_at")
    @classmethod
    def _hhmm(cls, v: str | None) -> str | None:
        if v is not None and v.strip().lower() in ("", "off", "none"):
            return None
        if v is not None and not re.match(r"^([01]\d|2[0-3]):[0-5]\d$", v):
            raise ValueError(f"{v!r} is not a time HH:MM")
        return v


class _NotifyBase(_Model):
    name: str | None = Field(default=None, description="shown in logs, metrics and the status")
    events: list[str] = Field(default_factory=lambda: list(NOTIFY_EVENTS),
                              description="which events this target gets (default: all)")
    min_severity: Literal["info", "warning", "critical"] = "info"
    language: Literal["ja", "en", "both"] = "both"

    @field_validator("events")
    @classmethod
    def _events(cls, v: list[str]) -> list[str]:
        bad = [e for e in v if e not in NOTIFY_EVENTS]
        if bad:
            raise ValueError(f"unknown event {bad[0]!r}; one of: {', '.join(NOTIFY_EVENTS)}")
        return v


class WebhookTarget(_NotifyBase):
    """POST of the event's JSON (or of `template` rendered over it) to an incoming webhook."""

    type: Literal["webhook"]
    url: str = Field(min_length=1)
    template: str | None = Field(default=None, description="body template (jinja2, sandboxed) over the payload; "
                                                           "none: the payload JSON itself")
    template_file: Path | None = Field(default=None, description="the template in a file (relative to the config)")
    headers: dict[str, str] = Field(default_factory=dict)
    content_type: str = "application/json"
    timeout_s: float = Field(default=10.0, gt=0, le=120)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return check_http_url(v)

    @model_validator(mode="after")
    def _one_template(self) -> "WebhookTarget":
        if self.template is not None and self.template_file is not None:
            raise ValueError("give template or template_file, not both")
        return self


class SmtpTarget(_NotifyBase):
    """Mail through an SMTP server, STARTTLS by default; the password from the environment."""

    type: Literal["smtp"]
    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = Field(default=True, description="false only for a relay on the gateway itself")
    ca_file: Path | None = Field(default=None, description="CA to trust for the server's certificate "
                                                           "(default: the system's)")
    username: str | None = None
    password_env: str | None = Field(default=None, description="name of the environment variable "
                                                               "holding the password")
    sender: str = Field(min_length=3, validation_alias=AliasChoices("sender", "from"))
    to: list[str] = Field(min_length=1)
    subject_prefix: str = "[mieruka]"
    timeout_s: float = Field(default=20.0, gt=0, le=300)

    @model_validator(mode="after")
    def _auth(self) -> "SmtpTarget":
        if self.password_env and not self.username:
            raise ValueError("password_env needs username")
        if self.username and not self.starttls and self.host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("a password is sent only over STARTTLS (starttls = true)")
        return self


NotifyTarget = Annotated[Union[WebhookTarget, SmtpTarget], Field(discriminator="type")]


class EnergyRate(_Model):
    """One 電力量料金 rate: first match wins (season, days, hours in site time)."""

    band: str = Field(default="all", min_length=1, description="name shown on the bill, e.g. day, night")
    season: Literal["all", "summer", "other"] = "all"
    hours: str | None = Field(default=None, description="HH:MM-HH:MM in site time, may cross midnight; none: all day")
    days: list[str] = Field(default_factory=lambda: list(WEEKDAYS))
    holidays_too: bool = Field(default=True, description="false: national/company holidays are left to a later rate")
    jpy_per_kwh: float = Field(ge=0)

    @field_validator("hours")
    @classmethod
    def _hours(cls, v: str | None) -> str | None:
        if v is not None and (not _HHMM_RANGE.match(v) or v.split("-")[0] == v.split("-")[1]):
            raise ValueError(f"{v!r} is not a non-empty HH:MM-HH:MM")
        return v

    @field_validator("days")
    @classmethod
    def _days(cls, v: list[str]) -> list[str]:
        out = []
        for d in v:
            if d.lower()[:3] not in WEEKDAYS:
                raise ValueError(f"{d!r} is not a weekday (mon..sun)")
            out.append(d.lower()[:3])
        return out


class BillSection(_Model):
    """The electricity contract as the bill computes it (高圧 実量制): 基本料金 from
    契約電力 and the power factor, 電力量料金 by season and time band, 燃料費調整額 per
    month, 再エネ賦課金 per fiscal year, consumption tax (see analytics/bill.py)."""

    basic_jpy_per_kw: float = Field(ge=0, validation_alias=AliasChoices("basic_jpy_per_kw", "基本料金単価"))
    energy_rates: list[EnergyRate] = Field(default_factory=list, description="empty: [tariffs] electricity price")
    summer_months: list[int] = Field(default_factory=lambda: [7, 8, 9])
    fuel_adjustment_jpy_per_kwh: dict[str, float] = Field(
        default_factory=dict, validation_alias=AliasChoices("fuel_adjustment_jpy_per_kwh", "燃料費調整単価"),
        description='"YYYY-MM" -> 円/kWh (may be negative)')
    renewable_levy_jpy_per_kwh: dict[str, float] = Field(
        default_factory=dict, validation_alias=AliasChoices("renewable_levy_jpy_per_kwh", "再エネ賦課金単価"),
        description='fiscal year ("2026" or "FY2026", April to March) -> 円/kWh')
    power_factor_pct: float = Field(default=85.0, gt=0, le=100, validation_alias=AliasChoices("power_factor_pct", "力率"),
                                    description="used when no reactive energy is metered")
    power_factor_channel: str | None = Field(default=None, description="reactive energy counter (kvarh) or "
                                                                       "reactive power (kvar) of the incomer")
    power_factor_hours: str = Field(default="08:00-22:00", description="hours the utility averages 力率 over")
    consumption_tax_rate: float = Field(default=0.10, ge=0, le=0.5)

    @field_validator("summer_months")
    @classmethod
    def _months(cls, v: list[int]) -> list[int]:
        if any(not 1 <= m <= 12 for m in v):
            raise ValueError("months are 1..12")
        return v

    @field_validator("fuel_adjustment_jpy_per_kwh")
    @classmethod
    def _month_keys(cls, v: dict[str, float]) -> dict[str, float]:
        for k in v:
            if not re.match(r"^\d{4}-(0[1-9]|1[0-2])$", k):
                raise ValueError(f"{k!r} is not a month YYYY-MM")
        return v

    @field_validator("renewable_levy_jpy_per_kwh")
    @classmethod
    def _fy_keys(cls, v: dict[str, float]) -> dict[str, float]:
        out = {}
        for k, x in v.items():
            m = re.match(r"^(?:FY)?(\d{4})$", k.strip(), re.IGNORECASE)
            if not m:
                raise ValueError(f"{k!r} is not a fiscal year (2026 or FY2026)")
            if x < 0:
                raise ValueError(f"{k}: the levy cannot be negative")
            out[m.group(1)] = x
        return out

    @field_validator("power_factor_hours")
    @classmethod
    def _pf_hours(cls, v: str) -> str:
        if not _HHMM_RANGE.match(v):
            raise ValueError(f"{v!r} is not HH:MM-HH:MM")
        return v

    @field_validator("energy_rates")
    @classmethod
    def _every_hour_priced(cls, v: list[EnergyRate]) -> list[EnergyRate]:
        from types import SimpleNamespace

        from .tariff_bands import unpriced_slot
        hole = unpriced_slot(SimpleNamespace(energy_rates=v)) if v else None
        if hole:
            raise ValueError(f"no rate covers {hole}; end the list with a rate for all hours")
        return v


# ------------------------------------------------------------------------ storage
class InfluxSection(_Model):
    url: str
    token: str | None = None
    org: str | None = None
    bucket: str | None = None
    database: str | None = None
    username: str | None = None
    password: str | None = None
    api: Literal["auto", "v1", "v2"] = "auto"
    measurement: str = "energy"
    batch_size: int = Field(default=5000, ge=1)
    timeout_s: float = Field(default=10.0, gt=0)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return check_http_url(v)


class BufferSection(_Model):
    max_mb: float = Field(default=512.0, gt=0)
    when_full: Literal["drop_oldest", "drop_newest"] = "drop_oldest"


class StorageSection(_Model):
    backend: Literal["embedded", "influxdb"] = "embedded"
    retention_days: float = Field(default=0, ge=0, description="0 keeps everything")
    influxdb: InfluxSection | None = None
    buffer: BufferSection = Field(default_factory=BufferSection)

    @model_validator(mode="after")
    def _influx(self) -> "StorageSection":
        if self.backend == "influxdb" and self.influxdb is None:
            raise ValueError("backend = 'influxdb' needs a [storage.influxdb] table with at least `url`")
        return self


# ------------------------------------------------------------------ meters/channels
class Channel(_Model):
    id: str
    quantity: str
    # `register` in the file; the attribute is renamed because BaseModel has a `register` method
    register_field: str | None = Field(default=None, alias="register",
                                       description="field name in the meter's register map")
    unit: str | None = None
    scale: float = 1.0
    equipment_kind: str | None = None
    breaker: str | None = None
    process: str | None = Field(default=None, validation_alias=AliasChoices("process", "工程"))
    equipment: str | None = Field(default=None, validation_alias=AliasChoices("equipment", "設備"))
    system: str | None = None
    standby_allowance_kw: float = Field(default=0.0, ge=0, description="necessary load outside production (emergency lighting, refrigeration)")
    min_value: float | None = None
    max_value: float | None = None
    rated_power_kw: float | None = Field(default=None, gt=0)
    capacity_m3_per_min: float | None = Field(default=None, gt=0)
    always_on: bool | None = Field(default=None, description="load that must run outside production (servers, "
                                   "refrigeration): a base_load finding, never standby; unset: from equipment_kind")
    _check = field_validator("id")(_check_id)
    _quantity = field_validator("quantity")(check_quantity)

    def info(self, meter_id: str | None = None) -> ChannelInfo:
        """The channel's metadata as every layer uses it (the one copy of these fields)."""
        return ChannelInfo(id=self.id, quantity=self.quantity, unit=self.unit, equipment_kind=self.equipment_kind,
                           system=self.system, breaker=self.breaker, process=self.process, equipment=self.equipment,
                           meter=meter_id, standby_allowance_kw=self.standby_allowance_kw,
                           rated_power_kw=self.rated_power_kw, capacity_m3_per_min=self.capacity_m3_per_min,
                           always_on=self.always_on)


# The rates RS-485 meters and converters offer; anything else is a typo (96000) that the
# serial driver would refuse, or worse accept as a custom rate nobody on the line speaks.
SERIAL_BAUDRATES = (300, 600, 1200, 2400, 4800, 9600, 14400, 19200, 28800, 38400, 57600, 76800, 115200,
                    230400)


def check_baudrate(v: int) -> int:
    if v not in SERIAL_BAUDRATES:
        raise ValueError(f"{v} is not a serial baud rate ({', '.join(map(str, SERIAL_BAUDRATES))})")
    return v


class Meter(_Model):
    id: str
    name: str | None = None
    protocol: Literal["modbus_tcp", "modbus_rtu", "rtu_over_tcp"] = Field(
        default="modbus_tcp", description="rtu_over_tcp: RTU frames over a TCP socket (transparent RS-485/Ethernet converters)")
    model: str | None = Field(default=None, description="register map: a name in config/registers or a path")
    host: str = "127.0.0.1"
    port: int = Field(default=502, ge=1, le=65535)
    unit_id: int = Field(default=1, ge=0, le=247)
    serial_port: str | None = None
    baudrate: int = Field(default=9600, description="one of the standard serial rates (SERIAL_BAUDRATES)")
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8
    poll_interval_s: float = Field(default=1.0, gt=0)
    timeout_s: float = Field(default=1.0, gt=0)
    retries: int = Field(default=2, ge=0)
    max_registers_per_read: int = Field(default=125, ge=1, le=125)
    fill_holes: int = Field(default=8, ge=0, description="read through gaps of up to this many unused registers")
    # fussy devices and converters (issue 13)
    pause_between_requests_ms: float = Field(default=0.0, ge=0, le=60_000,
                                             description="quiet time on the link before each request to this meter")
    pause_after_connect_ms: float = Field(default=0.0, ge=0, le=60_000,
                                          description="wait after opening the connection before the first request")
    close_after_poll: bool = Field(default=False, description="close the connection after each poll (devices that "
                                                              "drop idle clients or accept one connection at a time)")
    # how this device lays out its register map (what `mieruka probe` finds)
    word_order: Literal["big", "little"] | None = Field(
        default=None, description="override the register map's word order for this device")
    address_base: Literal[0, 1] = Field(
        default=0, description="1: the device counts registers from 1 (each map address is read one higher)")
    enabled: bool = True
    channels: list[Channel] = Field(default_factory=list)
    _check = field_validator("id")(_check_id)

    @field_validator("baudrate")
    @classmethod
    def _standard_baudrate(cls, v: int) -> int:
        return check_baudrate(v)

    @property
    def is_modbus(self) -> bool:
        return self.protocol in ("modbus_tcp", "modbus_rtu", "rtu_over_tcp")

    @model_validator(mode="after")
    def _protocol_fields(self) -> "Meter":
        if self.is_modbus and not self.model:
            raise ValueError("Modbus meters need `model` (the register map)")
        if self.protocol == "modbus_rtu" and not self.serial_port:
            raise ValueError("modbus_rtu meters need `serial_port`")
        return self


# ------------------------------------------------------------------------- api
class ApiToken(_Model):
    """An API token, kept only as the sha256 hex of the secret
    (`mieruka serve --hash-token` prints it)."""

    name: str = Field(min_length=1)
    role: Literal["read", "admin"] = "read"
    sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$", description="sha256 hex of the token, never the token")
    expires: dt.datetime | dt.date | None = Field(
        default=None, description="last validity: a TOML date (valid through that day, site time) or an offset "
                                  "date-time; afterwards the token is refused with 401 'token expired'")

    @field_validator("expires")
    @classmethod
    def _aware(cls, v: dt.datetime | dt.date | None) -> dt.datetime | dt.date | None:
        if isinstance(v, dt.datetime) and v.tzinfo is None:
            raise ValueError("write the expiry as a date (2027-03-31) or with its offset (2027-03-31T23:59:59+09:00)")
        return v


class ApiSection(_Model):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    tokens: list[ApiToken] = Field(default_factory=list)
    tokens_file: Path | None = Field(default=None, description="TOML file of [[tokens]] (name, role, sha256), added to "
                                                               "`tokens`; relative to the config file; must not be "
                                                               "readable by others (mode 0600)")
    rate_limit: str = Field(default="50/second;2000/minute",
                            description="token buckets per token (or per client address without one): N/second, N/minute, ...")
    max_points: int = Field(default=2000, ge=10, le=100_000, description="most points a readings query returns")
    findings_days: int = Field(default=30, ge=1, description="default findings range: the last N days of data")
    stale_after_s: float = Field(default=120.0, gt=0, description="a channel whose latest reading is older than "
                                 "this is shown as stale (更新なし) with its age")


# ---------------------------------------------------------------------- the site
class SiteConfig(_Model):
    site: SiteSection
    calendar: CalendarSection = Field(default_factory=CalendarSection)
    tariffs: TariffsSection = Field(default_factory=TariffsSection)
    contracts: list[Contract] = Field(default_factory=list)
    co2: CO2Section = Field(default_factory=CO2Section)
    storage: StorageSection = Field(default_factory=StorageSection)
    savings: SavingsSection = Field(default_factory=SavingsSection)
    demand: DemandSection = Field(default_factory=DemandSection, validation_alias=AliasChoices("demand", "デマンド"))
    bill: BillSection | None = Field(default=None, validation_alias=AliasChoices("bill", "電気料金"))
    meters: list[Meter] = Field(default_factory=list)
    alarms: AlarmsSection = Field(default_factory=AlarmsSection, validation_alias=AliasChoices("alarms", "警報"))
    notify: list[NotifyTarget] = Field(default_factory=list, validation_alias=AliasChoices("notify", "通知"))
    # Sections owned by other parts; each part validates its own table with
    # `validate_section` so that errors keep the same file/key shape.
    simulation: dict[str, Any] | None = None
    mqtt: dict[str, Any] | None = None
    api: ApiSection = Field(default_factory=ApiSection)
    collector: dict[str, Any] | None = None

    # set by load_site: where the file is, for relative paths and error messages
    source: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _unique_ids(self) -> "SiteConfig":
        seen: set[str] = set()
        for m in self.meters:
            if m.id in seen:
                raise ValueError(f"meter id {m.id!r} is used twice")
            seen.add(m.id)
        seen.clear()
        for m in self.meters:
            for c in m.channels:
                if c.id in seen:
                    raise ValueError(f"channel id {c.id!r} is used twice")
                seen.add(c.id)
        return self

    # -- helpers every part uses
    def channels(self) -> list[tuple[Meter, Channel]]:
        return [(m, c) for m in self.meters for c in m.channels]

    def channel_infos(self) -> dict[str, ChannelInfo]:
        """Metadata of every configured channel, by id, in config order."""
        return {c.id: c.info(m.id) for m, c in self.channels()}

    def channel(self, channel_id: str) -> Channel:
        for _, c in self.channels():
            if c.id == channel_id:
                return c
        raise KeyError(channel_id)

    def resolve_path(self, p: Path | str) -> Path:
        """A path from the config, relative to the config file's folder."""
        p = Path(p)
        if p.is_absolute() or self.source is None:
            return p
        return (self.source.parent / p).resolve()

    @property
    def data_dir(self) -> Path:
        """Where the store lives.  A relative `data_dir` is taken from the current
        directory (like any path a person types), not from the config file's folder:
        a config kept in /etc or in the repository must not fill that folder with data."""
        return self.site.data_dir.resolve()

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.site.timezone)


# -------------------------------------------------------------------- loading
def format_validation_error(err: ValidationError, where: str, data: Any = None, prefix: str = "",
                            model: type[BaseModel] | None = None) -> str:
    """One line per problem: `FILE: line N: key.path: what is wrong`.  List items are
    shown with their `id` where they have one (`meters[pm1].channels[0].quantity`); the
    line is found in FILE when it is a TOML file on disk; an unknown key names the
    closest known key of its table when `model` (the model `data` was validated with)
    is given: `unknown key 'timezon' (did you mean 'timezone'?)`."""
    lines_of = toml_key_lines(where)
    errors = err.errors()
    # one line: an unknown key first (a typo also makes the key it meant "missing"),
    # then the rest in pydantic's order, counted
    errors.sort(key=lambda e: e["type"] != "extra_forbidden")
    lines = []
    for e in errors:
        raw_loc = _data_loc(e["loc"], data)
        full_loc = tuple(prefix.split(".")) + raw_loc if prefix else raw_loc
        loc = _loc_text(raw_loc, data)
        if prefix:
            loc = f"{prefix}.{loc}" if loc else prefix
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = _unknown_key_message(str(e["loc"][-1]) if e["loc"] else "", model, e["loc"])
        elif e["type"] == "missing":
            msg = "required key is missing"
        msg = msg.removeprefix("Value error, ")
        line = _line_for(lines_of, full_loc)
        at = f"line {line}: " if line else ""
        lines.append(f"{where}: {at}{loc or '(top level)'}: {msg}")
    if len(lines) > 1:
        more = len(lines) - 1
        return f"{lines[0]} (and {more} more problem{'s' if more > 1 else ''} in this file)"
    return lines[0] if lines else f"{where}: invalid"


def _data_loc(loc: tuple[Any, ...], data: Any) -> tuple[Any, ...]:
    """A pydantic error location as keys of the document: validator steps
    (`function-after[...]`) and the union member pydantic inserts (`webhook`,
    `WebhookTarget`) are dropped, they are not keys a person wrote."""
    out: tuple[Any, ...] = ()
    node = data
    for i, part in enumerate(loc):
        if str(part).startswith("function-"):
            continue
        last = i == len(loc) - 1
        if isinstance(part, str) and isinstance(node, dict) and part not in node and not last:
            continue
        out += (part,)
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
        else:
            node = node.get(part) if isinstance(node, dict) else None
    return out


def _unknown_key_message(key: str, model: type[BaseModel] | None, loc: tuple[Any, ...]) -> str:
    known = _keys_at(model, loc[:-1]) if model is not None else []
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6) if known else []
    if close:
        return f"unknown key {key!r} (did you mean {close[0]!r}?)"
    if known:
        shown = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
        return f"unknown key {key!r}; known keys here: {shown}"
    return f"unknown key {key!r} (check the spelling; see config/examples/)"


def _options(tp: Any) -> list[Any]:
    """A field's type as the list of types a value may be (Annotated and Optional unwrapped)."""
    origin = get_origin(tp)
    if origin is Annotated:
        return _options(get_args(tp)[0])
    if origin in (Union, types.UnionType):
        return [o for a in get_args(tp) for o in _options(a) if o is not type(None)]
    return [tp]


def _step(tp: Any, part: Any) -> list[Any]:
    out: list[Any] = []
    for opt in _options(tp):
        origin = get_origin(opt)
        if isinstance(opt, type) and issubclass(opt, BaseModel) and isinstance(part, str):
            fields = opt.model_fields
            for name, f in fields.items():
                va = f.validation_alias
                names = {name} | (set(va.choices) if isinstance(va, AliasChoices) else {va} if isinstance(va, str) else set())
                if part in names:
                    out.append(f.annotation)
                    break
            else:
                tag = fields.get("type")
                if part == opt.__name__ or (tag is not None and part in get_args(tag.annotation)):
                    out.append(opt)            # the member of a union pydantic names in the location
        elif origin in (list, tuple, set) and isinstance(part, int):
            out.append(get_args(opt)[0] if get_args(opt) else Any)
        elif origin is dict and isinstance(part, str):
            out.append(get_args(opt)[1] if get_args(opt) else Any)
    return out


def _keys_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys a table at `loc` (a pydantic error location) may hold, from the model."""
    cands: list[Any] = [model]
    for part in loc:
        if str(part).startswith("function-"):
            continue
        cands = [t for c in cands for t in _step(c, part)]
    keys: list[str] = []
    for c in cands:
        for opt in _options(c):
            if isinstance(opt, type) and issubclass(opt, BaseModel):
                for name, f in opt.model_fields.items():
                    if f.exclude:
                        continue
                    va = f.validation_alias
                    for k in [name, *(va.choices if isinstance(va, AliasChoices) else [])]:
                        if isinstance(k, str) and k not in keys:
                            keys.append(k)
    return keys


_TOML_HEADER = re.compile(r"^\s*(\[\[?)\s*(.+?)\s*\]\]?\s*(#.*)?$")
_TOML_KEY = re.compile(r"""^\s*((?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*'))*)\s*=""")
_TOML_PART = re.compile(r"""[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*'""")


def _toml_parts(text: str) -> tuple[str, ...]:
    return tuple(p[1:-1] if p[:1] in "\"'" else p for p in _TOML_PART.findall(text))


def toml_key_lines(path: str | Path) -> dict[tuple[Any, ...], int]:
    """Where each table and key of a TOML file starts: {("meters", 1, "channels", 0, "id"): 42}.
    Best effort, for error messages only (tomllib keeps no positions); {} when the
    file cannot be read."""
    try:
        p = Path(path)
        if not p.is_file() or p.stat().st_size > 5_000_000:
            return {}
        text = p.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    where: dict[tuple[Any, ...], int] = {}
    counts: dict[tuple[Any, ...], int] = {}
    table: tuple[Any, ...] = ()
    in_multiline = None
    for n, line in enumerate(text.splitlines(), 1):
        if in_multiline:
            if line.count(in_multiline) % 2 == 1:
                in_multiline = None
            continue
        m = _TOML_HEADER.match(line)
        if m and not _TOML_KEY.match(line):
            names = _toml_parts(m.group(2))
            concrete: tuple[Any, ...] = ()
            for i, name in enumerate(names):
                concrete += (name,)
                last = i == len(names) - 1
                if last and m.group(1) == "[[":
                    counts[concrete] = counts.get(concrete, -1) + 1
                    concrete += (counts[concrete],)
                elif not last and concrete in counts:      # inside the latest item of an array of tables
                    concrete += (counts[concrete],)
            table = concrete
            where.setdefault(table, n)
            continue
        k = _TOML_KEY.match(line)
        if k:
            key = table + _toml_parts(k.group(1))
            for i in range(len(table) + 1, len(key) + 1):
                where.setdefault(key[:i], n)
            for quote in ('"""', "'''"):
                if line.count(quote) % 2 == 1:
                    in_multiline = quote
    return where


def line_of(path: str | Path, loc: tuple[Any, ...]) -> int | None:
    """The line of TOML file `path` where the key at `loc` (or its nearest table) is written."""
    return _line_for(toml_key_lines(path), loc)


def _line_for(lines_of: dict[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int | None:
    for i in range(len(loc), 0, -1):
        if loc[:i] in lines_of:
            return lines_of[loc[:i]]
    return None


def _loc_text(loc: tuple[Any, ...], data: Any) -> str:
    out = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            label = str(part)
            if isinstance(node, list) and part < len(node) and isinstance(node[part], dict) and "id" in node[part]:
                label = f"{part}:{node[part]['id']}"
            out += f"[{label}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
        else:
            if str(part).startswith("function-after") or str(part).startswith("function-"):
                continue
            out += f".{part}" if out else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out


def parse_site(data: dict[str, Any], where: str = "<config>", env: dict[str, str] | None = None,
               source: Path | None = None) -> SiteConfig:
    """Validate an already-parsed TOML document (env vars are expanded here)."""
    try:
        data = expand(data, env)
    except MissingVariable as e:
        line = line_of(where, e.loc)
        raise ConfigError(f"{where}: {f'line {line}: ' if line else ''}{e.path}: {e}") from None
    _refuse_mqtt_meters(data, where)
    meters = data.get("meters")
    duplicate_ids(where, meters, ("meters",), "meter")
    channels = [(("meters", i, "channels", j), c) for i, m in enumerate(meters if isinstance(meters, list) else [])
                if isinstance(m, dict) and isinstance(m.get("channels"), list) for j, c in enumerate(m["channels"])]
    duplicate_ids(where, channels, None, "channel")
    try:
        cfg = SiteConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, where, data, model=SiteConfig)) from None
    cfg.source = source
    _check_cross_references(cfg, where)
    if cfg.api.tokens_file is not None:
        _load_tokens_file(cfg, where)
    return cfg


class _TokensFile(_Model):
    tokens: list[ApiToken] = Field(default_factory=list)


def _load_tokens_file(cfg: SiteConfig, where: str) -> None:
    """Add the `[api] tokens_file` entries to `cfg.api.tokens`.  The file is refused when
    others may read or write it: token hashes can be brute-forced offline, and a writable
    file lets anyone grant themselves admin."""
    import stat
    path = cfg.resolve_path(cfg.api.tokens_file)
    if path.is_dir():
        raise ConfigError(f"{where}: api.tokens_file: {path} is a folder, not a tokens file")
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ConfigError(f"{where}: api.tokens_file: no such file {path}") from None
    except OSError as e:
        raise ConfigError(f"{where}: api.tokens_file: cannot read {path}: {e.strerror}") from None
    if mode & (stat.S_IRWXO | stat.S_IWGRP):
        raise ConfigError(f"{path}: tokens file is readable or writable by others (mode {stat.S_IMODE(mode):04o}); "
                          f"run `chmod 600 {path}`")
    data = read_toml(path, "tokens")
    try:
        extra = _TokensFile.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, str(path), data, model=_TokensFile)) from None
    names = [t.name for t in cfg.api.tokens + extra.tokens]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"{path}: tokens: name {dup[0]!r} is used twice (here or in {where} [[api.tokens]])")
    cfg.api.tokens = cfg.api.tokens + extra.tokens


def duplicate_ids(where: str, items: Any, loc: tuple[Any, ...] | None, what: str) -> None:
    """Refuse the second use of an id among `items` (a list of tables at `loc`, or
    (loc, table) pairs when loc is None) with the line of the second one and that of the first."""
    if not isinstance(items, list):
        return
    pairs = [(loc + (i,), t) for i, t in enumerate(items)] if loc is not None else items
    first: dict[str, tuple[Any, ...]] = {}
    lines = None
    for item_loc, t in pairs:
        ident = t.get("id") if isinstance(t, dict) else None
        if not isinstance(ident, str):
            continue
        if ident in first:
            lines = toml_key_lines(where) if lines is None else lines
            n, n0 = _line_for(lines, item_loc + ("id",)), _line_for(lines, first[ident] + ("id",))
            where_text = _loc_text(item_loc, None) + ".id"
            raise ConfigError(f"{where}: {f'line {n}: ' if n else ''}{where_text}: {what} id {ident!r} is used twice"
                              + (f" (first on line {n0})" if n0 else ""))
        first[ident] = item_loc


def _refuse_mqtt_meters(data: dict[str, Any], where: str) -> None:
    """MQTT meters have one way to be configured, `[[mqtt.subscriptions]]` (topic filter,
    decoder, channel template); a `[[meters]]` entry with `protocol = "mqtt"` is refused
    with a pointer there, before its other keys (`topic`, ...) read as mere typos."""
    meters = data.get("meters")
    for i, m in enumerate(meters if isinstance(meters, list) else []):
        if isinstance(m, dict) and m.get("protocol") == "mqtt":
            raise ConfigError(f"{where}: meters[{i}:{m.get('id', '?')}].protocol: MQTT meters are configured as "
                              "[[mqtt.subscriptions]] (topic, decoder, channel template), not as [[meters]]; "
                              "see docs/mqtt-influx.md")


def read_toml(path: str | Path, what: str = "config") -> dict[str, Any]:
    """Parse a TOML file of mieruka's (site config, scenario, register map, factor
    file); a missing, unreadable, non-UTF-8 or malformed file is a ConfigError
    naming the file (`what` says which kind of file was expected)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what} file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a {what} file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    if not raw.strip(b" \t\r\n\xef\xbb\xbf") and what != "tokens":
        raise ConfigError(f"{path}: empty {what} file (see config/examples/ for an annotated one)")
    try:
        # utf-8-sig: Windows Notepad and Excel save UTF-8 with a byte-order mark
        return tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}{_fullwidth_hint(raw, e)}") from None


_FULLWIDTH = re.compile(r"[\uff01-\uff5e\u3000\u201c\u201d\u2018\u2019]")


def _fullwidth_hint(raw: bytes, err: tomllib.TOMLDecodeError) -> str:
    """A hint when the line TOML refused holds full-width characters (an IME left on:
    `１．５`, `＝`, a full-width space, curly quotes), which TOML does not read."""
    m = re.search(r"at line (\d+)", str(err))
    if not m:
        return ""
    lines = raw.decode("utf-8-sig", "replace").splitlines()
    n = int(m.group(1))
    line = lines[n - 1] if 0 < n <= len(lines) else ""
    if not _FULLWIDTH.search(line):
        return ""
    fixed = unicodedata.normalize("NFKC", line).replace("\u201c", '"').replace("\u201d", '"')
    fixed = fixed.replace("\u2018", "'").replace("\u2019", "'").strip()
    return f"; the line holds full-width characters (an IME left on?): write it as `{fixed}`"


def load_site(path: str | Path, env: dict[str, str] | None = None) -> SiteConfig:
    """Read, expand and validate a site config file; raise ConfigError worded for people."""
    path = Path(path)
    return parse_site(read_toml(path), str(path), env, path.resolve())


def validate_section(model: type[BaseModel], cfg: SiteConfig, section: str) -> BaseModel | None:
    """Validate one of the sections other parts own (`simulation`, `mqtt`, `api`,
    `collector`) with that part's model, keeping the file/key error shape."""
    data = getattr(cfg, section)
    if data is None:
        return None
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, str(cfg.source or "<config>"), data, prefix=section,
                                                      model=model)) from None


def _check_cross_references(cfg: SiteConfig, where: str) -> None:
    meter_ids = {m.id for m in cfg.meters}
    for i, c in enumerate(cfg.contracts):
        for m in c.meters:
            if m not in meter_ids:
                raise ConfigError(f"{where}: contracts[{i}:{c.id}].meters: no meter with id {m!r}")
    chans = {c.id: c for _, c in cfg.channels()}
    if cfg.meters:
        for key, cid, kinds in (("demand.channel", cfg.demand.channel, ("power_kw", "energy_kwh")),
                                ("bill.power_factor_channel", cfg.bill.power_factor_channel if cfg.bill else None,
                                 ("reactive_energy_kvarh", "reactive_power_kvar"))):
            if cid is None:
                continue
            if cid not in chans:
                raise ConfigError(f"{where}: {key}: no channel with id {cid!r}")
            if chans[cid].quantity not in kinds:
                raise ConfigError(f"{where}: {key}: channel {cid!r} is {chans[cid].quantity}, "
                                  f"expected {' or '.join(kinds)}")
    for i, m in enumerate(cfg.meters):
        if m.is_modbus:
            for j, c in enumerate(m.channels):
                if not c.register_field:
                    raise ConfigError(f"{where}: meters[{i}:{m.id}].channels[{j}:{c.id}].register: "
                                      f"required for Modbus meters (a field of register map {m.model!r})")
