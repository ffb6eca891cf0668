"""The fleet manifest (`fleet.toml`): which sites to analyse, from what.

    [company]                       # optional: the company's name and CO2 target bases
    name = "Example Manufacturing"
    base_fiscal_year = 2023         # SBT path base (with base_year_t_co2)
    base_year_t_co2 = 1200.0
    fy2013_t_co2 = 1500.0           # Japan's -46 % path

    period = { start = "2026-04-01", end = "2026-05-01" }   # optional default for every site
    split_readings = 50_000_000     # optional: split a larger site into channel-group tasks (0: never)

    [[sites]]
    id = "osaka"
    config = "osaka/site.toml"               # a site config (paths relative to this manifest)
    recordings = ["osaka/2026-04*.csv.gz"]   # files or globs, .csv / .csv.gz
    bills = "osaka/energy.csv"               # optional (default: the config's [co2] bills_file)

    [[sites]]
    id = "kobe"
    config = "kobe/site.toml"
    store = "kobe/data"                      # the site's embedded store (its data_dir, or the .sqlite file)
    split_readings = 10_000_000              # optional: this site's own threshold

    [[sites]]
    id = "nagoya"
    config = "nagoya/site.toml"
    influxdb = { url = "http://127.0.0.1:8086", database = "mieruka", site = "名古屋工場" }
    period = { start = "2026-04-01", end = "2026-05-01" }

Validated with pydantic at start; every problem is one line naming the file,
the key (`sites[1:kobe].store`) and what is wrong.  A missing file of a site (its
config, recordings, store, bills) is that site's `error`, as are its config and
data, which are read later on the worker: one broken site never stops the others.
"""
from __future__ import annotations

import datetime as dt
import glob
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..envsubst import MissingVariable, expand
from ..errors import ConfigError
from ..site import _line_for, duplicate_ids, format_validation_error, line_of, read_toml, toml_key_lines

RECORDING_SUFFIXES = (".csv", ".csv.gz")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Period(_Model):
    start: dt.date | dt.datetime
    end: dt.date | dt.datetime

    @model_validator(mode="after")
    def _order(self) -> "Period":
        if _as_dt(self.end) <= _as_dt(self.start):
            raise ValueError("end must be after start")
        return self


def _as_dt(x: dt.date | dt.datetime) -> dt.datetime:
    return x if isinstance(x, dt.datetime) else dt.datetime(x.year, x.month, x.day)


class FleetInflux(_Model):
    """A (central) InfluxDB holding the site's readings, told apart by the `site` tag."""

    url: str = Field(pattern=r"^https?://")
    database: str | None = None
    bucket: str | None = None
    org: str | None = None
    token: str | None = None
    username: str | None = None
    password: str | None = None
    measurement: str = "energy"
    site: str | None = Field(default=None, description="the `site` tag (default: the site config's [site] name)")

    @model_validator(mode="after")
    def _db(self) -> "FleetInflux":
        if not (self.database or self.bucket):
            raise ValueError("give `database` (InfluxDB 1.x) or `bucket` (2.x)")
        return self


class FleetSite(_Model):
    id: str = Field(min_length=1, pattern=r"^[^\s/\\]+$")
    config: Path
    recordings: list[str] | str | None = None
    store: Path | None = None
    influxdb: FleetInflux | None = None
    bills: Path | None = None
    period: Period | None = None
    split_readings: int | None = Field(default=None, ge=0, description="this site's split threshold")

    @field_validator("recordings")
    @classmethod
    def _rec_list(cls, v):
        if v is None:
            return v
        v = [v] if isinstance(v, str) else v
        if not v:
            raise ValueError("give at least one file or glob")
        for p in v:      # a glob may also match other files: only its .csv/.csv.gz matches are taken
            if not glob.has_magic(p) and not p.lower().endswith(RECORDING_SUFFIXES):
                raise ValueError(f"{p!r}: a recording is a .csv or .csv.gz file")
        return v

    @model_validator(mode="after")
    def _one_source(self) -> "FleetSite":
        given = [k for k in ("recordings", "store", "influxdb") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of `recordings`, `store` or `influxdb`"
                             + (f" (got {', '.join(given)})" if given else ""))
        return self


class Company(_Model):
    name: str = "company"
    base_fiscal_year: int | None = Field(default=None, ge=1990, le=2100)
    base_year_t_co2: float | None = Field(default=None, ge=0)
    fy2013_t_co2: float | None = Field(default=None, ge=0)
    fiscal_year: int | None = Field(default=None, ge=1990, le=2100, description="the CO2 sheet's FY (default: latest)")


# A site with more readings (channels x points) than this is split into channel
# groups (mieruka.service.fleet): 100 channels x a month at 1 s is 260 M.
DEFAULT_SPLIT_READINGS = 50_000_000


class FleetManifest(_Model):
    company: Company = Field(default_factory=Company)
    period: Period | None = None
    split_readings: int = Field(default=DEFAULT_SPLIT_READINGS, ge=0,
                                description="split a site above this many readings into channel groups (0: never); "
                                            "recording sites only when it is given")
    sites: list[FleetSite] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> "FleetManifest":
        seen: set[str] = set()
        for s in self.sites:
            if s.id in seen:
                raise ValueError(f"site id {s.id!r} is used twice")
            seen.add(s.id)
        return self


