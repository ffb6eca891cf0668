"""Fleet runs: many sites analysed on Dask (distributed), one task per site, a large
site split into channel-group tasks.

    fleet = load_manifest("fleet.toml")
    with fleet_client(workers=2) as client:          # or fleet_client(scheduler="tcp://host:8786")
        run = run_fleet(fleet, client, on_done=...)
    run.to_json()                                     # byte-identical for any number of workers

What is shipped to a worker is a `SiteSpec` (paths, URLs, a period): the worker
reads the site's config, recordings or store itself, runs the very analysis of
`mieruka analyze` (mieruka.service.site_run + analytics.pipeline) and returns a
small summary (figures, top findings, priced CO2 rows), never the arrays.

A site with more readings than its `split_readings` runs as a plan task (the
SiteContext from the incomers, air systems and outdoor temperature), one task per
group of breakers (their standby / base-load and baseline-gap findings, their kWh
per demand period) and a combine task (incomers, air systems, plan, pricing, CO2
rows): the stages of analytics.pipeline.analyze, so the result is the whole site's
byte for byte.  See docs/fleet.md for what stays together and why.

A site whose config or data fails is reported with its error (`error`), the
others finish.  Dask retries a task whose worker died (`retries`), so a killed
worker changes nothing in the result.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import math
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from .. import __version__
from ..errors import ConfigError, MierukaError
from ..recording import file_sha256
from ..roles import is_site_total
from .fleet_manifest import Fleet, SiteSpec

TOP_FINDINGS = 3
WASTE_KINDS = ("standby", "baseline_gap", "air_leak", "compressor_profile")   # air_leak_growth is inside air_leak
TASK_RETRIES = 2


# ------------------------------------------------------------------ on the worker
def _open_store(spec: SiteSpec, cfg):
    if spec.store is not None:
        from ..store.embedded import EmbeddedStore
        return EmbeddedStore(spec.store, readonly=True, tz=cfg.tz)
    from ..store.influx import InfluxStore
    ix = dict(spec.influxdb or {})
    token = ix.get("token") or None
    api = "v2" if token and ix.get("org") else "v1"
    return InfluxStore(ix["url"], database=ix.get("database") or ix["bucket"], api=api, token=token,
                       org=ix.get("org"), bucket=ix.get("bucket"), username=ix.get("username"),
                       password=ix.get("password"), measurement=ix.get("measurement") or "energy",
                       site=ix.get("site") or cfg.site.name, site_only=True, tz=cfg.tz)


def _site_period(spec: SiteSpec, cal) -> tuple[dt.datetime | None, dt.datetime | None]:
    from ..store.base import parse_time
    try:
        return (parse_time(spec.start, cal.tz) if spec.start else None,
                parse_time(spec.end, cal.tz) if spec.end else None)
    except ValueError as e:
        raise ConfigError(f"period: {e}") from None


def _day_bounds(rng, cal) -> tuple[dt.datetime, dt.datetime]:
    t0 = cal.to_local_datetime(rng[0]).replace(hour=0, minute=0, second=0, microsecond=0)
    t1 = cal.to_local_datetime(rng[1]).replace(hour=0, minute=0, second=0, microsecond=0)
    return t0, t1 + dt.timedelta(days=1)


def _store_period(spec: SiteSpec, store, cal, t0, t1):
    if t0 is None or t1 is None:           # the store's whole site days
        rng = store.time_range()
        if rng is None:
            raise MierukaError("the store holds no readings for this site")
        d0, d1 = _day_bounds(rng, cal)
        t0, t1 = t0 or d0, t1 or d1
    return t0, t1


def site_channels(spec: SiteSpec, cfg, cal, ids=None, period=None, exclude=frozenset()):
    """(channels, period start, period end) of one site, read where the spec says
    (only the channels in `ids` when given, never those in `exclude`; `period`: fixed
    by the first task of a split site, so that every task reads the same readings)."""
    from .site_run import recording_channels, store_channels
    t0, t1 = period if period is not None else _site_period(spec, cal)
    if spec.recordings:
        chans = recording_channels([Path(p) for p in spec.recordings], cfg, t0, t1)
        return {c: v for c, v in chans.items() if (ids is None or c in ids) and c not in exclude}, t0, t1
    store = _open_store(spec, cfg)
    try:
        t0, t1 = _store_period(spec, store, cal, t0, t1)
        return store_channels(store, t0, t1, ids, exclude), t0, t1
    finally:
        store.close()


def _source(spec: SiteSpec, cfg) -> str:
    if spec.recordings:
        return f"in {', '.join(Path(p).name for p in spec.recordings)}"
    if spec.store:
        return f"in the embedded store {spec.store}"
    ix = spec.influxdb or {}
    return f"for site tag {ix.get('site') or cfg.site.name!r} in InfluxDB {ix.get('url')}"


def _guarded(spec: SiteSpec, fn, *args) -> dict[str, Any]:
    """Errors worded for people come back as the site's `error`; anything else too
    (with its type), so that one bad site never stops the fleet."""
    try:
        return fn(spec, *args)
    except MierukaError as e:
        return {"id": spec.id, "error": str(e)}
    except sqlite3.Error as e:      # an embedded store locked or damaged while it was read
        from ..store.embedded import store_error
        return {"id": spec.id, "error": str(store_error(Path(spec.store or "embedded store"), e))}
    except MemoryError:
        return {"id": spec.id, "error": "out of memory (split the site: a lower split_readings, or a period)"}
    except Exception as e:          # an unexpected failure of one site: reported, the others go on
        return {"id": spec.id, "error": f"{type(e).__name__}: {e}"}


def analyze_site(spec: SiteSpec) -> dict[str, Any]:
    """One site, whole, on a worker: read, analyse (as `mieruka analyze`), price the CO2 rows."""
    return _guarded(spec, _analyze_site)


def _setup(spec: SiteSpec):
    from ..analytics.co2 import CO2Engine
    from ..analytics.pipeline import params_for_site
    from ..calendar import SiteCalendar
    from ..site import load_site
    cfg = load_site(spec.config)
    return cfg, SiteCalendar.from_config(cfg), CO2Engine.from_site(cfg), params_for_site(cfg)


def _no_readings(spec: SiteSpec, cfg, t0, t1) -> MierukaError:
    return MierukaError(f"no readings {_source(spec, cfg)}" + (f" in [{t0.isoformat()}, {t1.isoformat()})"
                                                                if t0 and t1 else ""))


def _analyze_site(spec: SiteSpec) -> dict[str, Any]:
    from ..analytics.pipeline import analyze
    from .site_run import channel_digest
    cfg, cal, engine, params = _setup(spec)
    chans, t0, t1 = site_channels(spec, cfg, cal)
    if not any(len(ch.time) for ch in chans.values()):
        raise _no_readings(spec, cfg, t0, t1)
    result = analyze(chans, cal, engine, params)
    return _finish(spec, cfg, cal, engine, result, chans, {c: channel_digest(c, v) for c, v in chans.items()}, t0, t1)


def _finish(spec: SiteSpec, cfg, cal, engine, result, chans, digests: dict[str, str], t0, t1) -> dict[str, Any]:
    """The site's summary from the pipeline's result: its JSON, the priced CO2 rows of
    the channels that meter the site's total (`chans`: at least those), the inputs' hash."""
    from .fleet_co2 import co2_figures, site_rows
    from .site_run import digests_sha256
    text = result.to_json()
    data = json.loads(text)
    bills = spec.bills or (str(cfg.resolve_path(cfg.co2.bills_file)) if cfg.co2.bills_file else None)
    per = data.get("summary", {}).get("period") or {}
    if t0 is None or t1 is None:        # no period given: the recording's own span
        if not per:
            raise MierukaError("no power or air-flow channel with data")
        t0 = t0 or dt.datetime.fromisoformat(per["start"])
        t1 = t1 or dt.datetime.fromisoformat(per["end"])
    try:
        rows, production, metered = site_rows(spec.id, chans, cal, engine, Path(bills) if bills else None, (t0, t1))
    except ValueError as e:
        raise MierukaError(f"CO2 engine: {e}") from None
    h = hashlib.sha256()
    h.update(file_sha256(spec.config).encode())
    if bills:
        h.update(file_sha256(bills).encode())
    h.update(digests_sha256(digests).encode())
    return {"id": spec.id, "analysis": data, "analysis_sha256": hashlib.sha256(text.encode()).hexdigest(),
            "rows": rows, "production": production, "metered_channels": metered,
            "site_total_channels": sorted(c for c, ch in chans.items() if is_site_total(ch.info)),
            "co2": co2_figures(rows), "inputs_sha256": h.hexdigest(),
            "factor_set": engine.describe(), "site_name": cfg.site.name}


# ---- a large site in channel groups: plan (+ context), groups, combine
# The first task of every site decides: a site up to `split_readings` readings
# (channels x points) is analysed whole, right there, as before.  A larger one that
# channel_groups can split comes back as a plan: the site channels (incomers,
# compressors and air meters, outdoor temperature), breaker groups, the SiteContext
# computed from the site channels, the period, and the recordings' size and mtime.
# Each group task reads its channels and returns their ChannelParts and digests; the
# combine task reads the site channels again, adds the parts and finishes the site as
# one task would.  Byte-identical to the whole-site run (analytics.pipeline).

def site_task(spec: SiteSpec) -> dict[str, Any]:
    """The first task of a site: its whole result, or its split plan."""
    return _guarded(spec, _site_task)


def _readings(chans) -> int:
    return sum(len(ch.time) for ch in chans.values())


def _stamps(spec: SiteSpec) -> list[tuple[str, int, int]]:
    out = []
    for p in spec.recordings:
        st = os.stat(p)
        out.append((p, st.st_size, st.st_mtime_ns))
    return out


def _check_stamps(plan: dict) -> None:
    for p, size, mtime in plan["stamps"]:
        try:
            st = os.stat(p)
        except OSError as e:
            raise MierukaError(f"{p}: {e.strerror} (the recording went away while its site was analysed)") from None
        if (st.st_size, st.st_mtime_ns) != (size, mtime):
            raise MierukaError(f"{p}: the recording changed while its site was analysed; run again")


def _site_task(spec: SiteSpec) -> dict[str, Any]:
    from ..analytics.pipeline import analyze, channel_groups
    from .site_run import channel_digest
    cfg, cal, engine, params = _setup(spec)
    limit = spec.split_readings
    t0, t1 = _site_period(spec, cal)
    if spec.recordings:
        stamps = _stamps(spec)
        chans, t0, t1 = site_channels(spec, cfg, cal, period=(t0, t1))
        n = _readings(chans)
        infos = {c: ch.info for c, ch in chans.items()}
    else:
        stamps = []
        store = _open_store(spec, cfg)
        try:
            t0, t1 = _store_period(spec, store, cal, t0, t1)
            n = store.readings_estimate(t0, t1) if limit else 0
            infos = {i.id: i for i in store.channels()}
        finally:
            store.close()
        chans = None
    plan = channel_groups(infos, math.ceil(n / limit)) if limit and n > limit else None
    if plan is not None:
        site_ids, groups = plan
        breakers = {c for g in groups for c in g}
        if chans is None:
            chans, t0, t1 = site_channels(spec, cfg, cal, period=(t0, t1), exclude=breakers)
        ctx = _context({c: chans[c] for c in site_ids if c in chans}, cal, params)
        if ctx.totals:          # the incomer has data: the breakers can go their own way
            return {"id": spec.id, "split": {"site": site_ids, "groups": groups, "context": ctx,
                                             "period": (t0, t1), "stamps": stamps, "readings": n}}
        if not spec.recordings:     # no incomer data after all: the whole site in this task
            chans = None
    if chans is None:
        chans, t0, t1 = site_channels(spec, cfg, cal, period=(t0, t1))
    if not _readings(chans):
        raise _no_readings(spec, cfg, t0, t1)
    result = analyze(chans, cal, engine, params)
    return _finish(spec, cfg, cal, engine, result, chans, {c: channel_digest(c, v) for c, v in chans.items()}, t0, t1)


def _context(chans, cal, params):
    from ..analytics.pipeline import calendar_for_site, prepare_series, site_context
    from ..analytics.series import CachedCalendar
    c = CachedCalendar(cal)
    c, series, note = calendar_for_site(chans, c, params, prepare_series(chans, c, params))
    ctx = site_context(series, c, params)
    ctx.shifts_note = note           # the groups and the combine use the same production hours
    return ctx


def _calendar_of(cal, ctx):
    """The site's calendar with the shifts its context read off the load, if it did."""
    from ..analytics.pipeline import with_shifts
    from ..analytics.series import CachedCalendar
    note = getattr(ctx, "shifts_note", None) or {}
    return with_shifts(cal, note["shifts"]) if note.get("inferred") else CachedCalendar(cal)


