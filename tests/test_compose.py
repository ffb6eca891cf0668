"""deploy/compose checked as far as this machine allows (no container engine runs
here): the compose file's structure (services, pinned images, volumes, env files,
loopback-only ports, no secret in it), every ${VAR} it and Grafana's provisioning use
is in .env.example, the stack's site config loads, and every dashboard is valid JSON
whose panels use the provisioned data source and only measurement, field, tag and
quantity names that mieruka's InfluxDB sink writes.  `docker compose config` is run
too where it works."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from helpers.demo import REPO
from mieruka.quantities import QUANTITIES
from mieruka.site import load_site
from mieruka.store.influx import TAG_KEYS

COMPOSE = REPO / "deploy" / "compose"
SERVICES = {"mosquitto", "influxdb", "grafana", "mieruka-collect", "mieruka-serve"}
DASHBOARDS = {"site-overview", "breakers", "compressed-air", "demand", "co2-by-month"}
_VAR = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(:?-[^}]*)?\}")


def _compose() -> dict:
    return yaml.safe_load((COMPOSE / "compose.yaml").read_text("utf-8"))


def _env_example() -> dict[str, str]:
    out = {}
    for line in (COMPOSE / ".env.example").read_text("utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            k, v = line.split("=", 1)
            out[k] = v
    return out


def test_compose_services_images_volumes_ports():
    c = _compose()
    assert SERVICES <= set(c["services"])
    for name, s in c["services"].items():
        if "build" in s:
            df = (COMPOSE / s["build"]["context"] / s["build"]["dockerfile"]).resolve()
            assert df.is_file(), name
            for line in df.read_text().splitlines():
                if line.startswith("FROM "):
                    image = line.split()[1]
                    assert re.search(r":\d+(\.\d+)+", image), f"Dockerfile base image not pinned: {image}"
            assert re.search(r"^USER (?!root)\w+", df.read_text(), re.M), "container must not run as root"
            ctx = (COMPOSE / s["build"]["context"]).resolve()
            for line in df.read_text().splitlines():      # what the image copies exists in the context
                if line.startswith("COPY ") and "--from" not in line:
                    for src in line.split()[1:-1]:
                        assert (ctx / src).exists(), f"Dockerfile: COPY {src}: not in the build context"
        else:
            assert re.fullmatch(r"[\w./-]+:\d+(\.\d+)+(-[\w.]+)?", s["image"]), f"{name}: image not pinned: {s['image']}"
        for p in s.get("ports", []):
            assert str(p).startswith("127.0.0.1:"), f"{name}: port {p} must be published on loopback only"
        for v in s.get("volumes", []):
            src = v.split(":")[0]
            if src.startswith("."):
                assert (COMPOSE / src).exists(), f"{name}: bind mount {src} does not exist"
            else:
                assert src in c["volumes"], f"{name}: volume {src} not declared"
        for ef in s.get("env_file", []):
            path = ef["path"] if isinstance(ef, dict) else ef
            assert path == ".env" and (COMPOSE / ".env.example").is_file()
        for dep in s.get("depends_on", {}) or {}:
            assert dep in c["services"], f"{name}: depends on unknown {dep}"
    collect = c["services"]["mieruka-collect"]["command"]
    assert collect[:2] == ["mieruka", "collect"] and c["services"]["mieruka-serve"]["command"][:2] == ["mieruka", "serve"]


def test_every_variable_is_in_env_example_and_no_secret_is_committed():
    env = _env_example()
    texts = [(COMPOSE / "compose.yaml").read_text("utf-8"), (COMPOSE / "mieruka" / "site.toml").read_text("utf-8")]
    texts += [p.read_text("utf-8") for p in (COMPOSE / "grafana" / "provisioning").rglob("*.yaml")]
    for text in texts:
        for name, default in _VAR.findall(text):
            if name in _compose_env():
                continue        # set in compose.yaml itself
            assert name in env or default, f"${{{name}}} is used but not in .env.example"
    for k, v in env.items():
        if re.search(r"PASSWORD|TOKEN", k):
            assert "CHANGE-ME" in v, f".env.example: {k} must be a placeholder"
    assert ".env" in (REPO / ".gitignore").read_text().split() or ".env" in (COMPOSE / ".gitignore").read_text().split()


def _compose_env() -> dict[str, str]:
    """The environment compose gives the mieruka containers, interpolated from .env.example."""
    env = _env_example()
    raw = _compose()["services"]["mieruka-collect"]["environment"]
    return {k: _VAR.sub(lambda m: env.get(m.group(1), (m.group(2) or ":-")[2:]), str(v)) for k, v in raw.items()}


def test_stack_site_config_loads_and_writes_what_the_dashboards_read():
    env = _compose_env()
    assert "CHANGE-ME" in env["MIERUKA_INFLUX_TOKEN"]
    cfg = load_site(COMPOSE / "mieruka" / "site.toml", env=env)
    assert cfg.storage.backend == "influxdb" and cfg.storage.influxdb.api == "v2"
    assert cfg.storage.influxdb.measurement == "energy"
    dot_env = _env_example()
    assert cfg.storage.influxdb.bucket == dot_env["INFLUX_BUCKET"] and cfg.storage.influxdb.org == dot_env["INFLUX_ORG"]
    assert cfg.storage.influxdb.token == dot_env["INFLUX_TOKEN"]
    assert [m.host for m in cfg.meters if m.protocol == "modbus_tcp"][0] == "simulator"


def _datasource_uid() -> str:
    ds = yaml.safe_load((COMPOSE / "grafana/provisioning/datasources/influxdb.yaml").read_text())["datasources"]
    assert len(ds) == 1 and ds[0]["type"] == "influxdb" and ds[0]["jsonData"]["version"] == "Flux"
    return ds[0]["uid"]


def _walk_datasources(node):
    if isinstance(node, dict):
        if isinstance(node.get("datasource"), dict):
            yield node["datasource"]
        for v in node.values():
            yield from _walk_datasources(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk_datasources(v)


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_json_uses_the_provisioned_source_and_real_names(name):
    uid = _datasource_uid()
    d = json.loads((COMPOSE / "grafana/dashboards" / f"{name}.json").read_text("utf-8"))
    assert d["uid"].startswith("mieruka-") and d["title"] and d["panels"]
    assert all(ds["uid"] == uid for ds in _walk_datasources(d))
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["measurement"]["query"] == "energy" and variables["bucket"]["query"] == "mieruka"
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    queries = [t["query"] for p in d["panels"] for t in p["targets"]]
    queries += [v["query"] for v in variables.values() if v["type"] == "query"]
    assert queries
    for flux in queries:
        assert 'from(bucket: "${bucket}")' in flux or "schema.tagValues" in flux
        assert flux.count("(") == flux.count(")") and flux.count("{") == flux.count("}"), flux
        for m in re.findall(r'_measurement == "([^"]+)"', flux):
            assert m == "${measurement}"
        for f in re.findall(r'_field == "([^"]+)"', flux):
            assert f in ("value", "quality")
        for qn in re.findall(r'quantity == "([^"]+)"', flux):
            assert qn in QUANTITIES, qn
        for tag in re.findall(r"\br\.([a-z_]+)\b", flux):
            assert tag in TAG_KEYS or tag in ("_measurement", "_field", "_value", "_time") or tag in QUANTITIES, tag
        for var in re.findall(r"\$\{(\w+)", flux):
            assert var in variables, f"{name}: ${{{var}}} is not a dashboard variable"
        for ref in re.findall(r"\$\{(\w+):json\}", flux):
            assert variables[ref]["type"] == "query"


def test_dashboards_are_what_the_generator_writes(tmp_path):
    """The committed JSON is the generator's output (no hand edits drifting from it)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("make_dashboards", COMPOSE / "grafana" / "make_dashboards.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.OUT = tmp_path
    mod.main()
    assert {p.stem for p in tmp_path.glob("*.json")} == DASHBOARDS
    for p in tmp_path.glob("*.json"):
        assert p.read_text("utf-8") == (COMPOSE / "grafana/dashboards" / p.name).read_text("utf-8"), p.name


def test_docker_compose_config_where_available(tmp_path):
    """`docker compose config` parses and interpolates the file (needs the compose plugin)."""
    docker = shutil.which("docker")
    if not docker or subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("no `docker compose` on this machine (the structure is checked by the tests above)")
    shutil.copytree(COMPOSE, tmp_path / "compose")
    shutil.copy(tmp_path / "compose" / ".env.example", tmp_path / "compose" / ".env")
    r = subprocess.run([docker, "compose", "-f", str(tmp_path / "compose" / "compose.yaml"), "config", "--quiet"],
                       capture_output=True, text=True, cwd=tmp_path / "compose")
    assert r.returncode == 0, r.stderr
