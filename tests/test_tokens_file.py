"""`[api] tokens_file`: API token hashes kept in their own mode-0600 file (what
deploy/install.sh sets up in /etc/mieruka/tokens.toml) are loaded with the config;
a file others may read, a bad entry or a missing file is a one-line error."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from mieruka.errors import ConfigError
from mieruka.site import load_site

H = hashlib.sha256(b"secret-token").hexdigest()


def _site(tmp_path, tokens_text: str | None, mode: int = 0o600):
    (tmp_path / "site.toml").write_text('[site]\nname = "t"\n[api]\ntokens_file = "tokens.toml"\n'
                                        f'[[api.tokens]]\nname = "inline"\nsha256 = "{"0" * 64}"\n', "utf-8")
    if tokens_text is not None:
        p = tmp_path / "tokens.toml"
        p.write_text(tokens_text, "utf-8")
        os.chmod(p, mode)
    return tmp_path / "site.toml"


def test_tokens_file_adds_tokens(tmp_path):
    cfg = load_site(_site(tmp_path, f'[[tokens]]\nname = "energy-manager"\nrole = "admin"\nsha256 = "{H}"\n'))
    assert [(t.name, t.role) for t in cfg.api.tokens] == [("inline", "read"), ("energy-manager", "admin")]


@pytest.mark.parametrize("text, mode, message", [
    (f'[[tokens]]\nname = "a"\nsha256 = "{H}"\n', 0o644, "readable or writable by others"),
    ('[[tokens]]\nname = "a"\nsha256 = "not-a-hash"\n', 0o600, r"tokens.toml: line 3: tokens\[0\]\.sha256"),
    (f'[[tokens]]\nname = "inline"\nsha256 = "{H}"\n', 0o600, "'inline' is used twice"),
    ('[[tokens]\n', 0o600, "tokens.toml: invalid TOML"),
    (None, 0o600, "api.tokens_file: no such file"),
])
def test_bad_tokens_file_is_one_line_error(tmp_path, text, mode, message):
    site = _site(tmp_path, text, mode)
    with pytest.raises(ConfigError, match=message):
        load_site(site)
    r = subprocess.run([sys.executable, "-m", "mieruka.cli", "check", "--config", str(site)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr
