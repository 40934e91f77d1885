#!/usr/bin/env bash
# Build (or reuse) the cached arm64 Debian root with a venv holding the runtime's aarch64 wheels.
# Prints the root's path on stdout. Idempotent and safe to interrupt: the root is built in a temporary
# folder beside the cache and renamed into place only when complete; a lock serialises concurrent builds.
#   arm64/build-root.sh
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

need_root
ensure_host_tools

# The root is keyed by its recipe: changing the pins or ROOT_RECIPE builds a fresh one. Bump ROOT_RECIPE
# when a step below changes what ends up in the root (comments and messages need not).
ROOT_RECIPE=1
key=$( (echo "$SUITE $ROOT_RECIPE"; cat "$LANE_DIR/requirements-arm64.txt") | sha256sum | cut -c1-12)
root="$CACHE_DIR/root-$SUITE-$key"
mkdir -p "$CACHE_DIR"

if [[ -f "$root/.lane-complete" ]]; then
  log "reusing $root"
  echo "$root"
  exit 0
fi

exec 9>"$CACHE_DIR/.lock"
flock 9
if [[ -f "$root/.lane-complete" ]]; then # built by another run while we waited
  echo "$root"
  exit 0
fi

# Left-overs of interrupted builds (no mounts can remain: every chroot ran in a private namespace).
rm -rf "$CACHE_DIR"/.tmp-root-*
tmp="$CACHE_DIR/.tmp-root-$key"
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS

# 1. Wheels, downloaded natively on the host (pip resolving under emulation is slow), checked by hash.
wheels="$CACHE_DIR/wheels"
mkdir -p "$wheels"
log "downloading aarch64 wheels into $wheels"
PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS='' python3 -m pip download --quiet --dest "$wheels" \
  "${WHEEL_PLATFORMS[@]}" --only-binary=:all: --python-version 3.11 --implementation cp \
  --no-deps --require-hashes -r "$LANE_DIR/requirements-arm64.txt" \
  || unavailable "cannot download the pinned aarch64 wheels from PyPI"

# 2. The Debian root. A merged mirror cache keeps a rebuild after an interruption short.
mirror=$(host_mirror)
mkdir -p "$CACHE_DIR/debs"
log "debootstrap $SUITE arm64 from $mirror (about 5 min)"
# debootstrap mounts /proc and /sys inside the target: keep those mounts in a private namespace too.
unshare --mount --propagation private debootstrap --arch=arm64 --variant=minbase --cache-dir="$CACHE_DIR/debs" \
  --include=python3,python3-venv,python3-pip,ca-certificates \
  "$SUITE" "$tmp" "$mirror" >"$CACHE_DIR/debootstrap.log" 2>&1 \
  || unavailable "debootstrap failed; see $CACHE_DIR/debootstrap.log"

# So that pip also works by hand inside the root: DNS, and the host's CA bundle (it may hold a proxy CA).
cp -L /etc/resolv.conf "$tmp/etc/resolv.conf"
cp -L /etc/ssl/certs/ca-certificates.crt "$tmp/etc/ssl/host-ca.crt"
printf '[global]\ncert = /etc/ssl/host-ca.crt\n' >"$tmp/etc/pip.conf"

# 3. The venv, installed offline from the verified wheels.
mkdir -p "$tmp/opt/lane/wheels"
cp "$wheels"/*.whl "$tmp/opt/lane/wheels/"
cp "$LANE_DIR/requirements-arm64.txt" "$tmp/opt/lane/"
log "creating the venv and installing wheels (emulated, about 3 min)"
in_root "$tmp" "$LANE_DIR/cpuinfo/pi5.txt" cortex-a76 - -- /bin/sh -ec "
  python3 -m venv $VENV
  $VENV/bin/pip install --quiet --no-index --find-links /opt/lane/wheels \
    --require-hashes -r /opt/lane/requirements-arm64.txt
  rm -rf /opt/lane/wheels
"
mkdir -p "$tmp/lane"
date -u +%FT%TZ >"$tmp/.lane-complete"
mv -T "$tmp" "$root"
trap - EXIT
log "built $root in $((SECONDS - start)) s"
# Roots of older recipes are ~550 MB each; lanes with different pins cannot share one cache anyway.
for old in "$CACHE_DIR"/root-*; do
  if [[ $old != "$root" ]]; then log "removing the outdated $old"; rm -rf "$old"; fi
done
echo "$root"
