#!/usr/bin/env bash
# Collect every wheel a gateway needs to install mieruka with no network:
#
#   bash deploy/wheelhouse.sh OUT                 # x86_64 and aarch64 (Debian 12 / Ubuntu 24.04, CPython 3.11)
#   bash deploy/wheelhouse.sh OUT --host-only     # only this machine's platform (quick; tests)
#   bash deploy/wheelhouse.sh OUT --python-version 3.12
#
# then copy OUT to the gateway and run:  sudo bash deploy/install.sh --wheelhouse OUT
# OUT gets mieruka's own wheel, the dependencies' wheels (binary only: a gateway has no
# compiler), requirements.txt, and PLATFORMS.txt saying what was collected.  A dependency
# without a wheel for a platform stops the script and is named (see docs/operations.md).
set -euo pipefail
die() { echo "wheelhouse.sh: error: $*" >&2; exit 2; }
say() { echo "wheelhouse.sh: $*"; }

OUT="" HOST_ONLY=0 PYV=3.11
while [ $# -gt 0 ]; do
    case "$1" in
        --host-only) HOST_ONLY=1; shift ;;
        --python-version) PYV="${2:?}"; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown option '$1'" ;;
        *) [ -z "$OUT" ] || die "one output directory only"; OUT="$1"; shift ;;
    esac
done
[ -n "$OUT" ] || die "usage: wheelhouse.sh OUT [--host-only] [--python-version 3.11]"
SRC="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-python3}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
PIP=("$PY" -m pip --disable-pip-version-check --no-input)

# mieruka itself (pure Python: one wheel for every platform)
rm -f "$OUT"/mieruka-*.whl
"${PIP[@]}" wheel -q --no-deps -w "$OUT" "$SRC"
# its runtime dependencies, as pyproject.toml states them
"$PY" - "$SRC/pyproject.toml" > "$OUT/requirements.txt" <<'PYEOF'
import sys, tomllib
for dep in tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]:
    print(dep)
PYEOF

if [ "$HOST_ONLY" = 1 ]; then
    "${PIP[@]}" download -q --only-binary=:all: -d "$OUT" -r "$OUT/requirements.txt"
    echo "host: $(uname -m), Python $("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" > "$OUT/PLATFORMS.txt"
    say "wheels for this host in $OUT ($(ls "$OUT"/*.whl | wc -l) wheels)"
    exit 0
fi

ABI="cp${PYV/./}"
: > "$OUT/PLATFORMS.txt"
MISSING=()
for arch in x86_64 aarch64; do
    # manylinux2014 (glibc 2.17) up to glibc 2.35: Debian 12 has 2.36, Ubuntu 22.04 2.35
    PLAT=(--platform "manylinux2014_$arch")
    for g in 17 24 26 27 28 31 34 35; do PLAT+=(--platform "manylinux_2_${g}_$arch"); done
    args=(download -q --only-binary=:all: --implementation cp --python-version "$PYV" --abi "$ABI" --abi abi3
          --abi none "${PLAT[@]}" -d "$OUT")
    if ! "${PIP[@]}" "${args[@]}" -r "$OUT/requirements.txt"; then
        # find which requirements have no wheel for this platform
        while read -r req; do
            "${PIP[@]}" "${args[@]}" --no-deps "$req" >/dev/null 2>&1 || MISSING+=("$arch: $req")
        done < "$OUT/requirements.txt"
        [ ${#MISSING[@]} -gt 0 ] || MISSING+=("$arch: a dependency of a dependency (run pip download by hand to see it)")
        continue
    fi
    echo "$arch: CPython $PYV, manylinux2014/manylinux_2_17..2_35" >> "$OUT/PLATFORMS.txt"
done
if [ ${#MISSING[@]} -gt 0 ]; then
    printf '%s\n' "${MISSING[@]}" > "$OUT/MISSING.txt"
    echo "wheelhouse.sh: no binary wheel for:" >&2
    printf '  %s\n' "${MISSING[@]}" >&2
    exit 1
fi
say "wheels for x86_64 and aarch64 in $OUT ($(ls "$OUT"/*.whl | wc -l) wheels, $(du -sh "$OUT" | cut -f1))"
