#!/usr/bin/env bash
# Install or upgrade mieruka as two systemd services on a Debian/Ubuntu gateway (amd64, arm64).
#
#   sudo bash deploy/install.sh                      # from this source tree (needs pip's index)
#   sudo bash deploy/install.sh --wheelhouse DIR     # offline, from deploy/wheelhouse.sh's output
#   sudo bash deploy/install.sh --root DIR           # everything under DIR (tests, trials): no systemctl
#
# What it does (idempotent: running it again upgrades and keeps config, tokens and data):
#   - system user `mieruka` (group mieruka, also in dialout for RS-485 adapters)
#   - venv in /opt/mieruka/venv with mieruka and its dependencies (upgraded in place)
#   - /etc/mieruka/site.toml from the annotated example (only if missing; the newest example
#     is always written beside it as site.toml.example), tokens.toml (0600, owner mieruka),
#     mieruka.env (0600, root: secrets for ${VAR} in site.toml)
#   - /var/lib/mieruka (0750, owner mieruka): embedded store and durable buffer
#   - mieruka-collect.service and mieruka-serve.service, checked with systemd-analyze verify;
#     enabled, and restarted if they were running (after `mieruka check` passes on the config)
# The embedded store migrates its schema itself when the new collector opens it.
set -euo pipefail

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "install.sh: error: $*" >&2; exit 2; }
say() { echo "install.sh: $*"; }

ROOT="" WHEELHOUSE="" PYTHON="${PYTHON:-/usr/bin/python3}"
SRC="$(cd "$(dirname "$0")/.." && pwd)"
while [ $# -gt 0 ]; do
    case "$1" in
        --root) ROOT="${2:?--root needs a directory}"; shift 2 ;;
        --root=*) ROOT="${1#*=}"; shift ;;
        --wheelhouse) WHEELHOUSE="${2:?--wheelhouse needs a directory}"; shift 2 ;;
        --wheelhouse=*) WHEELHOUSE="${1#*=}"; shift ;;
        --python) PYTHON="${2:?--python needs an interpreter}"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
if [ -n "$ROOT" ]; then
    mkdir -p "$ROOT"
    ROOT="$(cd "$ROOT" && pwd)"
fi
PREFIX="$ROOT/opt/mieruka" ETC="$ROOT/etc/mieruka" DATA="$ROOT/var/lib/mieruka"
UNITS="$ROOT/etc/systemd/system"
USER_NAME=mieruka

# ---------------------------------------------------------------- checks
if [ -r /etc/os-release ]; then
    . /etc/os-release
    case " ${ID:-} ${ID_LIKE:-} " in
        *" debian "*|*" ubuntu "*) ;;
        *) say "warning: ${PRETTY_NAME:-this system} is not Debian/Ubuntu; continuing" ;;
    esac
fi
ARCH="$(dpkg --print-architecture 2>/dev/null || uname -m)"
case "$ARCH" in amd64|arm64|x86_64|aarch64) ;; *) say "warning: architecture $ARCH is not tested (amd64, arm64 are)";; esac
command -v "$PYTHON" >/dev/null || die "$PYTHON not found (apt-get install python3)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "$PYTHON is $("$PYTHON" -V 2>&1); mieruka needs Python 3.11 or newer (Debian 12, Ubuntu 24.04)"
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null \
    || die "$PYTHON cannot make a venv: apt-get install python3-venv"
AS_ROOT=0; [ "$(id -u)" = 0 ] && AS_ROOT=1
[ "$AS_ROOT" = 1 ] || [ -n "$ROOT" ] || die "run as root (sudo), or use --root DIR for a trial install"
if [ -n "$WHEELHOUSE" ]; then
    [ -d "$WHEELHOUSE" ] || die "--wheelhouse $WHEELHOUSE: no such directory"
    WHEELHOUSE="$(cd "$WHEELHOUSE" && pwd)"
    ls "$WHEELHOUSE"/mieruka-*.whl >/dev/null 2>&1 || die "--wheelhouse $WHEELHOUSE: no mieruka-*.whl (make it with deploy/wheelhouse.sh)"
