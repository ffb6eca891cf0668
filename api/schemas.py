"""Response models: they document the API (OpenAPI) and schemathesis checks
every response against them.  Times are ISO 8601 texts with the site's offset."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _M(BaseModel):
    model_config = ConfigDict(extra="allow")


class Health(_M):
    status: Literal["ok"]
    version: str


class Site(_M):
    id: str
    name: str
    timezone: str
    language: Literal["ja", "en"]
    current_fiscal_year: int
    calendar: dict[str, Any]
    data_start: str | None = Field(description="first reading in the store (ISO 8601, site offset)")
    data_end: str | None


class Meter(_M):
    id: str
    name: str | None
    protocol: str
    model: str | None
    channels: list[str]


class ChannelState(_M):
    id: str
    quantity: str
    unit: str | None
    meter: str | None
    equipment_kind: str | None
    system: str | None
    breaker: str | None
    process: str | None
    equipment: str | None
    time: str | None = Field(description="time of the latest reading")
    value: float | None
    quality: str | None = Field(description="ok, timeout, exception, out_of_range, stale, error")
    age_s: float | None = Field(default=None, description="seconds since the latest reading (server clock)")
    status: Literal["ok", "stale", "fault", "no_data"] = Field(
        description="stale: the latest reading is older than [api] stale_after_s")


class Page(_M):
    total: int
    next: str | None = Field(description="URL of the next page, or null on the last")


class ChannelPage(Page):
    items: list[ChannelState]


class Readings(_M):
    channel: str
    quantity: str
    unit: str | None
    start: str
    end: str
    interval_s: int = Field(description="length of each interval; chosen so that at most max_points return")
    points: int
    time: list[str] = Field(description="interval starts")
    mean: list[float | None]
    min: list[float | None]
    max: list[float | None]
    count: list[int] = Field(description="OK readings in the interval")


class Profile(_M):
    channel: str
    date: str
    day_type: str
    interval_min: int
    slots: list[str] = Field(description="HH:MM of each slot, site time")
    today: list[float | None]
    baseline: list[float | None] = Field(description="median of the same day type over the previous weeks")
    baseline_days: int


class Finding(_M):
    kind: str
    channel: str
    start: str
    end: str
    energy_kwh: float | None
    cost_jpy: float | None
    co2_t: float | None
    metrics: dict[str, Any]
    explanation: str


class FindingPage(Page):
    start: str
    end: str
    items: list[Finding]


class Plan(_M):
    start: str
    end: str
    measures: list[dict[str, Any]]


class Co2Sheet(_M):
    fiscal_year: int
    months: list[str]
    source: str = Field(description="where the amounts come from: metered, bills or both")
    sheet: dict[str, Any] = Field(description="the CO2 engine's monthly sheet (location- and market-based)")


class CollectorHealth(_M):
    available: bool
    snapshot: dict[str, Any] | None


class Done(_M):
    status: str
    detail: str | None = None
