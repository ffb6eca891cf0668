"""Fleet runs: many sites analysed on Dask (distributed), one task per site.

    fleet = load_manifest("fleet.toml")
    with fleet_client(workers=2) as client:          # or fleet_client(scheduler="tcp://host:8786")
        run = run_fleet(fleet, client, on_done=...)
    run.to_json()                                     # byte-identical for any number of workers

What is shipped to a worker is a `SiteSpec` (paths, URLs, a period): the worker
reads the site's config, recordings or store itself, runs the very analysis of
`mieruka analyze` (mieruka.service.site_run + analytics.pipeline) and returns a
small summary (figures, top findings, priced CO2 rows), never the arrays.

Why a site is one task (and not split by channel): the detectors are independent
per power channel (standby, baseline) and per air system (compressors + flow +
pressure of one `system`), but the site's result is not a sum of those parts: the
annualisation factor spans the site's whole period, the site total and the
savings plan (ranked, with each measure's share of the site's CO2) need every
channel, and the standby / baseline measures sum over the breakers.  Splitting
would need a map/reduce of the pipeline itself; a site-month of 100 channels at
1 min analyses in about a second (docs/performance.md), so the many sites of a
fleet already fill any cluster.  Memory per worker is therefore one site.

A site whose config or data fails is reported with its error (`error`), the
others finish.  Dask retries a task whose worker died (`retries`), so a killed
worker changes nothing in the result.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
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


def site_channels(spec: SiteSpec, cfg, cal):
    """(channels, period start, period end) of one site, read where the spec says."""
    from .site_run import recording_channels, store_channels
    t0, t1 = _site_period(spec, cal)
    if spec.recordings:
        return recording_channels([Path(p) for p in spec.recordings], cfg, t0, t1), t0, t1
    store = _open_store(spec, cfg)
    try:
        if t0 is None or t1 is None:           # the store's whole site days
            rng = store.time_range()
            if rng is None:
                raise MierukaError("the store holds no readings for this site")
            d0, d1 = _day_bounds(rng, cal)
            t0, t1 = t0 or d0, t1 or d1
        return store_channels(store, t0, t1), t0, t1
    finally:
        store.close()


def _source(spec: SiteSpec, cfg) -> str:
    if spec.recordings:
        return f"in {', '.join(Path(p).name for p in spec.recordings)}"
    if spec.store:
        return f"in the embedded store {spec.store}"
    ix = spec.influxdb or {}
    return f"for site tag {ix.get('site') or cfg.site.name!r} in InfluxDB {ix.get('url')}"


def analyze_site(spec: SiteSpec) -> dict[str, Any]:
    """One site, on a worker: read, analyse (as `mieruka analyze`), price the CO2
    rows.  Errors worded for people come back as the site's `error`; anything
    else too (with its type), so that one bad site never stops the fleet."""
    try:
        return _analyze_site(spec)
    except MierukaError as e:
        return {"id": spec.id, "error": str(e)}
    except Exception as e:          # an unexpected failure of one site: reported, the others go on
        return {"id": spec.id, "error": f"{type(e).__name__}: {e}"}


def _analyze_site(spec: SiteSpec) -> dict[str, Any]:
    from ..analytics.co2 import CO2Engine
    from ..analytics.pipeline import analyze, params_for_site
    from ..calendar import SiteCalendar
    from ..site import load_site
    from .fleet_co2 import co2_figures, site_rows
    from .site_run import channels_sha256

    cfg = load_site(spec.config)
    cal = SiteCalendar.from_config(cfg)
    engine = CO2Engine.from_site(cfg)
    params = params_for_site(cfg)
    chans, t0, t1 = site_channels(spec, cfg, cal)
    if not any(len(ch.time) for ch in chans.values()):
        raise MierukaError(f"no readings {_source(spec, cfg)}" + (f" in [{t0.isoformat()}, {t1.isoformat()})"
                                                                 if t0 and t1 else ""))
    result = analyze(chans, cal, engine, params)
    text = result.to_json()
    data = json.loads(text)
    bills = spec.bills or (str(cfg.resolve_path(cfg.co2.bills_file)) if cfg.co2.bills_file else None)
    per = data.get("summary", {}).get("period") or {}
    if t0 is None or t1 is None:        # no period given: the recording's own span
        if not per:
            raise MierukaError("no power or air-flow channel with data")
        t0 = t0 or dt.datetime.fromisoformat(per["start"])
        t1 = t1 or dt.datetime.fromisoformat(per["end"])
    period = (t0, t1)
    try:
        rows, production, metered = site_rows(spec.id, chans, cal, engine, Path(bills) if bills else None, period)
    except ValueError as e:
        raise MierukaError(f"CO2 engine: {e}") from None
    h = hashlib.sha256()
    h.update(file_sha256(spec.config).encode())
    if bills:
        h.update(file_sha256(bills).encode())
    h.update(channels_sha256(chans).encode())
    return {"id": spec.id, "analysis": data, "analysis_sha256": hashlib.sha256(text.encode()).hexdigest(),
            "rows": rows, "production": production, "metered_channels": metered,
            "site_total_channels": sorted(c for c, ch in chans.items() if is_site_total(ch.info)),
            "co2": co2_figures(rows), "inputs_sha256": h.hexdigest(),
            "factor_set": engine.describe(), "site_name": cfg.site.name}


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
    import os

    import dask
    n = workers or max(1, min(os.cpu_count() or 1, 8))
    with dask.config.set(LOCAL_WORKER_CONFIG | {"distributed.nanny.pre-spawn-environ": _worker_env()}):
        # the nannies keep these: a worker they restart (killed, out of memory) gets them too
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None, memory_limit=memory_limit, silence_logs=40)
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def run_fleet(fleet: Fleet, client=None, on_done: Callable[[str, dict], None] | None = None) -> FleetRun:
    """Analyse every site of the fleet: one Dask task per site on `client`, or in this
    process one after the other when `client` is None (the serial baseline)."""
    results: dict[str, dict] = {}
    if client is None:
        for spec in fleet.sites:
            results[spec.id] = analyze_site(spec)
            if on_done:
                on_done(spec.id, results[spec.id])
    else:
        from distributed import as_completed
        # pure=False: a site is read afresh each run (its files may have changed)
        futures = {client.submit(analyze_site, spec, key=f"site-{i}-{spec.id}", retries=TASK_RETRIES,
                                 pure=False): spec for i, spec in enumerate(fleet.sites)}
        for fut in as_completed(futures):
            spec = futures[fut]
            try:
                res = fut.result()
            except Exception as e:      # e.g. KilledWorker after the retries: that site fails, the others go on
                res = {"id": spec.id, "error": f"{type(e).__name__}: {e}"}
            results[spec.id] = res
            if on_done:
                on_done(spec.id, res)
            fut.release()
    return summarise(fleet, [results[s.id] for s in fleet.sites])
