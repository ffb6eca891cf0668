"""`mieruka status`: collector health for a person at the gateway.

Reads the snapshot the running collector rewrites every few seconds
(`<data_dir>/collector-status.json`, see mieruka.collector.health) and shows
inputs, devices, MQTT brokers, the disk buffer and the store as tables.
Whether the collector runs is not taken from the file alone: the pid must be
alive (and a mieruka process) and the heartbeat recent; the answer is said in
words ("not running (exited ...)", "stale heartbeat ..."), times in the site zone.
Exit code 0 when all is well, 1 when something needs a look (collector not
running, store down, readings dropped, devices with problems).
"""
from __future__ import annotations

import json
import time

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..errors import MierukaError
from ..site import load_site


def _ago(t: float | None, now: float) -> str:
    from ..service.collector_status import ago
    return "never" if not t else ago(now - t)


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


@click.command("status")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), help="Site config (TOML).")
@click.option("--json", "as_json", is_flag=True, help="Print the raw status snapshot as JSON.")
def command(config_path: str, as_json: bool) -> int:
    """Show the collector's health: inputs, devices, brokers, buffer and store.

    Reads the status file the running `mieruka collect` writes into the site's
    data dir every few seconds.  Exits 1 when something needs a look."""
    from ..collector.health import STATUS_FILE
    cfg = load_site(config_path)
    path = cfg.data_dir / STATUS_FILE
    try:
        snap = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise MierukaError(f"{path}: no collector status yet (is `mieruka collect --config {config_path}` running?)") from None
    except (OSError, ValueError) as e:
        raise MierukaError(f"{path}: cannot read the collector status: {e}") from None
    if not isinstance(snap, dict):
        raise MierukaError(f"{path}: not a collector status file (a JSON object is expected)")
    if as_json:
        click.echo(json.dumps(snap, ensure_ascii=False, indent=1))
        return 0
    return _show(snap, Console(), cfg.tz, cfg.data_dir)


