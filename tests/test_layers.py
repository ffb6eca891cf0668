"""Data flows one way: every import of every module (at the top AND inside
functions) goes to its own layer or a lower one.  The walk reads the sources
with `ast`, so it also sees imports that only run in a rarely taken branch.

The rule table is LAYERS/ALLOWED below: the one place that says who may import
whom (README "Design" shows the same picture)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# source folder -> installed package (pyproject.toml [tool.setuptools] package-dir)
SOURCES = {"mieruka": "mieruka", "collector": "mieruka.collector", "analytics": "mieruka.analytics",
           "api": "mieruka.api", "simulators": "mieruka.simulators", "config": "mieruka.config"}

# package prefix -> layer; the longest matching prefix wins, "mieruka" alone is core
LAYERS = {
    "mieruka": "core",                 # mieruka/*.py: config, quantities, units, calendar, models, recording, errors
    "mieruka.store": "core",
    "mieruka.importer": "core",        # logger/spreadsheet exports -> recordings
    "mieruka.config": "core",          # data (factor sets, register maps, examples)
    "mieruka.collector": "collector",
    "mieruka.analytics": "analytics",
    "mieruka.simulators": "simulators",
    "mieruka.service": "service",
    "mieruka.reports": "reports",
    "mieruka.api": "api",
    "mieruka.cli": "cli",
    "mieruka.commands": "cli",
}

# layer -> the layers it may import (low -> high:
#   core <- collector, analytics <- simulators <- service, reports <- api, cli)
_CORE = {"core"}
_LOW = _CORE | {"collector", "analytics", "simulators"}
_APP = _LOW | {"service", "reports"}
ALLOWED = {
    "core": _CORE,
    "collector": _CORE | {"collector"},            # not analytics
    "analytics": _CORE | {"analytics"},            # not collector
    "simulators": _LOW,                            # may use collector's register codec
    "service": _APP,
    "reports": _APP,
    "api": _APP | {"api"},
    "cli": _APP | {"api", "cli"},                  # `mieruka serve` starts the API
}


def layer_of(module: str) -> str | None:
    """Layer of a dotted module name (None: not ours, e.g. numpy)."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        hit = LAYERS.get(".".join(parts[:n]))
        if hit is not None:
            return hit
    return None


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT)
    parts = list(rel.with_suffix("").parts)
    parts[0] = SOURCES[parts[0]]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    out = {}
    for folder in SOURCES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            out[_module_name(path)] = path
    return out


def imports_of(module: str, source: str, is_package: bool, known: set[str]) -> list[tuple[str, int]]:
    """(imported module, line) for every import statement anywhere in the source."""
    out = []
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for a in node.names:     # `from mieruka import api` imports the module mieruka.api
                sub = f"{target}.{a.name}"
                out.append((sub if sub in known else target, node.lineno))
    return out


def violations(module: str, source: str, is_package: bool = False, known: set[str] = frozenset()) -> list[str]:
    mine = layer_of(module)
    bad = []
    for target, line in imports_of(module, source, is_package, set(known)):
        theirs = layer_of(target)
        if mine is None or theirs is None:
            continue
        if theirs not in ALLOWED[mine]:
            bad.append(f"{module}:{line}: {mine} imports {target} ({theirs})")
    return bad


def test_every_import_follows_the_layers():
    mods = all_modules()
    assert {"mieruka.service.context", "mieruka.reports.report", "mieruka.api.app",
            "mieruka.analytics.pipeline", "mieruka.collector.runner"} <= set(mods)
    bad = []
    for name, path in mods.items():
        bad += violations(name, path.read_text(encoding="utf-8"), path.name == "__init__.py", set(mods))
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


def test_every_module_has_a_layer():
    missing = [m for m in all_modules() if layer_of(m) is None]
    assert not missing


@pytest.mark.parametrize("module, source", [
    # a lower layer reaching up, even lazily inside a function
    ("mieruka.analytics.fake", "def f():\n    from mieruka.api.app import create_app\n"),
    ("mieruka.service.fake", "def f():\n    from ..api.errors import ApiError\n"),
    ("mieruka.replay_fake", "from .service.context import Context\n"),
    ("mieruka.reports.fake", "import mieruka.commands.replay\n"),
    # the two middle layers do not know each other
    ("mieruka.collector.fake", "from ..analytics import pipeline\n"),
    ("mieruka.analytics.fake", "from mieruka.collector.health import STATUS_FILE\n"),
    # `from package import module` names the module, not the package
    ("mieruka.store.fake", "from .. import service\n"),
])
def test_a_bad_edge_is_caught(module, source):
    known = set(all_modules())
    assert violations(module, source, known=known), "the checker missed a deliberately bad import"


def test_good_edges_pass():
    known = set(all_modules())
    assert not violations("mieruka.api.fake", "from ..service.context import Context\nfrom ..errors import NotFound\n",
                          known=known)
    assert not violations("mieruka.service.fake", "def f():\n    from ..analytics import pipeline\n", known=known)
    assert not violations("mieruka.simulators.fake", "from ..collector import registers\n", known=known)
