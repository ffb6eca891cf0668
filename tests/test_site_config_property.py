"""Any site config, however wrong its types and keys, loads or fails with one
ConfigError naming the file: never another exception (a traceback for the user).
Starts from the shipped demo config and replaces one value, anywhere, with
something hostile (wrong type, inf/nan, huge numbers, Japanese keys, nesting)."""
from __future__ import annotations

import copy
import tomllib
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

from mieruka.errors import ConfigError
from mieruka.site import parse_site

ROOT = Path(__file__).resolve().parents[1]
BASE = tomllib.loads((ROOT / "config/examples/demo-site.toml").read_text("utf-8"))
ENV = {"MIERUKA_DATA_DIR": "/tmp/mieruka-property"}

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["", "電力", "主幹", "Mars/Olympus", "-1", "1e400", "${NOPE}", "08:00-07:00", "../../etc"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)), max_leaves=6)


def _paths(node, prefix=()):
    """Every place in the document a value can be swapped (dict keys and list items)."""
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


PATHS = [p for p in _paths(BASE) if p]


def _replace(doc, path, value):
    node = doc
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PATHS), values, st.one_of(st.none(), st.text(min_size=1, max_size=6)))
def test_any_replaced_value_loads_or_gives_a_config_error(path, value, extra_key):
    doc = copy.deepcopy(BASE)
    _replace(doc, path, value)
    if extra_key is not None:            # an unknown (maybe Japanese) key beside it
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        if isinstance(parent, dict):
            parent.setdefault(extra_key, 1)
    try:
        parse_site(doc, "site.toml", ENV, Path("/tmp/site.toml"))
    except ConfigError as e:
        assert str(e).startswith("site.toml"), str(e)


MAP_BASE = tomllib.loads((ROOT / "config/examples/import-steel-industry.toml").read_text("utf-8"))
MAP_PATHS = [p for p in _paths(MAP_BASE) if p]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(MAP_PATHS), values)
def test_any_replaced_value_in_an_import_mapping_validates_or_names_the_key(path, value):
    """The same for `mieruka import` mappings: pydantic's error is turned into the
    project's one-line message without an exception of its own."""
    from pydantic import ValidationError

    from mieruka.importer.mapping import Mapping
    from mieruka.site import format_validation_error
    doc = copy.deepcopy(MAP_BASE)
    _replace(doc, path, value)
    try:
        Mapping.model_validate(doc)
    except ValidationError as e:
        msg = format_validation_error(e, "map.toml", doc)
        assert msg.startswith("map.toml"), msg
    except ValueError as e:        # validators may raise plain ValueError outside pydantic: must not happen
        raise AssertionError(f"escaped the validation: {e!r}") from None
