"""`${VAR}` and `${VAR:-default}` in config values, so secrets and ports stay out of files."""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}")


class MissingVariable(ValueError):
    """A `${VAR}` without default whose variable is not set."""

    def __init__(self, name: str, path: str, loc: tuple[Any, ...] = ()):
        super().__init__(f"environment variable {name} is not set and `${{{name}}}` has no default "
                         f"(write `${{{name}:-default}}` to give one)")
        self.name = name
        self.path = path
        self.loc = loc          # the keys and list indexes of `path`, for finding its line


def expand(value: Any, env: Mapping[str, str] | None = None, path: str = "", loc: tuple[Any, ...] = ()) -> Any:
    """Return ``value`` with every `${VAR}` / `${VAR:-default}` in its strings replaced.

    Works through nested dicts and lists; ``path`` names the key for error messages.
    `${VAR:-x}` uses x when VAR is unset or empty, `${VAR-x}` only when it is unset
    (the shell's rules).  `$${` escapes a literal `${`.
    """
    env = os.environ if env is None else env
    if isinstance(value, str):
        try:
            return _expand_str(value, env, path)
        except MissingVariable as e:
            raise MissingVariable(e.name, path, loc) from None
    if isinstance(value, dict):
        return {k: expand(v, env, f"{path}.{k}" if path else str(k), loc + (k,)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v, env, f"{path}[{i}]", loc + (i,)) for i, v in enumerate(value)]
    return value


def _expand_str(text: str, env: Mapping[str, str], path: str) -> str:
    if "${" not in text:
        return text
    parts = text.split("$${")
    out = []
    for part in parts:
        def sub(m: re.Match[str]) -> str:
            name, op, default = m.group(1), m.group(2), m.group(3)
            val = env.get(name)
            if op == ":-" and not val:
                return default
            if op == "-" and val is None:
                return default
            if val is None:
                raise MissingVariable(name, path)
            return val
        out.append(_PATTERN.sub(sub, part))
    return "${".join(out)