else
    [ -f "$SRC/pyproject.toml" ] || die "$SRC is not the mieruka source tree (or give --wheelhouse)"
fi

# ---------------------------------------------------------------- user
if [ "$AS_ROOT" = 1 ]; then
    if ! getent group "$USER_NAME" >/dev/null; then groupadd --system "$USER_NAME"; fi
    if ! getent passwd "$USER_NAME" >/dev/null; then
        useradd --system --gid "$USER_NAME" --home-dir /var/lib/mieruka --no-create-home \
            --shell /usr/sbin/nologin --comment "mieruka energy metering" "$USER_NAME"
        say "created system user $USER_NAME"
    fi
    if getent group dialout >/dev/null; then usermod -a -G dialout "$USER_NAME"; fi
    OWN() { chown "$@"; }
else
    say "warning: not root: no user created, files stay owned by $(id -un)"
    OWN() { :; }
fi

# ---------------------------------------------------------------- directories
install -d -m 0755 "$PREFIX" "$PREFIX/share/doc" "$UNITS"
install -d -m 0750 "$ETC" "$DATA"
OWN "root:$USER_NAME" "$ETC"
OWN "$USER_NAME:$USER_NAME" "$DATA"

# ---------------------------------------------------------------- venv
PYVER="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if [ -x "$PREFIX/venv/bin/python" ] && [ "$("$PREFIX/venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" != "$PYVER" ]; then
    say "Python changed to $PYVER: making the venv again"
    rm -rf "$PREFIX/venv"
fi
if [ ! -x "$PREFIX/venv/bin/python" ]; then
    "$PYTHON" -m venv "$PREFIX/venv"
fi
PIP=("$PREFIX/venv/bin/python" -m pip --disable-pip-version-check --no-input -q)
if [ -n "$WHEELHOUSE" ]; then
    # offline: only the wheelhouse, never an index (newest mieruka wheel in it)
    WHEEL="$(ls -t "$WHEELHOUSE"/mieruka-*.whl | head -n 1)"
    "${PIP[@]}" install --no-index --find-links "$WHEELHOUSE" --upgrade "$WHEEL"
    # the version number may not change between builds: put this build's files in place
    "${PIP[@]}" install --no-index --find-links "$WHEELHOUSE" --force-reinstall --no-deps "$WHEEL"
else
    "${PIP[@]}" install --upgrade "$SRC"
    "${PIP[@]}" install --force-reinstall --no-deps "$SRC"
fi
VERSION="$("$PREFIX/venv/bin/mieruka" --version)" || die "the installed mieruka does not start"
say "installed $VERSION in $PREFIX/venv"
install -m 0644 "$SRC/docs/operations.md" "$PREFIX/share/doc/operations.md" 2>/dev/null || true

# ---------------------------------------------------------------- config (never overwritten)
# the shipped files name the standard paths; --root moves them under DIR
# (through markers, so that a DIR containing one of the paths is not rewritten twice)
sed_esc() { printf '%s' "$1" | sed -e 's/[\\&|]/\\&/g'; }
render() {
    sed -e "s|/opt/mieruka|@@PREFIX@@|g" -e "s|/etc/mieruka|@@ETC@@|g" -e "s|/var/lib/mieruka|@@DATA@@|g" \
        -e "s|@@PREFIX@@|$(sed_esc "$PREFIX")|g" -e "s|@@ETC@@|$(sed_esc "$ETC")|g" -e "s|@@DATA@@|$(sed_esc "$DATA")|g" "$1"
}
render "$SRC/deploy/site.example.toml" > "$ETC/site.toml.example"
chmod 0644 "$ETC/site.toml.example"
if [ ! -e "$ETC/site.toml" ]; then
    install -m 0640 "$ETC/site.toml.example" "$ETC/site.toml"
    OWN "root:$USER_NAME" "$ETC/site.toml"
    FIRST_INSTALL=1
    say "wrote $ETC/site.toml: add your meters there (see the comments)"