def group_task(spec: SiteSpec, plan: dict, ids: list[str]) -> dict[str, Any]:
    """One channel group of a split site: its ChannelParts and digests."""
    return _guarded(spec, _group_task, plan, ids)


def _group_task(spec: SiteSpec, plan: dict, ids: list[str]) -> dict[str, Any]:
    from ..analytics.pipeline import channel_part, prepare_series
    from .site_run import channel_digest
    _check_stamps(plan)
    cfg, cal, _engine, params = _setup(spec)
    chans, _, _ = site_channels(spec, cfg, cal, ids=set(ids), period=plan["period"])
    ctx = plan["context"]
    c = _calendar_of(cal, ctx)
    parts = {cid: channel_part(cid, s, c, ctx, params) for cid, s in prepare_series(chans, c, params).items()}
    return {"id": spec.id, "parts": parts, "digests": {cid: channel_digest(cid, v) for cid, v in chans.items()},
            "readings": _readings(chans)}


def combine_task(spec: SiteSpec, plan: dict, *groups: dict) -> dict[str, Any]:
    """The last task of a split site: its site channels read again, the groups' parts
    added, the site finished as a whole-site task finishes it."""
    for g in groups:
        if g.get("error"):
            return {"id": spec.id, "error": g["error"]}
    return _guarded(spec, _combine_task, plan, groups)


