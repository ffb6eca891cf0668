# Sourced by deploy/demo.sh and deploy/test.sh.
# apt_get ARGS...: apt-get that waits for another apt or dpkg (unattended-upgrades on a
# fresh machine, a second install in another terminal) instead of failing at once.
# DPkg::Lock::Timeout makes apt wait for the dpkg lock itself; `apt-get update` takes
# the package lists lock, which older apt does not wait for, so a failure while some
# apt lock is still held is retried.  APT_LOCK_WAIT_S bounds the wait (600 s).
SUDO=${SUDO-}
[ -n "$SUDO" ] || [ "$(id -u)" = 0 ] || SUDO="sudo"

apt_lock_held() {
    local f inode
    for f in /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock /var/cache/apt/archives/lock; do
        [ -e "$f" ] || continue
        inode=$(stat -c %i "$f")
        # apt locks with fcntl: held locks are listed in /proc/locks as MAJ:MIN:INODE
        grep -q ":$inode " /proc/locks && return 0
    done
    return 1
}

apt_get() {
    local wait_s=${APT_LOCK_WAIT_S:-600} start=$SECONDS rc
    while true; do
        rc=0
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$wait_s" "$@" || rc=$?
        [ "$rc" = 0 ] && return 0
        if [ $((SECONDS - start)) -lt "$wait_s" ] && apt_lock_held; then
            echo "another apt or dpkg is running; waiting for it (up to ${wait_s} s)..." >&2
            sleep 5
            continue
        fi
        return "$rc"
    done
}
