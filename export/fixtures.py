"""Tiny random checkpoints of each supported family, built offline, for tests and benchmarks.

Each has the real architecture class and a tokenizer of the real kind (WordPiece for BERT, Unigram
SentencePiece-style for XLM-R and ModernBERT, byte-level BPE for JinaBERT) trained on Debian text, so
the export and runtime meet the same structures as with the seed models, only smaller. A
``tinybert-l2`` shape (2 layers, 128 hidden, bert-base-uncased vocabulary from the all-MiniLM-L6-v2
package) stands in for ms-marco-TinyBERT-L2-v2 in speed tests.

    python -m export.fixtures bert DIR
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

from .families import FAMILIES

TRAINING_TEXTS = 800  # enough for a realistic vocabulary, quick to train


def _texts(langs: tuple[str, ...]) -> list[str]:
    from .debian import read_descriptions

    texts: list[str] = []
    for lang in langs:
        for d in read_descriptions(lang)[:TRAINING_TEXTS]:  # type: ignore[arg-type]
            texts += [d.synopsis, d.body]
    return texts


def _unigram(langs: tuple[str, ...], vocab_size: int, specials: list[str]):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials, unk_token="<unk>")
    tokenizer.train_from_iterator(_texts(langs), trainer)
    return tokenizer


def _save_classifier(model, tokenizer_fast, directory: Path, activation: str | None = None) -> Path:
    import torch

    # A default-initialised head gives near-constant scores, which would make parity trivially true;
    # a wider head spreads them so a wrong token or mask shows.
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.startswith("classifier") and name.endswith("weight"):
                param.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(0))
    if activation:
        model.config.sentence_transformers = {"activation_fn": activation}
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer_fast.save_pretrained(directory)
    return directory


def build_bert(directory: Path, seed: int = 0) -> Path:
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer.train_from_iterator(_texts(("en",)), trainers.WordPieceTrainer(vocab_size=2000, special_tokens=specials))
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    fast = BertTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                             sep_token="[SEP]", mask_token="[MASK]", model_max_length=512)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=tokenizer.get_vocab_size(), hidden_size=64, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=128, max_position_embeddings=512,
                        type_vocab_size=2, num_labels=1)
    return _save_classifier(BertForSequenceClassification(config), fast, Path(directory),
                            "torch.nn.modules.linear.Identity")


def build_tinybert_l2(directory: Path, seed: int = 0) -> Path:
    """ms-marco-TinyBERT-L2-v2's shape (2 layers, 128 hidden, 2 heads) with the bert-base-uncased vocabulary."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from .minilm import minilm_source

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=30522, hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=512, max_position_embeddings=512, type_vocab_size=2, num_labels=1)
    return _save_classifier(BertForSequenceClassification(config), AutoTokenizer.from_pretrained(minilm_source()),
                            Path(directory), "torch.nn.modules.linear.Identity")


def build_xlm_roberta(directory: Path, seed: int = 0) -> Path:
    import torch
    from tokenizers import processors
    from transformers import XLMRobertaConfig, XLMRobertaForSequenceClassification, XLMRobertaTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tokenizer = _unigram(("en", "ja"), 3000, specials)
    tokenizer.post_processor = processors.RobertaProcessing(sep=("</s>", 2), cls=("<s>", 0))
    fast = XLMRobertaTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                                   cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
                                   model_max_length=512)
    torch.manual_seed(seed)
    config = XLMRobertaConfig(vocab_size=tokenizer.get_vocab_size(), hidden_size=64, num_hidden_layers=2,
                              num_attention_heads=4, intermediate_size=128, max_position_embeddings=514,
                              type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2, num_labels=1)
    return _save_classifier(XLMRobertaForSequenceClassification(config), fast, Path(directory))


def build_modernbert(directory: Path, seed: int = 0) -> Path:
    """Local attention window 16, so sequences of a few dozen tokens already mix local and global layers."""
    import torch
    from tokenizers import processors
    from transformers import ModernBertConfig, ModernBertForSequenceClassification, PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<pad>", "<sep>", "<mask>", "<cls>"]  # ids 0..6 as in modernbert-ja
    tokenizer = _unigram(("ja", "en"), 3000, specials)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<cls> $A <sep>", pair="<cls> $A <sep> $B <sep>", special_tokens=[("<cls>", 6), ("<sep>", 4)]
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>", sep_token="<sep>", mask_token="<mask>", cls_token="<cls>",
                                   model_max_length=8192)
    torch.manual_seed(seed)
    config = ModernBertConfig(
        vocab_size=tokenizer.get_vocab_size(), hidden_size=64, num_hidden_layers=4, num_attention_heads=4,
        intermediate_size=128, max_position_embeddings=8192, global_attn_every_n_layers=3, local_attention=16,
        global_rope_theta=160000.0, local_rope_theta=10000.0, norm_bias=False, attention_bias=False, mlp_bias=False,
        pad_token_id=3, bos_token_id=1, eos_token_id=2, sep_token_id=4, cls_token_id=6, classifier_pooling="cls",
        num_labels=1,
    )
    model = ModernBertForSequenceClassification(config)
    return _save_classifier(model, fast, Path(directory))


def build_jinabert(directory: Path, seed: int = 0) -> Path:
    from .jinabert import build_tiny

    build_tiny(Path(directory), seed=seed)
    return Path(directory)


# One builder per family of export.families.FAMILIES (in its order), plus a bert-family speed stand-in.
_BY_FAMILY = {"bert": build_bert, "xlm-roberta": build_xlm_roberta, "modernbert": build_modernbert, "jinabert": build_jinabert}
BUILDERS: dict[str, Callable[[Path, int], Path]] = {
    **{name: _BY_FAMILY[name] for name in FAMILIES}, "tinybert-l2": build_tinybert_l2}


def main() -> None:
    parser = argparse.ArgumentParser(description="Build a tiny random checkpoint of a family.")
    parser.add_argument("--list", action="store_true", help="print the fixtures' names (make export-all reads them)")
    parser.add_argument("family", nargs="?", choices=BUILDERS)
    parser.add_argument("directory", nargs="?", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.list:
        print(" ".join(BUILDERS))
    elif args.family is None or args.directory is None:
        parser.error("give a FAMILY and a DIRECTORY, or --list")
    else:
        print(BUILDERS[args.family](args.directory, args.seed))


if __name__ == "__main__":
    main()