def _combine_task(spec: SiteSpec, plan: dict, groups: tuple[dict, ...]) -> dict[str, Any]:
    from ..analytics.pipeline import combine, prepare_series
    from .site_run import channel_digest
    _check_stamps(plan)
    cfg, cal, engine, params = _setup(spec)
    breakers = {c for g in plan["groups"] for c in g}
    t0, t1 = plan["period"]
    chans, _, _ = site_channels(spec, cfg, cal, period=(t0, t1), exclude=breakers)
    parts, digests, n = {}, {c: channel_digest(c, v) for c, v in chans.items()}, _readings(chans)
    for g in groups:
        parts.update(g["parts"])
        digests.update(g["digests"])
        n += g["readings"]
    if not n:
        raise _no_readings(spec, cfg, t0, t1)
    c = _calendar_of(cal, plan["context"])
    series = prepare_series({cid: chans[cid] for cid in plan["site"] if cid in chans}, c, params)
    result = combine(series, parts, c, engine, params, plan["context"])
    return _finish(spec, cfg, cal, engine, result, chans, digests, t0, t1)


# ------------------------------------------------------------------ summarising
def _waste(findings: list[dict], totals: set[str], incomers: set[str]) -> tuple[float, float, float]:
    """kWh, yen and t-CO2 of the period's waste: standby, baseline gaps, air leaks and
    compressors' unload energy, counted as the savings plan counts them.  Standby on an
    incomer (mieruka.roles: a site-total channel, also when it is the only meter) is the
    site's base load to track down on the breakers, not waste the plan claims, so it is
    never counted; other findings
    on a site-total channel are left out when breakers below it are analysed too: they
    would count the same energy twice."""
    use = [f for f in findings if f.get("kind") in WASTE_KINDS and f.get("channel") not in totals
           and not (f.get("kind") == "standby" and (f.get("channel") in incomers
                                                    or (f.get("metrics") or {}).get("site_total")))]
    return (sum(f.get("energy_kwh") or 0.0 for f in use), sum(f.get("cost_jpy") or 0.0 for f in use),
            sum(f.get("co2_t") or 0.0 for f in use))


