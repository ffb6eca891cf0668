#!/usr/bin/env bash
# Install mieruka into .venv and run the demo on the embedded store; ends by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
source deploy/apt.sh        # apt_get: waits for another apt/dpkg instead of failing at once
# the report's charts draw Japanese labels with Noto Sans CJK JP
if ! ls /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc >/dev/null 2>&1; then
    apt_get update -q && apt_get install -y -q --no-install-recommends fonts-noto-cjk
fi
if [ ! -x .venv/bin/python ]; then
    # Debian's python3 needs python3-venv for `-m venv`
    python3 -c 'import ensurepip' 2>/dev/null || { apt_get update -q && apt_get install -y -q python3-venv; }
    python3 -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -e .
exec .venv/bin/mieruka demo "$@"
