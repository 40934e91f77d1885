"""Fine-tune a BERT encoder as a one-logit cross-encoder with a listwise softmax loss.

Loss: for each query, the logits of its 1 positive and k negatives go through a softmax and the loss
is the cross-entropy of the positive (InfoNCE over the BM25 group). Ranking is what the model is
used for, and this loss compares exactly the passages that compete for one query; pointwise BCE
would also spend capacity on calibrating absolute scores across unrelated queries.

Scores are raw logits: the checkpoint records an identity activation (``config.sentence_transformers``),
so sentence-transformers ``CrossEncoder.predict`` returns the logit. A softmax loss is shift-invariant,
so a sigmoid of these logits would not be a probability of anything; identity says so honestly, and
the order of candidates is the same either way.

Cost: a CPU step is dominated by the encoder passes, so the step's pairs are sorted by length and cut
by a token budget (no padding of short pairs to long ones), and the embeddings and lowest layers are
frozen (backward stops early). Neither changes what a pair's logit is, only what it costs.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from training.config import TrainConfig
from training.data import Example

logger = logging.getLogger(__name__)

IDENTITY = "torch.nn.modules.linear.Identity"
LOG_EVERY = 10  # optimizer steps between progress lines


@dataclass(frozen=True)
class TrainStats:
    steps: int
    queries_seen: int
    pairs_seen: int
    seconds: float  # wall time of the optimisation loop alone
    pairs_per_s: float
    loss_first: float  # mean loss of the first LOG_EVERY steps
    loss_last: float  # mean loss of the last LOG_EVERY steps
    loss_curve: tuple[tuple[int, float], ...]  # (step, mean loss of the LOG_EVERY steps ending there)


def seed_everything(seed: int, threads: int) -> None:
    """Python, numpy and torch generators, deterministic kernels, and a fixed thread count.

    Two threads is both the machine we target and part of the determinism: reductions split over a
    different number of threads can round differently.
    """
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(threads)


def load_model(base: Path, seed: int, dropout: float = 0.1):
    """The base encoder with a fresh one-logit head (drawn from ``seed``) and its tokenizer.

    ``dropout`` replaces the base config's hidden and attention dropout (BERT's 0.1) for training;
    inference runs in eval mode, so the exported graph is the same either way.
    """
    import torch
    from transformers import (
        AutoConfig,
        AutoModelForSequenceClassification,
        AutoTokenizer,
    )

    config = AutoConfig.from_pretrained(base, num_labels=1, hidden_dropout_prob=dropout,
                                        attention_probs_dropout_prob=dropout)
    config.sentence_transformers = {"activation_fn": IDENTITY}
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(base, config=config)
    return model, AutoTokenizer.from_pretrained(base)


def schedule(n_examples: int, config: TrainConfig) -> int:
    """Number of optimizer steps: every example once per epoch, capped by ``max_steps``."""
    steps = math.ceil(n_examples * config.epochs / config.batch_queries)
    return min(steps, config.max_steps) if config.max_steps is not None else steps


def batches(examples: Sequence[Example], config: TrainConfig) -> list[list[Example]]:
    """Steps of ``batch_queries`` examples, reshuffled every epoch with a generator seeded by ``seed``."""
    rng = random.Random(config.seed)
    out: list[list[Example]] = []
    for _ in range(config.epochs):
        order = list(range(len(examples)))
        rng.shuffle(order)
        out += [[examples[i] for i in order[s : s + config.batch_queries]]
                for s in range(0, len(order), config.batch_queries)]
    return out[: schedule(len(examples), config)]


def group_loss(logits, sizes: Sequence[int]):
    """Mean over groups of -log softmax(group)[0]; each group is [positive, *negatives]."""
    import torch

    losses = [-torch.log_softmax(g, dim=0)[0] for g in torch.split(logits, list(sizes))]
    return torch.stack(losses).sum()


def freeze(model, n_layers: int) -> list[str]:
    """Stop gradients in the embeddings and the lowest ``n_layers`` encoder layers; return what stays trainable."""
    base = model.base_model
    layers = base.encoder.layer
    assert 0 <= n_layers <= len(layers), f"frozen_layers must be in 0..{len(layers)}, got {n_layers}"
    if n_layers:
        for module in (base.embeddings, *layers[:n_layers]):
            for p in module.parameters():
                p.requires_grad_(False)
    return [n for n, p in model.named_parameters() if p.requires_grad]


def param_groups(model, config: TrainConfig) -> list[dict]:
    """AdamW groups: head (``config.head``) at ``head_lr``, encoder at ``lr``; no weight decay on biases
    and LayerNorm."""
    no_decay = ("bias", "LayerNorm.weight")
    prefixes = tuple(config.head)
    groups: dict[tuple[bool, bool], list] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            groups.setdefault((name.startswith(prefixes), name.endswith(no_decay)), []).append(p)
    return [{"params": ps, "lr": config.head_lr if head else config.lr,
             "weight_decay": 0.0 if plain else config.weight_decay} for (head, plain), ps in sorted(groups.items())]


def micro_batches(lengths: Sequence[int], token_budget: int) -> list[list[int]]:
    """Pair indices sorted by length and cut so that no micro-batch pads past ``token_budget`` tokens.

    Padding is what a random mix of short and long pairs costs on a CPU: one 256-token negative
    would pad fifteen 80-token pairs to its length. Sorted, each pass pads only to its own longest.
    """
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    out: list[list[int]] = []
    for i in order:
        if out and (len(out[-1]) + 1) * lengths[i] <= token_budget:
            out[-1].append(i)
        else:
            out.append([i])
    return out


def forward_step(model, tokenizer, batch: Sequence[Example], config: TrainConfig):
    """Loss of one optimizer step, summed over its queries and divided by their number; and its pair count."""
    firsts = [e.query for e in batch for _ in range(1 + len(e.negatives))]
    seconds = [p for e in batch for p in (e.positive, *e.negatives)]
    logits = pair_logits(model, tokenizer, firsts, seconds, config.max_length, config.token_budget)
    return group_loss(logits, [1 + len(e.negatives) for e in batch]) / len(batch), len(seconds)


def pair_logits(model, tokenizer, firsts: Sequence[str], seconds: Sequence[str], max_length: int,
                token_budget: int):
    """The model's logit for each (first, second) pair, in their order, run as length-sorted micro-batches."""
    import torch

    enc = tokenizer(list(firsts), list(seconds), truncation=True, max_length=max_length)  # lists, unpadded
    parts, where = [], []
    for idx in micro_batches([len(ids) for ids in enc["input_ids"]], token_budget):
        features = tokenizer.pad({k: [enc[k][i] for i in idx] for k in enc}, return_tensors="pt")  # [n, longest]
        parts.append(model(**features).logits.squeeze(-1))  # [n]
        where += idx
    return torch.cat(parts)[torch.argsort(torch.tensor(where))]  # back to pair order