else
    FIRST_INSTALL=0
    say "kept $ETC/site.toml (the newest annotated example is $ETC/site.toml.example)"
fi
if [ ! -e "$ETC/tokens.toml" ]; then
    # a first admin token, shown once; only its hash is kept
    # the token comes on stderr, the TOML block on stdout
    TOKEN_LINES="$("$PREFIX/venv/bin/mieruka" serve --hash-token --for-tokens-file --token-name admin --role admin 2>&1)"
    TOKEN="$(printf '%s\n' "$TOKEN_LINES" | sed -n 's/^token: *//p')"
    HASH="$(printf '%s\n' "$TOKEN_LINES" | sed -n 's/.*sha256 = "\([0-9a-f]*\)".*/\1/p')"
    umask 077
    { cat "$SRC/deploy/tokens.example.toml"
      printf '\n[[tokens]]\nname = "admin"\nrole = "admin"\nsha256 = "%s"   # made by install.sh on %s\n' \
          "$HASH" "$(date -u +%Y-%m-%dT%H:%MZ)"; } > "$ETC/tokens.toml"
    umask 022
    chmod 0600 "$ETC/tokens.toml"
    OWN "$USER_NAME:$USER_NAME" "$ETC/tokens.toml"
    say "first API token (role admin; shown only now, keep it safe): $TOKEN"
else
    # the service user reads it; nobody else may (the config refuses a tokens file others can read)
    chmod 0600 "$ETC/tokens.toml"
    OWN "$USER_NAME:$USER_NAME" "$ETC/tokens.toml"
    say "kept $ETC/tokens.toml"
fi
if [ ! -e "$ETC/mieruka.env" ]; then
    install -m 0600 "$SRC/deploy/mieruka.example.env" "$ETC/mieruka.env"
else
    chmod go-rwx "$ETC/mieruka.env"
fi

# ---------------------------------------------------------------- units (ours: always replaced)
for unit in mieruka-collect.service mieruka-serve.service; do
    render "$SRC/deploy/systemd/$unit" > "$UNITS/$unit.tmp"
    chmod 0644 "$UNITS/$unit.tmp"
    mv -f "$UNITS/$unit.tmp" "$UNITS/$unit"
done
if command -v systemd-analyze >/dev/null; then
    # the units name absolute paths (under --root too), so they are verified against this system
    if ! out="$(systemd-analyze verify "$UNITS/mieruka-collect.service" "$UNITS/mieruka-serve.service" 2>&1)" || [ -n "$out" ]; then
        printf '%s\n' "$out" >&2
        die "systemd-analyze verify found problems in the units (above)"
    fi
    say "systemd-analyze verify: units clean"
fi

# ---------------------------------------------------------------- services
CHECK_OK=1
if [ "$AS_ROOT" = 1 ] && [ -z "$ROOT" ]; then
    runuser -u "$USER_NAME" -- "$PREFIX/venv/bin/mieruka" check --config "$ETC/site.toml" >/dev/null 2>"$PREFIX/.check.err" \
        || { CHECK_OK=0; say "warning: $ETC/site.toml does not pass \`mieruka check\`:"; cat "$PREFIX/.check.err" >&2; }
    rm -f "$PREFIX/.check.err"
fi
if [ -z "$ROOT" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable mieruka-collect.service mieruka-serve.service >/dev/null 2>&1
    if [ "$CHECK_OK" = 1 ]; then
        systemctl try-restart mieruka-collect.service mieruka-serve.service
        [ "$FIRST_INSTALL" = 1 ] && say "next: edit $ETC/site.toml, then: sudo systemctl start mieruka-collect mieruka-serve"
    else
        say "services not restarted: fix the config, then: sudo systemctl restart mieruka-collect mieruka-serve"
    fi
else
    say "not starting services (--root install or no systemd running)"
fi
say "done: config $ETC, data $DATA, logs: journalctl -u mieruka-collect -u mieruka-serve"
