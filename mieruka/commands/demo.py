"""`mieruka demo`: the whole chain on the embedded store, ending by itself.

simulate the demo factory on Modbus TCP → collect from it → show what was
collected → simulate a month and analyse it (ranked findings in kWh, yen,
t-CO2) → the CO2 sheet of a sample factory year → replay the month into a store
and write the HTML report → say how to start the API on the same data.

Each step runs the real `mieruka` subcommand in its own process, exactly as a
person would type it, so the demo also shows the commands to use.
"""
from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from . import POSITIVE, console

from ..config import EXAMPLES_DIR
from ..errors import MierukaError

DEMO_SITE = EXAMPLES_DIR / "demo-site.toml"
ENERGY_YEAR = EXAMPLES_DIR / "energy-fy2024.csv"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, sim: subprocess.Popen, timeout_s: float = 90.0) -> None:
    """Until the simulator answers on `port`. A small gateway busy with other work can take
    tens of seconds to start Python with numpy and scipy; a simulator that exited (its
    port taken by another program) is said at once, with its last words."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if sim.poll() is not None:
            err = (sim.stderr.read() if sim.stderr else "").strip().splitlines()
            raise MierukaError(f"the simulator stopped before it opened port {port}"
                               + (f": {err[-1]}" if err else f" (exit {sim.returncode})"))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return
        except OSError:
            time.sleep(0.2)
    raise MierukaError(f"the simulator did not open port {port} within {timeout_s:.0f} s")


class _Steps:
    def __init__(self, con: Console, env: dict[str, str]):
        self.con, self.env, self.n = con, env, 0

    def title(self, text: str) -> None:
        self.n += 1
        self.con.rule(Text(f"{self.n}. {text}", style="bold"))

    def run(self, *args: str, env: dict[str, str] | None = None) -> None:
        shown = "mieruka " + " ".join(shlex.quote(a) for a in args)
        self.con.print(f"$ {shown}", style="dim")
        r = subprocess.run([sys.executable, "-m", "mieruka.cli", *args], env=env or self.env)
        if r.returncode != 0:
            raise MierukaError(f"demo step failed (exit {r.returncode}): {shown}")


@click.command("demo")
@click.option("--dir", "out_dir", type=click.Path(file_okay=False), default="mieruka-demo", show_default=True,
              help="Where the demo writes its stores, recording and report.")
@click.option("--collect-seconds", type=POSITIVE, default=8.0, show_default=True,
              help="How long to collect from the simulated factory.")
@click.option("--days", type=POSITIVE, default=30.0, show_default=True, help="Length of the simulated month to analyse.")
def command(out_dir: str, collect_seconds: float, days: float) -> int:
    """Run the whole demo on the embedded store and end by itself."""
    con = console()
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    port = int(os.environ.get("MIERUKA_MODBUS_PORT") or _free_port())
    live_env = {**os.environ, "MIERUKA_DATA_DIR": str(out / "live-store"), "MIERUKA_MODBUS_PORT": str(port)}
    audit_env = {**live_env, "MIERUKA_DATA_DIR": str(out / "audit-store")}
    site = str(DEMO_SITE)
    steps = _Steps(con, live_env)

    steps.title(f"Simulated factory on Modbus TCP 127.0.0.1:{port}, collected for {collect_seconds:.0f} s")
    sim = subprocess.Popen([sys.executable, "-m", "mieruka.cli", "simulate", "--config", site, "--port", str(port),
                            "--duration", str(collect_seconds + 600)], env=live_env,   # stopped below
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_port(port, sim)
        con.print(f"$ mieruka simulate --config {site} --port {port}   (in the background)", style="dim")
        steps.run("collect", "--config", site, "--duration", str(collect_seconds))
    finally:
        sim.terminate()
        try:
            sim.wait(10)
        except subprocess.TimeoutExpired:
            sim.kill()
    _show_store(con, live_env)

    month = out / "demo-month.csv"
    steps.title(f"A simulated month ({days:.0f} days of 1-minute data) with its ground truth")
    steps.run("simulate", "--config", site, "--record", str(month), "--days", str(days), "--step", "60")

    steps.title("What is wasted, ranked by yen (kWh, yen, t-CO2)")
    steps.run("analyze", str(month), "--config", site)

    steps.title("CO2 and cost sheet of a sample factory year (bills)")
    steps.run("co2", str(ENERGY_YEAR), "--config", site)

    report = out / "report.html"
    steps.title("Auditor's replay: load the month into a store, analyse, write the report")
    steps.run("replay", str(month), "--config", site, "--report", str(report), "--json", str(out / "findings.json"),
              "--xlsx", str(out / "report.xlsx"), "--no-progress", env=audit_env)

    con.rule(Text("Done", style="bold"))
    con.print(Text.assemble("HTML report: ", (str(report), "bold"), f"  (Excel: {out / 'report.xlsx'})"))
    con.print("Start the API on the same data, then open http://127.0.0.1:8080/dashboard#token=demo-token :")
    con.print(f"  MIERUKA_DATA_DIR={out / 'audit-store'} MIERUKA_API_TOKEN=demo-token "
              f".venv/bin/mieruka serve --config {site} --port 8080")
    con.print("  curl -H 'Authorization: Bearer demo-token' http://127.0.0.1:8080/api/v1/findings")
    return 0


def _show_store(con: Console, env: dict[str, str]) -> None:
    """What the collector stored: readings, latest value and quality per channel."""
    from ..models import Quality
    from ..site import load_site
    from ..store import open_store
    old = os.environ.copy()
    os.environ.update(env)
    try:
        cfg = load_site(DEMO_SITE)
    finally:
        os.environ.clear()
        os.environ.update(old)
    store = open_store(cfg, readonly=True)
    try:
        t = Table("channel", "quantity", "readings", "latest value", "quality", title="collected into the embedded store")
        total = 0
        for _, c in cfg.channels():
            times, values, quality = store.read_quality(c.id)
            total += len(times)
            last = store.latest(c.id)
            shown = "-" if last is None or last[1] != last[1] else f"{last[1]:,.3f}"
            q = "-" if last is None else Quality(int(last[2])).name.lower()
            t.add_row(c.id, c.quantity, f"{len(times):,}", shown, q)
        con.print(t)
        if total == 0:
            raise MierukaError("the collector stored nothing from the simulated factory")
    finally:
        store.close()
