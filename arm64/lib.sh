# Shared helpers for the ARM64 lane. Sourced by the scripts in arm64/, never run directly.
# shellcheck shell=bash disable=SC2034  # the variables are used by the scripts that source this

LANE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$LANE_DIR/.." && pwd)"
# Outside the repository: the root is ~600 MB and must survive `git clean`.
CACHE_DIR="${RERANKER_ARM64_CACHE:-$HOME/.cache/reranker-onnx/arm64}"
SUITE=bookworm
# The venv inside the root; each run's files appear at /lane (a bind mount, see enter.sh).
VENV=/opt/lane/venv

log() { printf '[arm64] %s\n' "$*" >&2; }
die() { printf '[arm64] error: %s\n' "$*" >&2; exit 1; }
# The host cannot emulate aarch64 at all (not root, no binfmt_misc, no Debian mirror): exit 3, so CI can
# tell "the lane could not start here" from "the lane ran and a check failed" (exit 1).
EXIT_UNAVAILABLE=3
unavailable() { printf '[arm64] cannot emulate aarch64 on this host: %s\n' "$*" >&2; exit "$EXIT_UNAVAILABLE"; }

# Board profiles: the emulated core (QEMU_CPU) and the /proc/cpuinfo the guest sees always go together,
# so the runtime's detection and onnxruntime's kernel choice see the same CPU.
#   pi5       Raspberry Pi 5, Cortex-A76 (ARMv8.2 + dot product). The default: the main edge target, and
#             its features (asimddp, no i8mm, no SVE, no SME) avoid trap 2 of shared/arm64/NOTES.md,
#             where QEMU's default `max` CPU advertises SME and onnxruntime's KleidiAI SME kernels give
#             wrong int8 results under qemu 7.2.
#   graviton2 AWS Graviton2, Neoverse-N1 (same feature set as A76, server core).
#   pi4       Raspberry Pi 4, Cortex-A72 (ARMv8.0, no dot product). See arm64/ORT-CORTEX-A72.md.
#   max-nosme QEMU `max` minus SME: exercises the i8mm/SVE kernels (Graviton3-like) without the SME trap.
board_qemu_cpu() {
  case "$1" in
    pi5) echo cortex-a76 ;;
    graviton2) echo neoverse-n1 ;;
    pi4) echo cortex-a72 ;;
    max-nosme) echo 'max,sme=off' ;;
    *) die "unknown board '$1' (choose one of: pi5 graviton2 pi4 max-nosme)" ;;
  esac
}
board_cpuinfo() {
  case "$1" in
    max-nosme) echo "$LANE_DIR/cpuinfo/graviton3.txt" ;;
    *) echo "$LANE_DIR/cpuinfo/$1.txt" ;;
  esac
}

need_root() { [[ $(id -u) -eq 0 ]] || unavailable "must run as root (debootstrap, chroot and mounts need it); try: sudo $0"; }

# Install the host tools from Debian if missing, and make sure the kernel runs aarch64 ELF files via qemu.
ensure_host_tools() {
  local missing=()
  command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
  command -v update-binfmts >/dev/null || missing+=(binfmt-support)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v unshare >/dev/null || missing+=(util-linux)
  if ((${#missing[@]})); then
    log "installing host packages: ${missing[*]}"
    { DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2; } \
      || unavailable "cannot install ${missing[*]} from Debian"
  fi
  if [[ ! -e /proc/sys/fs/binfmt_misc/status ]]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || unavailable "cannot mount binfmt_misc"
  fi
  if [[ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]]; then
    update-binfmts --enable qemu-aarch64 >&2 || unavailable "cannot register qemu-aarch64 with binfmt_misc"
  fi
  # 'F' (fix binary): the kernel keeps the interpreter open, so it need not exist inside the root.
  grep -q '^flags:.*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 \
    || die "qemu-aarch64 binfmt entry lacks the F flag; copy /usr/bin/qemu-aarch64-static into the root"
}

# The Debian mirror this machine's own apt uses (deb822 .sources first, then sources.list).
host_mirror() {
  if [[ -n "${RERANKER_ARM64_MIRROR:-}" ]]; then echo "$RERANKER_ARM64_MIRROR"; return; fi
  local uri
  uri=$(awk '/^URIs:/ {u=$2} /^Suites:/ && / '"$SUITE"'( |$)/ {print u; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  if [[ -z "$uri" && -f /etc/apt/sources.list ]]; then
    uri=$(awk '$1=="deb" && $3=="'"$SUITE"'" {print $2; exit}' /etc/apt/sources.list)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

# Run a command inside ROOT, in a private mount namespace so that every mount disappears with the
# process, even on Ctrl-C or kill -9: nothing to clean up, nothing leaked onto the host.
#   in_root ROOT CPUINFO QEMU_CPU WORKDIR|- -- cmd args...
in_root() {
  local root=$1 cpuinfo=$2 qemu_cpu=$3 workdir=$4
  shift 4
  [[ $1 == -- ]] && shift
  unshare --mount --propagation private "$LANE_DIR/enter.sh" "$root" "$cpuinfo" "$qemu_cpu" "$workdir" "$@"
}

# pip's --platform tags for aarch64 wheels that run on bookworm (glibc 2.36); newer onnxruntime wheels
# are tagged manylinux_2_28 and are invisible to manylinux2014 alone.
WHEEL_PLATFORMS=()
for _tag in manylinux_2_36 manylinux_2_34 manylinux_2_31 manylinux_2_28 manylinux_2_27 manylinux_2_17 manylinux2014; do
  WHEEL_PLATFORMS+=(--platform "${_tag}_aarch64")
done
unset _tag

# What check_arm64.py must detect on each board: "core-name dotprod(yes|no)".
board_expect() {
  case "$1" in
    pi5) echo "Cortex-A76 yes" ;;
    graviton2) echo "Neoverse-N1 yes" ;;
    pi4) echo "Cortex-A72 no" ;;
    max-nosme) echo "Neoverse-V1 yes" ;;
    *) die "unknown board '$1'" ;;
  esac
}
