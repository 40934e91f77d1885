"""The x86 side of the ARM64 lane's pull check: a seed replica with upstream's own onnx/ set, to be served
by the hub stand-in (``python -m testing.hub``) while the emulated board runs ``rerank-onnx pull``.

Writes OUT/models.lock: the repository's lock with the seed's pull pins re-pointed at the replica's bytes
(the real pins are of the real files). Prints the stand-in's ``--repo ID=REVISION=FOLDER`` argument.

    python arm64/prepare_pull.py OUT [NAME]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SEED = "jina-reranker-v1-tiny-en"  # the smallest upstream set with two-input graphs
REPLICA_MAIN = "5" * 40  # served as main when the lock pins no pull revision


def main(argv: list[str]) -> int:
    from testing import replicas
    from testing.hub import Blob

    out, name = Path(argv[0]), (argv[1] if len(argv) > 1 else SEED)
    folder = replicas.cached(name, "small", with_onnx=True)
    lock = json.loads((REPO / "models.lock").read_text(encoding="utf-8"))
    entry = lock["models"][name]
    pull = entry["pull"]
    revision = pull.get("revision") or REPLICA_MAIN
    files = {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file()}
    pinned = set(pull.get("files") or {}) & set(files)
    pull["files"] = {rel: {"sha256": Blob.of(files[rel]).sha256} for rel in sorted(pinned | {"tokenizer.json"})}
    out.mkdir(parents=True, exist_ok=True)
    (out / "models.lock").write_text(json.dumps(lock, indent=1), encoding="utf-8")
    print(f"{entry['repo']}={revision}={folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
