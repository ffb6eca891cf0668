"""Shared set-up for the API, replay, report and dashboard tests (no tests here).

A small factory recording written with the recording writer: 1-minute data over
two weeks with a known standby level on the press line, a compressor that runs
all night (leak load) and an air-flow meter, in the site zone's calendar.
"""
from __future__ import annotations

import hashlib
import os
import sys
import textwrap
from pathlib import Path

import httpx
import numpy as np

from mieruka.models import ChannelInfo
from mieruka.recording import write_channels

from .net import free_port, wait_for
from .proc import Process

TOKENS = {"read": "read-token-0123456789", "admin": "admin-token-9876543210"}
START = np.datetime64("2026-04-05T15:00", "ms")     # 2026-04-06 00:00 JST, a Monday
STANDBY_KW = 3.0


def sha(tok: str) -> str:
    return hashlib.sha256(tok.encode()).hexdigest()


def write_config(tmp: Path, language: str = "ja", rate: str = "1000/second", with_channels: bool = False,
                 extra: str = "") -> Path:
    """A site config for the tests: calendar, tariffs, store in `tmp`, tokens; no
    meters unless asked (an auditor's config)."""
    cfg = tmp / "site.toml"
    text = f"""
        [site]
        name = "テスト工場"
        timezone = "Asia/Tokyo"
        language = "{language}"
        data_dir = "{tmp / 'data'}"
        [calendar]
        holidays = "JP"
        [calendar.shifts]
        mon = ["08:00-17:00"]
        tue = ["08:00-17:00"]
        wed = ["08:00-17:00"]
        thu = ["08:00-17:00"]
        fri = ["08:00-17:00"]
        [tariffs]
        electricity_jpy_per_kwh = 25.0
        [[contracts]]
        id = "hv"
        retailer = "東京電力エナジーパートナー"
        [api]
        rate_limit = "{rate}"
        [[api.tokens]]
        name = "manager"
        role = "read"
        sha256 = "{sha(TOKENS['read'])}"
        [[api.tokens]]
        name = "ops"
        role = "admin"
        sha256 = "{sha(TOKENS['admin'])}"
    """
    cfg.write_text(textwrap.dedent(text) + extra, encoding="utf-8")
    return cfg


def make_recording(path: Path, days: int = 14, seed: int = 1) -> Path:
    """Two weeks of 1-minute readings; production Mon-Fri 08:00-17:00 JST."""
    rng = np.random.default_rng(seed)
    n = days * 1440
    t = START + np.arange(n).astype("timedelta64[m]").astype("timedelta64[ms]")
    minute = np.arange(n) % 1440
    day = np.arange(n) // 1440
    weekday = day % 7                                   # 0 = Monday
    prod = (weekday < 5) & (minute >= 8 * 60) & (minute < 17 * 60)
    press = np.where(prod, 40.0, STANDBY_KW) + rng.normal(0, 0.3, n)
    comp = np.where(prod, 30.0, np.where(minute % 10 < 3, 30.0, 8.0)) + rng.normal(0, 0.2, n)   # load/unload at night
    flow = np.where(prod, 4.0, 0.9) + rng.normal(0, 0.05, n)
    light = np.where(prod, 6.0, 0.5) + rng.normal(0, 0.05, n)
    main = press + comp + light + 2.0
    infos = [ChannelInfo("main_power", "power_kw", equipment_kind="incomer"),
             ChannelInfo("press_power", "power_kw", equipment_kind="press"),
             ChannelInfo("compressor_power", "power_kw", equipment_kind="compressor", system="air1"),
             ChannelInfo("air_flow", "air_flow_m3min", equipment_kind="air_meter", system="air1"),
             ChannelInfo("lighting_power", "power_kw", equipment_kind="lighting")]
    data = {"main_power": (t, main, None), "press_power": (t, press, None), "compressor_power": (t, comp, None),
            "air_flow": (t, flow, None), "lighting_power": (t, light, None)}
    write_channels(path, data, infos, tz="Asia/Tokyo")
    return path


class Server(Process):
    """`mieruka serve` as a real process on a free loopback port, up once /healthz answers."""

    def __init__(self, config: Path, env: dict | None = None, log: Path | None = None, args: tuple = ()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log or config.parent / "serve.log"
        self.log.write_bytes(b"")
        try:
            self.spawn([sys.executable, "-m", "mieruka.cli", "serve", "--config", config, "--port", str(self.port),
                        *args], log=self.log, env=dict(os.environ, **(env or {})), port=self.port, timeout_s=60)
            wait_for(self._healthy, 60, 0.1, what="serve /healthz")
        except BaseException:
            self.stop()
            raise RuntimeError(f"serve did not start: {self.log.read_text()}") from None

    def _healthy(self) -> bool:
        try:
            return httpx.get(self.url + "/healthz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False


METER_TOML = """
[[meters]]
id = "pm-main"
name = "受電盤"
model = "sdm630"
host = "127.0.0.1"
port = 5020
[[meters.channels]]
id = "main_power"
register = "total_power"
quantity = "power_kw"
equipment_kind = "incomer"
[[meters.channels]]
id = "main_energy"
register = "import_energy"
quantity = "energy_kwh"
"""


def loaded_site(tmp: Path, language: str = "ja", rate: str = "1000/second", days: int = 14,
                extra: str = ""):
    """Config + recording + the recording loaded into the configured (embedded) store.
    `extra` is appended to the config (e.g. METER_TOML: a metered channel beside the
    recording's channels, which then have no meter in the config)."""
    from mieruka.recording import read_recording
    from mieruka.service.replay import load_recording
    from mieruka.site import load_site
    from mieruka.store.base import open_store
    cfg_path = write_config(tmp, language=language, rate=rate, extra=extra)
    rec_path = make_recording(tmp / "rec.csv", days=days)
    cfg = load_site(cfg_path)
    store = open_store(cfg)
    load_recording(read_recording(rec_path), cfg, store, progress=False)
    return cfg, store, rec_path


def client(cfg, store, env: dict | None = None):
    from fastapi.testclient import TestClient
    from mieruka.api.app import create_app
    return TestClient(create_app(cfg, store, env=env or {}))


def auth(role: str) -> dict:
    return {"Authorization": f"Bearer {TOKENS[role]}"}