def site_entry(r: dict[str, Any]) -> dict[str, Any]:
    """The JSON entry of one site (the issue's shape, plus the detail the league needs)."""
    keys = ("period", "energy_kwh", "co2_t", "scope1_t", "scope2_t", "waste_kwh", "waste_jpy", "waste_co2_t",
            "top_findings", "plan_jpy_per_year")
    if r.get("error"):
        return {"id": r["id"], **{k: None for k in keys}, "top_findings": [], "error": r["error"]}
    a = r["analysis"]
    s = a.get("summary", {})
    site = s.get("site") or {}
    # the pipeline's site channels are the incomers, or every power channel when there is none
    site_ch, power_ch = set(site.get("channels") or []), set(s.get("energy_kwh") or {})
    totals = site_ch if site_ch != power_ch else set()
    waste_kwh, waste_jpy, waste_co2 = _waste(a.get("findings", []), totals, set(r["site_total_channels"]))
    energy = site.get("energy_kwh")
    plan = a.get("plan", [])
    top = max(plan, key=lambda m: (m.get("cost_jpy_per_year") or 0.0, m.get("energy_kwh_per_year") or 0.0),
              default=None)
    prod = r["production"]
    prod_n = sum(p.amount for p in prod) if prod else None
    prod_unit = prod[0].unit if prod and len({p.unit for p in prod}) == 1 else None
    co2 = r["co2"]
    per = s.get("period") or {}
    out = {
        "id": r["id"], "name": r["site_name"],
        "period": {"start": per.get("start"), "end": per.get("end")} if per else None,
        "energy_kwh": energy, "co2_t": co2["co2_t"], "scope1_t": co2["scope1_t"], "scope2_t": co2["scope2_t"],
        "scope2_location_t": co2["scope2_location_t"], "scope2_market_t": co2["scope2_market_t"],
        "waste_kwh": waste_kwh, "waste_jpy": waste_jpy, "waste_co2_t": waste_co2,
        "waste_share": (waste_kwh / energy) if energy else None,
        "top_findings": [{k: f.get(k) for k in ("kind", "channel", "energy_kwh", "cost_jpy", "co2_t",
                                                 "explanation_en", "explanation_ja")}
                         for f in a.get("findings", [])[:TOP_FINDINGS]],
        "top_measure": None if top is None else {k: top.get(k) for k in (
            "id", "title_en", "title_ja", "target", "energy_kwh_per_year", "cost_jpy_per_year", "co2_t_per_year",
            "payback_years")},
        "plan_jpy_per_year": (s.get("plan_total") or {}).get("cost_jpy_per_year"),
        "production": None if prod_n is None or prod_unit is None else {"amount": prod_n, "unit": prod_unit},
        "energy_kwh_per_unit": (energy / prod_n) if energy and prod_n and prod_unit else None,
        "co2_t_per_unit": (co2["co2_t"] / prod_n) if prod_n and prod_unit else None,
        "metered_channels": r["metered_channels"],
        "analysis_sha256": r["analysis_sha256"],
        "error": None,
    }
    return out


