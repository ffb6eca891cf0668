#!/usr/bin/env bash
# Install mieruka into .venv and run the demo on the embedded store; ends by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e .
exec .venv/bin/mieruka demo "$@"