class TailAverage:
    """Running mean of the trainable weights over the last ``fraction`` of a run's optimizer steps.

    A few hundred steps of eight queries each leave the weights noisy, and the soup of two group-of-4
    runs had beaten either one (test MRR@10 0.743 against 0.729); averaging one run's own late weights
    would cost no extra training. Measured, it bought little (``TrainConfig.average_last``).
    ``fraction`` 0.25 of 500 steps averages the weights after each of steps 376 to 500.
    """

    def __init__(self, model, fraction: float, total_steps: int) -> None:
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"average fraction must be in (0, 1], got {fraction}")
        self.start = total_steps - max(1, round(fraction * total_steps)) + 1  # first averaged step
        self.count = 0
        self.mean = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}

    def update(self, model, step: int) -> None:
        """Fold the weights after optimizer step ``step`` (1-based) into the mean, if it is in the tail."""
        if step < self.start:
            return
        self.count += 1
        params = dict(model.named_parameters())
        for name, mean in self.mean.items():
            mean.add_(params[name].detach() - mean, alpha=1.0 / self.count)

    def apply_to(self, model) -> None:
        """Replace the model's trainable weights with the mean (the frozen ones never moved)."""
        import torch

        if not self.count:
            raise ValueError("no step was averaged: the run ended before the averaging window")
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, mean in self.mean.items():
                params[name].copy_(mean)


def train(model, tokenizer, examples: Sequence[Example], config: TrainConfig,
          extra_averages: Sequence[float] = ()) -> tuple[TrainStats, dict[float, TailAverage]]:
    """AdamW with linear warm-up and decay over the listwise loss; the model is updated in place.

    With ``config.average_last`` the model ends with the mean of its weights over that tail of the run
    instead of the last step's. ``extra_averages`` keeps more tails (for comparing them after one run);
    every tail kept, that one included, is returned by fraction.
    """
    import torch
    from transformers import get_linear_schedule_with_warmup

    steps = batches(examples, config)
    if not steps:
        raise ValueError("no training steps: the example list is empty")
    trainable = freeze(model, config.frozen_layers)
    logger.info("%d trainable tensors, from %s", len(trainable), trainable[0])
    optimizer = torch.optim.AdamW(param_groups(model, config))
    scheduler = get_linear_schedule_with_warmup(optimizer, math.ceil(config.warmup_ratio * len(steps)), len(steps))
    fractions = sorted({*extra_averages, *([config.average_last] if config.average_last else [])})
    averages = {f: TailAverage(model, f, len(steps)) for f in fractions}
    model.train()
    curve: list[tuple[int, float]] = []
    window: list[float] = []
    pairs = queries = 0
    start = time.perf_counter()
    for step, batch in enumerate(steps, start=1):
        loss, n_pairs = forward_step(model, tokenizer, batch, config)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        for average in averages.values():
            average.update(model, step)
        pairs += n_pairs
        queries += len(batch)
        window.append(loss.item())
        if step % LOG_EVERY == 0 or step == len(steps):
            curve.append((step, sum(window) / len(window)))
            window = []
            elapsed = time.perf_counter() - start
            logger.info("step %d/%d loss %.4f, %.1f pairs/s, %.0f s", step, len(steps), curve[-1][1],
                        pairs / elapsed, elapsed)
    seconds_total = time.perf_counter() - start
    if config.average_last:
        averages[config.average_last].apply_to(model)
    model.eval()
    stats = TrainStats(steps=len(steps), queries_seen=queries, pairs_seen=pairs, seconds=seconds_total,
                       pairs_per_s=pairs / seconds_total, loss_first=curve[0][1], loss_last=curve[-1][1],
                       loss_curve=tuple(curve))
    return stats, averages


def save(model, tokenizer, directory: Path) -> Path:
    """config.json (with the identity activation), model.safetensors and the tokenizer files."""
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return directory