@dataclass
class FleetRun:
    fleet: Fleet
    results: list[dict[str, Any]]                     # one per site, in manifest order
    sheet: Any = None                                 # the company's analytics.co2.sheet.Sheet (or None)
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self, indent: int | None = 2) -> str:
        """Deterministic: sorted keys, floats rounded like the pipeline's JSON, no clock time."""
        from ..analytics.pipeline import _clean
        return json.dumps(_clean(self.data), sort_keys=True, ensure_ascii=False, indent=indent) + "\n"


def summarise(fleet: Fleet, results: list[dict[str, Any]]) -> FleetRun:
    """The fleet's JSON document and the company's CO2 sheet from the sites' results."""
    from ..analytics.co2.report import to_json as sheet_json
    from .fleet_co2 import company_sheet

    sites = [site_entry(r) for r in results]
    ok = [s for s in sites if not s["error"]]
    tot = lambda k: sum(s[k] or 0.0 for s in ok)
    factor_sets = {}
    for r in results:
        if not r.get("error"):
            factor_sets.setdefault(r["factor_set"].get("id"), r["factor_set"])
    rows = [row for r in results if not r.get("error") for row in r["rows"]]
    prod = [p for r in results if not r.get("error") for p in r["production"]]
    fs = next(iter(factor_sets.values()), {})
    sheet = company_sheet(rows, prod, fs, fleet.company)
    totals = {"sites": len(sites), "sites_ok": len(ok), "sites_failed": len(sites) - len(ok),
              **{k: tot(k) for k in ("energy_kwh", "co2_t", "scope1_t", "scope2_t", "scope2_location_t",
                                     "scope2_market_t", "waste_kwh", "waste_jpy", "waste_co2_t", "plan_jpy_per_year")}}
    totals["waste_share"] = totals["waste_kwh"] / totals["energy_kwh"] if totals["energy_kwh"] else None
    data = {
        "company": fleet.company.model_dump(),
        "sites": sites,
        "totals": totals,
        "co2_sheet": sheet_json(sheet) if sheet is not None else None,
        "provenance": {
            "version": __version__,
            "factor_set": fs if len(factor_sets) <= 1 else sorted(factor_sets),
            "factor_sets": factor_sets,
            "inputs": {r["id"]: r.get("inputs_sha256") for r in results},
        },
    }
    return FleetRun(fleet, results, sheet, data)