# ---------------------------------------------------------------- what a worker gets
@dataclass(frozen=True)
class SiteSpec:
    """Everything a worker needs to analyse one site: paths and URLs, never arrays
    (small to ship; the worker reads the data itself)."""

    id: str
    config: str                                   # absolute path
    recordings: tuple[str, ...] = ()              # absolute paths, sorted
    store: str | None = None                      # embedded store file
    influxdb: dict[str, Any] | None = None
    bills: str | None = None
    start: str | None = None                      # ISO; naive = site time
    end: str | None = None
    split_readings: int = 0                       # split above this many readings (0: never)
    error: str | None = None                      # a path of the manifest that is missing: the site fails


@dataclass
class Fleet:
    source: Path
    company: Company
    sites: list[SiteSpec] = field(default_factory=list)


def _resolve(base: Path, p: str | Path) -> Path:
    p = Path(p).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def _period_text(p: Period | None) -> tuple[str | None, str | None]:
    if p is None:
        return None, None
    return p.start.isoformat(), p.end.isoformat()


def _site_paths(base: Path, at, s: FleetSite) -> tuple[Path, tuple[str, ...], str | None, str | None]:
    """(config, recordings, store file, bills) of one site, every one checked to exist."""
    cfg = _resolve(base, s.config)
    if not cfg.is_file():
        raise ConfigError(f"{at('config')}: no such site config file: {cfg}")
    recs: tuple[str, ...] = ()
    if s.recordings is not None:
        found: set[str] = set()
        for pat in s.recordings:
            full = str(_resolve(base, pat))
            hits = sorted(glob.glob(full, recursive=True)) if glob.has_magic(full) else [full]
            hits = [h for h in hits if Path(h).is_file() and h.lower().endswith(RECORDING_SUFFIXES)]
            if not hits:
                raise ConfigError(f"{at('recordings')}: {pat!r} matches no .csv/.csv.gz file (relative to {base})")
            found.update(str(Path(h).resolve()) for h in hits)
        recs = tuple(sorted(found))
    store = None
    if s.store is not None:
        sp = _resolve(base, s.store)
        if sp.is_dir():
            from ..store.embedded import DB_NAME
            sp = sp / DB_NAME
        if not sp.is_file():
            raise ConfigError(f"{at('store')}: no embedded store at {sp}")
        store = str(sp)
    bills = None
    if s.bills is not None:
        b = _resolve(base, s.bills)
        if not b.is_file():
            raise ConfigError(f"{at('bills')}: no such file: {b}")
        bills = str(b)
    return cfg, recs, store, bills


def load_manifest(path: str | Path, env: dict[str, str] | None = None, split_readings: int | None = None) -> Fleet:
    """Read and validate a fleet manifest; raise ConfigError (file, key, problem) for
    what is wrong with the manifest itself.  A site whose files are missing (config,
    recordings or a glob matching none, store, bills) gets that line as its `error`
    and fails alone.  `split_readings` (the CLI's) overrides the manifest's."""
    path = Path(path)
    where = str(path)
    data = read_toml(path, "fleet manifest")
    try:
        data = expand(data, env)
    except MissingVariable as e:
        line = line_of(where, e.loc)
        raise ConfigError(f"{where}: {f'line {line}: ' if line else ''}{e.path}: {e}") from None
    duplicate_ids(where, data.get("sites"), ("sites",), "site")
    try:
        m = FleetManifest.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, where, data, model=FleetManifest)) from None
    base = path.resolve().parent
    fleet = Fleet(path.resolve(), m.company)
    lines = toml_key_lines(where)
    for i, s in enumerate(m.sites):
        def at(field: str, i: int = i, s=s) -> str:
            """`FILE: line N: sites[i:id].field` (the line of that key in the manifest)."""
            n = _line_for(lines, ("sites", i, field))
            return f"{where}: {f'line {n}: ' if n else ''}sites[{i}:{s.id}].{field}"
        start, end = _period_text(s.period or m.period)
        limit = split_readings if split_readings is not None else (
            s.split_readings if s.split_readings is not None else m.split_readings)
        if s.recordings is not None and split_readings is None and s.split_readings is None \
                and "split_readings" not in data:
            # a CSV is not indexed by channel: every task of a split site parses it whole
            # (measured: parsing costs ~30x the analysis), so recordings split only on request
            limit = 0
        try:
            cfg, recs, store, bills = _site_paths(base, at, s)
        except ConfigError as e:        # that site fails (one line), the others are analysed
            fleet.sites.append(SiteSpec(s.id, str(_resolve(base, s.config)), start=start, end=end, error=str(e)))
            continue
        fleet.sites.append(SiteSpec(s.id, str(cfg), recs, store, s.influxdb.model_dump() if s.influxdb else None,
                                    bills, start, end, limit))
    return fleet
