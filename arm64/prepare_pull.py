"""The x86 side of the ARM64 lane's pull check: small replicas of every seed that publishes ONNX, each with
upstream's own onnx/ set, to be served by the hub stand-in (``python -m testing.hub``) while the emulated
board runs ``rerank-onnx pull`` on each.

Writes OUT/models.lock: the repository's lock with each seed's pull pins re-pointed at the replica's bytes
(the real pins are of the real files), and OUT/seeds.txt: one line per seed, ``NAME ID=REVISION=FOLDER`` (the
stand-in's ``--repo`` argument), in the order given (default: every seed whose lock entry can pull, smallest
first). A file, not stdout: building a replica's onnx/ set prints to stdout.

    python arm64/prepare_pull.py OUT [NAME ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
REPLICA_MAIN = "5" * 40  # served as main when the lock pins no pull revision


def pullable(lock: dict) -> list[str]:
    """Seeds whose upstream repo publishes ONNX graphs (their lock entry has a pull record)."""
    from testing.replicas import SEEDS

    records = {n: lock["models"][n].get("pull") for n in SEEDS}
    return sorted((n for n, pull in records.items() if pull and pull.get("onnx") is not False),
                  key=lambda n: SEEDS[n].params)


def main(argv: list[str]) -> int:
    from testing import replicas
    from testing.hub import Blob

    out = Path(argv[0])
    lock = json.loads((REPO / "models.lock").read_text(encoding="utf-8"))
    specs = []
    for name in argv[1:] or pullable(lock):
        folder = replicas.cached(name, "small", with_onnx=True)
        entry = lock["models"][name]
        pull = entry["pull"]
        files = {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file()}
        pinned = set(pull.get("files") or {}) & set(files)
        pull["files"] = {rel: {"sha256": Blob.of(files[rel]).sha256} for rel in sorted(pinned | {"tokenizer.json"})}
        specs.append(f"{name} {entry['repo']}={pull.get('revision') or REPLICA_MAIN}={folder}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "models.lock").write_text(json.dumps(lock, indent=1), encoding="utf-8")
    (out / "seeds.txt").write_text("\n".join(specs) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
