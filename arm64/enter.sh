#!/usr/bin/env bash
# Mount what the guest needs and chroot into it. Meant to run inside `unshare --mount` (see in_root in
# lib.sh): the mounts below live only in that private namespace.
#   enter.sh ROOT CPUINFO QEMU_CPU WORKDIR|- cmd args...
set -euo pipefail
root=$1 cpuinfo=$2 qemu_cpu=$3 workdir=$4
shift 4

mount --bind /dev "$root/dev"
mount -t sysfs sysfs "$root/sys"
mount -t proc proc "$root/proc"
# Trap 1: qemu-user does not emulate /proc/cpuinfo; the host's x86 one crashes onnxruntime's CPU probe.
# An aarch64 file over it is also how the runtime's detection is shown a Pi 5 or a Graviton.
mount --bind "$cpuinfo" "$root/proc/cpuinfo"
if [[ $workdir != - ]]; then
  mkdir -p "$root/lane"
  mount --bind "$workdir" "$root/lane"
fi

# qemu writes a guest core file into the current folder (the root's /) on a crash: hundreds of MB in
# the cache. RERANKER_ARM64_CORE=1 keeps them, for gdb-multiarch (see ORT-CORTEX-A72.md).
[[ ${RERANKER_ARM64_CORE:-0} == 1 ]] || ulimit -c 0

# A clean environment: the host's PIP_*/PYTHON* settings point at folders that do not exist in the root.
exec env -i \
  HOME=/root LANG=C.UTF-8 TERM=dumb \
  PATH=/opt/lane/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
  QEMU_CPU="$qemu_cpu" \
  chroot "$root" "$@"
