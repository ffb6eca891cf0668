#!/usr/bin/env bash
# Install everything the tests need on a fresh Debian machine (root) and run the whole suite.
# Extra arguments go to pytest, e.g. `bash deploy/test.sh -k co2`.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
source deploy/apt.sh        # apt_get: waits for another apt/dpkg instead of failing at once
missing=$(for p in $(grep -v '^#' deploy/apt-packages.txt); do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then
    apt_get update -q
    apt_get install -y -q --no-install-recommends $missing
fi
# the Debian packages start their services; the tests run their own on free ports
for s in mosquitto influxdb victoria-metrics collectd; do
    $SUDO systemctl disable --now "$s" >/dev/null 2>&1 || true
done
if [ ! -x .venv/bin/python ]; then
    # Debian's python3 needs python3-venv for `-m venv`
    python3 -c 'import ensurepip' 2>/dev/null || { apt_get update -q && apt_get install -y -q python3-venv; }
    python3 -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -e '.[test,fleet]'
exec .venv/bin/python -m pytest -n 2 "$@"