# ------------------------------------------------------------------ running on Dask
# A site's analysis allocates and frees arrays of hundreds of MB.  distributed starts
# workers with MALLOC_TRIM_THRESHOLD_=65536, so glibc hands every freed block back to
# the OS and faults it in again for the next site: measured 8x the page faults and
# 2x the system time per site (bench/bench_fleet.py).  Without it a worker keeps the
# memory of its largest site for the next one, which is the bound we want anyway.
# The statistical profiler samples every 10 ms; nobody reads it here (no dashboard).
LOCAL_WORKER_CONFIG = {"distributed.worker.profile.enabled": False}


def _worker_env() -> dict:
    import dask
    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}) or {})
    env.pop("MALLOC_TRIM_THRESHOLD_", None)
    return env      # keeps OMP/MKL/OPENBLAS_NUM_THREADS=1: one thread per worker, Arrow's CSV pool too


@contextlib.contextmanager
def fleet_client(workers: int | None = None, scheduler: str | None = None,
                 memory_limit: str | float | None = "auto") -> Iterator[Any]:
    """A dask.distributed Client: to an existing scheduler (`tcp://host:8786`), or to
    a LocalCluster of `workers` processes with one thread each (the analysis is
    numpy; one thread per process keeps a worker's memory to one site)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise MierukaError("fleet analysis on Dask needs the `fleet` extra: pip install 'mieruka[fleet]' "
                           "(or run with --serial)") from None
    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, ValueError, TypeError) as e:      # unreachable, timed out, or not an address
            raise MierukaError(f"--scheduler {scheduler}: cannot connect: {e}") from None
        try:
            yield client
        finally:
            client.close()
        return
    import logging

    import dask
    n = workers or max(1, min(os.cpu_count() or 1, 8))
    # the in-process scheduler logs every start, worker and stop at INFO; they reached the
    # CLI's stderr through the root handler and buried the one line per failed site
    quiet = logging.getLogger("distributed")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with dask.config.set(LOCAL_WORKER_CONFIG | {"distributed.nanny.pre-spawn-environ": _worker_env()}):
            # the nannies keep these: a worker they restart (killed, out of memory) gets them too
            # no dashboard; the scheduler's small HTTP server (health, metrics) still starts:
            # on a free loopback port, not on 8787 of every interface (a second run warned)
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                                   dashboard_address=None, memory_limit=memory_limit, silence_logs=40,
                                   scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
            cluster.close()
    finally:
        quiet.setLevel(level)


def _run_serial(spec: SiteSpec) -> dict[str, Any]:
    if spec.error:
        return {"id": spec.id, "error": spec.error}
    res = site_task(spec)
    plan = res.get("split")
    if plan is None:
        return res
    return combine_task(spec, plan, *(group_task(spec, plan, ids) for ids in plan["groups"]))


def run_fleet(fleet: Fleet, client=None, on_done: Callable[[str, dict], None] | None = None) -> FleetRun:
    """Analyse every site of the fleet: one Dask task per site (a large site: a task for
    its plan, one per channel group and one to combine them) on `client`, or in this
    process one after the other when `client` is None (the serial baseline)."""
    results: dict[str, dict] = {}

    def done(spec: SiteSpec, res: dict) -> None:
        results[spec.id] = res
        if on_done:
            on_done(spec.id, res)

    if client is None:
        for spec in fleet.sites:
            done(spec, _run_serial(spec))
        return summarise(fleet, [results[s.id] for s in fleet.sites])
    import uuid

    from distributed import as_completed
    run = uuid.uuid4().hex[:12]        # keys unique per run: clients sharing a scheduler never meet
    ac = as_completed()
    owner: dict[str, SiteSpec] = {}
    held: dict[str, list] = {}         # a split site's group futures, until its combine is done

    def submit(spec: SiteSpec, key: str, fn, *args):
        # pure=False: a site is read afresh each run (its files may have changed)
        fut = client.submit(fn, spec, *args, key=f"{key}-{run}", retries=TASK_RETRIES, pure=False)
        owner[fut.key] = spec
        return fut

    for i, spec in enumerate(fleet.sites):
        if spec.error:
            done(spec, {"id": spec.id, "error": spec.error})
        else:
            ac.add(submit(spec, f"site-{i}-{spec.id}", site_task))
    for fut in ac:
        spec = owner.pop(fut.key)
        try:
            res = fut.result()
        except Exception as e:      # e.g. KilledWorker after the retries: that site fails, the others go on
            res = {"id": spec.id, "error": f"{type(e).__name__}: {e}"}
        fut.release()
        plan = res.get("split")
        if plan is not None:
            base = fut.key.rsplit("-", 1)[0]
            groups = [submit(spec, f"{base}-group{g}", group_task, plan, ids) for g, ids in enumerate(plan["groups"])]
            last = submit(spec, f"{base}-combine", combine_task, plan, *groups)
            for g in groups:
                owner.pop(g.key)
            held[last.key] = groups
            ac.add(last)
            continue
        for g in held.pop(fut.key, []):
            g.release()
        done(spec, res)
    return summarise(fleet, [results[s.id] for s in fleet.sites])