def _show(snap: dict, con: Console, tz, data_dir) -> int:
    from ..service.collector_status import collector_state, local_time, lock_state
    now = time.time()
    problems: list[str] = []
    st = collector_state(snap, tz, now, lock=lock_state(data_dir))
    colour = "green" if st["running"] else "red"
    if not st["running"]:
        problems.append(st["words"])
    con.print(f"[bold]{escape(str(snap.get('site', '')))}[/bold] collector: [{colour}]{escape(st['words'])}[/{colour}]")
    con.print(f"started {local_time(snap.get('started'), tz) or '?'}")

    t = Table("input", "readings", "per second", title="inputs")
    for name, i in snap.get("inputs", {}).items():
        t.add_row(name, str(i["readings"]), f"{i['per_second']:.1f}")
    con.print(t)

    if snap.get("brokers"):
        t = Table("broker", "connected", "connects", "messages", "last error", title="MQTT brokers")
        for b in snap["brokers"]:
            if not b["connected"]:
                problems.append(f"broker {b['broker']} disconnected")
            t.add_row(b["broker"], "[green]yes[/green]" if b["connected"] else "[red]no[/red]", str(b["connects"]),
                      str(b["messages"]), b.get("last_error") or "-")
        con.print(t)

    if snap.get("devices"):
        t = Table("device", "input", "last good", "latency", "errors", "problem", title="devices")
        for d in sorted(snap["devices"], key=lambda d: d["device"]):
            if d.get("problem"):
                problems.append(f"device {d['device']}: {d['problem']}")
            lat = d.get("latency_s")
            t.add_row(d["device"], d["input"], _ago(d.get("last_success"), now),
                      "-" if lat is None else f"{lat * 1000:.0f} ms",
                      ", ".join(f"{k} {n}" for k, n in sorted(d.get("errors", {}).items())) or "-",
                      f"[red]{d['problem']}[/red]" if d.get("problem") else "-")
        con.print(t)

    b = snap.get("buffer")
    if b:
        t = Table("buffered readings", "disk", "oldest", "dropped (full)", "policy", title=f"disk buffer ({b['dir']})")
        oldest = "-" if b.get("oldest_age_s") is None else f"{b['oldest_age_s']:.0f} s"
        if b["dropped"]:
            problems.append(f"{b['dropped']} readings dropped because the buffer was full")
        t.add_row(str(b["readings"]), f"{_bytes(b['bytes'])} of {_bytes(b['max_bytes'])}", oldest,
                  f"[red]{b['dropped']}[/red]" if b["dropped"] else "0", b["when_full"])
        con.print(t)
    s = snap.get("sink")
    if s:
        if not s["up"]:
            problems.append(f"store down since {_ago(s.get('down_since'), now)}")
        if s["rejected"]:
            problems.append(f"{s['rejected']} readings refused by the store (saved under the buffer's rejected/)")
        t = Table("store", "state", "written", "last write", "failed attempts", "refused", title="store")
        t.add_row(s["kind"], "[green]up[/green]" if s["up"] else "[red]down[/red]", str(s["written"]),
                  _ago(s.get("last_success"), now), str(s["failures"]), str(s["rejected"]))
        con.print(t)
        for when, msg in s.get("recent_errors", [])[-5:]:
            con.print(f"  {local_time(when, tz)}  {escape(str(msg))}")
    d = snap.get("demand")
    if isinstance(d, dict) and d.get("available"):
        con.print(f"demand {d['start'][11:16]}-{d['end'][11:16]} ({d['channel']}): so far {d['energy_kwh']:.1f} kWh, "
                  f"present {d['present_kw']:.1f} kW, predicted [bold]{d['predicted_kw']:.1f} kW[/bold] "
                  f"(target {d.get('target_kw') or '-'} kW, stage {d['stage']}), {d['seconds_left'] / 60:.0f} min left, "
                  f"coverage {d['coverage']:.0%}", highlight=False)
    n = snap.get("notify")
    if isinstance(n, dict) and n.get("targets"):
        t = Table("target", "type", "sent", "failed attempts", "given up", "dropped", "queued", "last error",
                  title="alarm delivery ([[notify]])")
        for x in n["targets"]:
            if x["queued"] and x["failures"]:
                problems.append(f"notify target {x['name']} failing ({x['queued']} events waiting)")
            if x["given_up"] or x["dropped"]:
                problems.append(f"notify target {x['name']}: {x['given_up']} events given up, {x['dropped']} dropped")
            t.add_row(x["name"], x["type"], str(x["sent"]), str(x["failures"]), str(x["given_up"]), str(x["dropped"]),
                      str(x["queued"]), escape((x.get("last_error") or "-")[:60]))
        con.print(t)
    counters = snap.get("counters")
    if isinstance(counters, dict) and counters:
        parts = []
        for ch, c in sorted(counters.items()):
            if not isinstance(c, dict):
                continue
            said = ", ".join(f"{c[k]} {k}" for k in ("wraps", "resets", "jumps", "glitches")
                             if isinstance(c.get(k), int) and c[k])
            parts.append(f"{ch}: {said}")
            if c.get("glitches") or c.get("jumps"):
                problems.append(f"counter {ch}: {said} (glitch readings are stored flagged out_of_range; "
                                f"a jump is a meter replaced or set higher)")
        if parts:
            con.print(escape("counter steps since start: " + "; ".join(parts)), highlight=False)
    steps = max((d.get("clock_steps") or 0 for d in snap.get("devices", []) if isinstance(d, dict)), default=0)
    if steps:
        con.print(f"the system clock stepped {steps} times since start (NTP? see the log); polling follows it")
    errors = {k: v for k, v in snap.get("errors", {}).items() if v}
    if errors:
        con.print("errors since start: " + ", ".join(f"{k} {v}" for k, v in sorted(errors.items())))
    if problems:
        con.print("[bold red]needs a look:[/bold red] " + "; ".join(problems))
        return 1
    con.print("[green]all well[/green]")
    return 0
