"""Fixed real pairs and the measures that decide whether an exported graph is accepted.

Queries are Debian package synopses, English and Japanese; each has a group of passages (its own
long description among others), a quarter of them long enough to be truncated at the model's limit.
fp32 must match PyTorch within a tolerance; int8 is judged by how well it keeps the fp32 ranking:
Spearman over all pairs, NDCG@10 and top-1 agreement per query (the fp32 order is the truth).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from reranker_onnx.agreement import INT8_MIN_NDCG, PAIRS_DIR, ranking_agreement

from .debian import Language, read_descriptions

FP32_TOLERANCE = 1e-4  # max |Δ logit| between the ONNX graph and the PyTorch reference
INT8_MIN_NDCG_RATIO = INT8_MIN_NDCG  # one gate for the export and for `rerank-onnx pull`
__all__ = ["FP32_TOLERANCE", "INT8_MIN_NDCG_RATIO", "ValidationSet", "max_length_pairs", "ranking_agreement",
           "validation_set"]


@dataclass(frozen=True)
class ValidationSet:
    pairs: list[tuple[str, str]]
    groups: list[list[int]]  # indices into pairs, one list per query
    languages: tuple[str, ...]


def _stable_order(keys: list[str], salt: str) -> list[int]:
    return sorted(range(len(keys)), key=lambda i: hashlib.sha256(f"{salt}:{keys[i]}".encode()).digest())


def validation_set(
    languages: tuple[Language, ...] = ("en", "ja"), queries_per_language: int = 12, group_size: int = 16
) -> ValidationSet:
    """Deterministic query groups of mixed lengths: short bodies, typical ones, and long concatenations."""
    pairs: list[tuple[str, str]] = []
    groups: list[list[int]] = []
    for lang in languages:
        docs = read_descriptions(lang)
        order = _stable_order([d.md5 for d in docs], f"validation-{lang}")
        queries, pool = order[:queries_per_language], order[queries_per_language:]
        cursor = 0
        for q in queries:
            group = [docs[q].body]
            while len(group) < group_size:
                if len(group) % 4 == 3:  # long passage: several descriptions, truncated at max_length
                    group.append("\n\n".join(docs[i].body for i in pool[cursor : cursor + 12]))
                    cursor += 12
                else:
                    group.append(docs[pool[cursor]].body)
                    cursor += 1
            start = len(pairs)
            pairs.extend((docs[q].synopsis, p) for p in group)
            groups.append(list(range(start, len(pairs))))
    return ValidationSet(pairs=pairs, groups=groups, languages=tuple(languages))


def max_length_pairs(tokenizer_file: Path, languages: tuple[str, ...], max_length: int) -> list[tuple[str, str]]:
    """One pair per language whose passage runs past ``max_length`` tokens, so the fp32 check sees the
    longest input the graph takes (validation_set's long passages stop at a few thousand tokens)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    pairs = []
    for lang in languages:
        docs = read_descriptions(lang)  # type: ignore[arg-type]
        order = _stable_order([d.md5 for d in docs], f"max-length-{lang}")
        query, bodies, count = docs[order[0]].synopsis, [docs[i].body for i in order[1:]], 8
        while len(tokenizer.encode(query, "\n\n".join(bodies[:count])).ids) <= max_length and count < len(bodies):
            count *= 2
        pairs.append((query, "\n\n".join(bodies[:count])))
    return pairs


# The pairs `rerank-onnx pull` measures int8 against fp32 with on the device: fewer than the export's, and
# long passages cut to SHIPPED_PASSAGE_CHARS (still past 512 tokens in both languages), so the package stays small.
SHIPPED_QUERIES, SHIPPED_GROUP_SIZE = 8, 12
SHIPPED_PASSAGE_CHARS = {"en": 3000, "ja": 1200}


def write_shipped_pairs(directory: Path = PAIRS_DIR) -> list[Path]:
    """Write ``pairs-en.json`` and ``pairs-ja.json`` for the runtime package (``python -m export.validation``)."""
    written = []
    for lang in ("en", "ja"):
        vset = validation_set((lang,), SHIPPED_QUERIES, SHIPPED_GROUP_SIZE)  # type: ignore[arg-type]
        groups = [{"query": vset.pairs[g[0]][0], "passages": [vset.pairs[i][1][: SHIPPED_PASSAGE_CHARS[lang]] for i in g]}
                  for g in vset.groups]
        data = {
            "source": f"Debian 12 bookworm main i18n Translation-{lang} (shared/data/debian): package synopses as "
                      "queries, long descriptions as passages; the descriptions' own free licences apply",
            "made_by": "python -m export.validation",
            "groups": groups,
        }
        path = Path(directory) / f"pairs-{lang}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_shipped_pairs():
        print(written_path)
