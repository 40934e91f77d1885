"""Retrieval tasks: a package's synopsis is the query, its long description the one relevant passage.

The corpus is every distinct long description of the language. Two cleaning rules keep the labels
honest: identical passages are stored once (so a "wrong" candidate is never the right text), and a
synopsis shared by descriptions with different bodies ("transitional dummy package") is dropped as a
query, because it has no single right answer. Such passages stay in the corpus as distractors.
"""

from __future__ import annotations

import hashlib
import json
import logging
import lzma
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from evaluation.split import SPLITS, Split, assign, key_hash
from export.debian import EXPECTED_SHA256, Description, Language, data_dir, read_descriptions

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Query:
    qid: str  # Description-md5: unique, unlike package names (default-jdk has one per architecture)
    package: str
    text: str  # the synopsis
    relevant: int  # index of the one relevant passage in the task's corpus


@dataclass(frozen=True)
class Splits:
    corpus: tuple[str, ...]  # distinct passages, in file order
    queries: dict[Split, tuple[Query, ...]]  # each split in sample order
    ambiguous_dropped: int


@dataclass(frozen=True)
class Task:
    name: str  # e.g. "debian-en"
    lang: str
    corpus: tuple[str, ...]
    queries: tuple[Query, ...]  # the evaluated sample
    record: dict[str, object] = field(default_factory=dict)  # provenance for the JSON report

    def fingerprint(self) -> str:
        """sha256 of the corpus and sampled queries: the cache key for anything derived from them."""
        return fingerprint(self.corpus, self.queries)


def fingerprint(corpus: Sequence[str], queries: Sequence[Query]) -> str:
    """sha256 over every passage and every (qid, text, relevant) triple, in order."""
    digest = hashlib.sha256()
    for passage in corpus:
        digest.update(passage.encode("utf-8") + b"\0")
    for q in queries:
        digest.update(json.dumps([q.qid, q.text, q.relevant], ensure_ascii=False).encode() + b"\0")
    return digest.hexdigest()


def _wide(ch: str) -> bool:
    """CJK punctuation, kana, kanji and full-width forms: scripts written without spaces."""
    return "\u2e80" <= ch <= "\uffef"


def unwrap(body: str) -> str:
    """Join the 80-column line wraps of a description into paragraphs separated by newlines.

    Japanese lines are wrapped mid-word, so two wide characters are joined without a space; a
    tokenizer would otherwise see a word break that the author never wrote.
    """
    paragraphs = []
    for block in body.split("\n\n"):
        text = ""
        for line in block.split("\n"):
            line = line.strip()
            if not line:
                continue
            glue = "" if not text or (_wide(text[-1]) and _wide(line[0])) else " "
            text += glue + line
        if text:
            paragraphs.append(text)
    return "\n".join(paragraphs)


def _group_keys(packages_by_passage: dict[int, list[str]]) -> dict[str, str]:
    """Union-find over packages that share a passage; each package maps to its group's smallest name."""
    parent: dict[str, str] = {}

    def find(p: str) -> str:
        while parent[p] != p:
            parent[p] = parent[parent[p]]
            p = parent[p]
        return p

    for packages in packages_by_passage.values():
        for p in packages:
            parent.setdefault(p, p)
        roots = sorted({find(p) for p in packages})
        for r in roots[1:]:
            parent[r] = roots[0]
    return {p: find(p) for p in parent}


def build_splits(descriptions: Sequence[Description]) -> Splits:
    """Corpus and the queries of every split; pure, so tests can feed it synthetic descriptions."""
    index: dict[str, int] = {}
    relevant: list[int] = []
    packages_by_passage: dict[int, list[str]] = {}
    for d in descriptions:
        i = index.setdefault(unwrap(d.body), len(index))
        relevant.append(i)
        packages_by_passage.setdefault(i, []).append(d.package)
    group = _group_keys(packages_by_passage)
    synopsis_count = Counter(d.synopsis for d in descriptions)

    queries: dict[Split, list[Query]] = {s: [] for s in SPLITS}
    dropped = 0
    for d, i in zip(descriptions, relevant, strict=True):
        if synopsis_count[d.synopsis] > 1:
            dropped += 1
            continue
        queries[assign(group[d.package])].append(Query(d.md5, d.package, d.synopsis, i))
    ordered = {s: tuple(sorted(qs, key=lambda q: (key_hash(q.package), q.qid))) for s, qs in queries.items()}
    return Splits(corpus=tuple(index), queries=ordered, ambiguous_dropped=dropped)


def build_task(
    descriptions: Sequence[Description],
    lang: str,
    split: Split = "test",
    max_queries: int | None = None,
    provenance: dict[str, object] | None = None,
    name: str | None = None,
) -> Task:
    """The first ``max_queries`` queries of ``split`` in hash order, against the whole corpus."""
    splits = build_splits(descriptions)
    sample = splits.queries[split][:max_queries]
    record: dict[str, object] = {
        **(provenance or {}),
        "descriptions": len(descriptions),
        "corpus_passages": len(splits.corpus),
        "ambiguous_queries_dropped": splits.ambiguous_dropped,
        "split_counts": {s: len(qs) for s, qs in splits.queries.items()},
        "split": split,
        "max_queries": max_queries,
        "queries": len(sample),
        "task_sha256": fingerprint(splits.corpus, sample),
    }
    task = Task(name=name or f"debian-{lang}", lang=lang, corpus=splits.corpus, queries=sample, record=record)
    logger.info("%s: %d passages, %d %s queries evaluated", task.name, len(task.corpus), len(sample), split)
    return task


def input_sha256(path: Path) -> str:
    """sha256 of the uncompressed file, the figure the data README publishes."""
    digest = hashlib.sha256()
    with lzma.open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def debian_task(lang: Language, split: Split = "test", max_queries: int | None = None) -> Task:
    """The Debian task for one language, with the input file and its checksum in the record."""
    descriptions = read_descriptions(lang)  # raises with the fix when the data is missing
    path = data_dir() / f"Translation-{lang}.xz"
    sha = input_sha256(path)
    if sha != EXPECTED_SHA256[lang]:
        logger.warning("%s has sha256 %s, the data README says %s", path, sha, EXPECTED_SHA256[lang])
    source = {
        "file": f"shared/data/debian/{path.name}",
        "source": "Debian 12 bookworm main i18n descriptions (see shared/data/debian/README.md)",
        "sha256_uncompressed": sha,
        "matches_readme": sha == EXPECTED_SHA256[lang],
    }
    return build_task(descriptions, lang, split, max_queries, provenance={"input": source})
