"""The demo site config (config/examples/demo-site.toml) pointed at a test's port and data dir."""
from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEMO_SITE = REPO / "config" / "examples" / "demo-site.toml"


def demo_site(port: int, data_dir: Path, text_edit=None):
    """The demo site config with its Modbus port and data dir set (optionally edited text)."""
    from mieruka.site import load_site, parse_site
    env = {"MIERUKA_MODBUS_PORT": str(port), "MIERUKA_DATA_DIR": str(data_dir)}
    if text_edit is None:
        return load_site(DEMO_SITE, env=env)
    import tomllib
    text = text_edit(DEMO_SITE.read_text("utf-8"))
    return parse_site(tomllib.loads(text), str(DEMO_SITE), env, DEMO_SITE)
