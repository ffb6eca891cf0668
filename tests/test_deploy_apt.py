"""deploy/demo.sh and deploy/test.sh wait for another apt or dpkg instead of failing at
once (issue 10, item 13).  Another process holds the dpkg lock for a few seconds; the
lock files are private to a mount namespace, so no apt on this machine is disturbed."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from helpers.demo import REPO

SCRIPT = r"""
set -eu
t=$(mktemp -d)
for f in /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock; do
    : > "$t/${f##*/}"; mount --bind "$t/${f##*/}" "$f"
done
hold() {   # another apt: holds the dpkg frontend lock for $1 s
    python3 -c "import fcntl, sys, time; f = open('/var/lib/dpkg/lock-frontend', 'w'); fcntl.lockf(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(float(sys.argv[1]))" "$1" > "$t/held" &
    until [ -s "$t/held" ]; do sleep 0.05; done
}
source deploy/apt.sh
hold 4
apt_lock_held && echo "lock seen"
if DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-upgrade bash > "$t/plain" 2>&1; then echo "plain: ok"; else echo "plain: failed"; fi
start=$SECONDS
APT_LOCK_WAIT_S=60 apt_get install -y -q --no-upgrade bash > /dev/null
echo "waited $((SECONDS - start))"
wait
"""


@pytest.mark.slow
def test_apt_get_waits_for_the_dpkg_lock(tmp_path):
    if not shutil.which("apt-get") or not shutil.which("unshare"):
        pytest.skip("needs apt-get and unshare (a Debian machine)")
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a private mount namespace here (needs root): {probe.stderr.strip()}")
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "bash", "-c", SCRIPT], cwd=REPO,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "lock seen" in r.stdout
    assert "plain: failed" in r.stdout              # a bare apt-get gives up at once (what demo.sh did)
    waited = int(r.stdout.split("waited ")[1].split()[0])
    assert waited >= 2, r.stdout                   # ours waited for the other one to finish
