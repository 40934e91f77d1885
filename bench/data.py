"""The workload: real (query, passage) pairs from Debian's English package descriptions.

Queries are package synopses (a short line, 7..19 tokens); passages are long descriptions drawn in
fixed shares from three length strata, so a batch mixes what a reranker really sees: a quarter short
(< 64 tokens), most 100..300 tokens, and a tenth so long that the pair is cut at 512 tokens. Every
engine gets exactly these strings. Token counts use the models' own (bert-base-uncased) vocabulary.

Drawing the workload reads all 61k descriptions (about 10 s), so it is written once to a JSON file
keyed by its parameters and the workers read that file.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

# (name, lowest body tokens, highest body tokens, share of passages)
STRATA = (("short", 1, 63, 0.25), ("mid", 100, 300, 0.65), ("long", 520, 10**9, 0.10))
LENGTHS = (16, 32, 64, 128, 256, 512)  # pair tokens (query + passage + 3 specials) for the length curve
# Passages per call for the count curve, 1 to 1,000: the 1,000 point costs ~1.5 min of the full run
# (FlashRank alone 45 s), and it is where a runtime without a token budget shows its memory growing.
COUNTS = (1, 10, 30, 100, 300, 1000)
LONG_CHARS = 1800  # bodies shorter than this cannot reach 520 tokens: skip tokenizing them for "long"
SAMPLE_FOR_SHORT_MID = 8000


@dataclass(frozen=True)
class Sizes:
    groups: int  # queries in the throughput/latency set
    per_group: int  # passages per query (the "one query × 100 passages" call)
    pool: int  # passages available to the count curve (its largest point)
    per_length: int  # passages per point of the length curve

    @classmethod
    def full(cls) -> Sizes:
        return cls(groups=20, per_group=100, pool=max(COUNTS), per_length=100)

    @classmethod
    def quick(cls) -> Sizes:
        return cls(groups=2, per_group=10, pool=10, per_length=4)


def counts_for(sizes: Sizes) -> list[int]:
    return [c for c in COUNTS if c <= sizes.pool]


def _tokenizer(path: Path):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def _strata(bodies: list[str], tokenizer, rng: random.Random) -> dict[str, list[str]]:
    sample = rng.sample(range(len(bodies)), min(SAMPLE_FOR_SHORT_MID, len(bodies)))
    long_idx = [i for i, b in enumerate(bodies) if len(b) >= LONG_CHARS]
    pools: dict[str, list[str]] = {name: [] for name, *_ in STRATA}
    seen: set[int] = set()
    for indices in (sample, long_idx):
        lengths = [len(e.ids) for e in tokenizer.encode_batch([bodies[i] for i in indices], add_special_tokens=False)]
        for i, n in zip(indices, lengths):
            for name, low, high, _ in STRATA:
                if low <= n <= high and i not in seen:
                    seen.add(i)
                    pools[name].append(bodies[i])
    for name, *_ in STRATA:
        assert pools[name], f"no Debian description falls in the {name} stratum"
    return pools


def _mixed(pools: dict[str, list[str]], n: int, rng: random.Random) -> list[str]:
    """n passages in the strata's shares, distinct within the draw when the stratum allows, shuffled."""
    out: list[str] = []
    for k, (name, _, _, share) in enumerate(STRATA):
        want = n - len(out) if k == len(STRATA) - 1 else round(n * share)
        pool = pools[name]
        out += rng.sample(pool, want) if want <= len(pool) else [rng.choice(pool) for _ in range(want)]
    rng.shuffle(out)
    return out


def _cut(text: str, tokenizer, tokens: int) -> str:
    """The prefix of ``text`` that tokenizes to ``tokens`` tokens (cut at a token's end)."""
    enc = tokenizer.encode(text, add_special_tokens=False)
    assert len(enc.ids) >= tokens, f"text of {len(enc.ids)} tokens cannot give {tokens}"
    return text[: enc.offsets[tokens - 1][1]]


def _by_length(pools: dict[str, list[str]], query: str, tokenizer, per_length: int,
               rng: random.Random) -> dict[str, list[str]]:
    q = len(tokenizer.encode(query, add_special_tokens=False).ids)
    longs = pools["long"]
    out = {}
    for length in LENGTHS:
        k = max(1, length - q - 3)
        out[str(length)] = [_cut(rng.choice(longs), tokenizer, k) for _ in range(per_length)]
    return out


def _token_stats(passages: list[str], query: str, tokenizer) -> dict[str, float]:
    pairs = tokenizer.encode_batch([(query, p) for p in passages])
    lengths = np.minimum(np.array([len(e.ids) for e in pairs]), 512)
    return {
        "pairs": len(passages), "mean_tokens": round(float(lengths.mean()), 1),
        **{f"p{q}_tokens": float(np.percentile(lengths, q)) for q in (10, 50, 90)},
        "share_at_512": round(float((lengths >= 512).mean()), 3),
        "share_100_300": round(float(((lengths >= 100) & (lengths <= 300)).mean()), 3),
        "share_under_64": round(float((lengths < 64).mean()), 3),
    }


def build_workload(cache: Path, tokenizer_path: Path, sizes: Sizes, seed: int = 0) -> Path:
    """Write (once) and return the workload file for these sizes."""
    key = hashlib.sha256(json.dumps([asdict(sizes), seed, STRATA, LENGTHS, COUNTS], sort_keys=True).encode()).hexdigest()[:12]
    path = cache / f"workload-{key}.json"
    if path.is_file():
        return path
    from export.debian import read_descriptions

    descriptions = read_descriptions("en")
    rng = random.Random(seed)
    tokenizer = _tokenizer(tokenizer_path)
    pools = _strata([d.body for d in descriptions], tokenizer, rng)
    synopses = [d.synopsis for d in descriptions]
    groups = [{"query": rng.choice(synopses), "passages": _mixed(pools, sizes.per_group, rng)}
              for _ in range(sizes.groups)]
    count_query = rng.choice(synopses)
    length_query = rng.choice(synopses)
    all_passages = [p for g in groups for p in g["passages"]]
    workload = {
        "seed": seed, "sizes": asdict(sizes),
        "groups": groups,
        "count_curve": {"query": count_query, "pool": _mixed(pools, sizes.pool, rng), "counts": counts_for(sizes)},
        "length_curve": {"query": length_query,
                         "passages": _by_length(pools, length_query, tokenizer, sizes.per_length, rng)},
        "stats": {"groups": _token_stats(all_passages, groups[0]["query"], tokenizer),
                  "strata_pool_sizes": {k: len(v) for k, v in pools.items()}},
    }
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(workload), encoding="utf-8")
    tmp.replace(path)
    return path


def load_workload(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))
