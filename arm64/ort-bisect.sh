#!/usr/bin/env bash
# Which onnxruntime aarch64 wheels run a session on an emulated core? For each version: download the
# wheel natively, unpack it beside the tiny probe graphs, and run ort_probe/probe.py inside the arm64
# root under the board's QEMU_CPU. Results go to stdout and to $CACHE/bisect/results-BOARD.jsonl.
#   arm64/ort-bisect.sh BOARD VERSION...      e.g. arm64/ort-bisect.sh pi4 1.20.1 1.21.0
# CPUINFO=FILE shows the guest another /proc/cpuinfo than the board's (to test a mismatched one).
# The x86 side needs the `onnx` package (set PYTHON to an interpreter that has it).
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

(($# >= 2)) || die "usage: $0 BOARD VERSION..."
board=$1
shift
qemu_cpu=$(board_qemu_cpu "$board")
cpuinfo=${CPUINFO:-$(board_cpuinfo "$board")}
python=${PYTHON:-python3}
"$python" -c 'import onnx' 2>/dev/null || die "$python lacks the onnx package; set PYTHON=/path/to/python"

root=$("$LANE_DIR/build-root.sh")
work="$CACHE_DIR/bisect"
mkdir -p "$work/ort" "$CACHE_DIR/ort-wheels"
cp "$LANE_DIR/ort_probe/probe.py" "$work/"
"$python" "$LANE_DIR/ort_probe/make_models.py" "$work/models" >/dev/null

fetch() { # fetch NAME VERSION DEST: download one aarch64 cp311 wheel and unpack it into DEST
  local name=$1 version=$2 dest=$3 whl
  [[ -d $dest ]] && return 0
  PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS='' "$python" -m pip download --quiet --no-deps \
    --dest "$CACHE_DIR/ort-wheels" "${WHEEL_PLATFORMS[@]}" --only-binary=:all: --python-version 3.11 \
    --implementation cp "$name==$version"
  whl=$(ls "$CACHE_DIR/ort-wheels/$name-$version-"*.whl)
  log "$(basename "$whl") sha256 $(sha256sum "$whl" | cut -c1-16)..."
  "$python" -m zipfile -e "$whl" "$dest.part" && mv -T "$dest.part" "$dest"
}
# onnxruntime before 1.19 is built against numpy 1.x; later wheels against numpy 2.
fetch numpy 1.26.4 "$work/numpy1"
fetch numpy 2.4.6 "$work/numpy2"

for version in "$@"; do
  fetch onnxruntime "$version" "$work/ort/$version"
  np_dir=numpy2
  if [[ $(printf '%s\n' "$version" 1.19.0 | sort -V | head -1) != 1.19.0 ]]; then np_dir=numpy1; fi
  log "probing onnxruntime $version on $board (QEMU_CPU=$qemu_cpu)"
  line=$(in_root "$root" "$cpuinfo" "$qemu_cpu" "$work" -- \
    env PYTHONPATH="/lane/ort/$version:/lane/$np_dir" /usr/bin/python3 /lane/probe.py /lane/models)
  printf '{"board": "%s", "qemu_cpu": "%s", "cpuinfo": "%s", "probe": %s}\n' "$board" "$qemu_cpu" \
    "$(basename "$cpuinfo")" "$line" \
    | tee -a "$work/results-$board.jsonl"
done
