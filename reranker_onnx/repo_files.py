"""Read an upstream repo's configuration the way the reference (transformers + sentence-transformers) does.

For a directory pulled from upstream's own ONNX files there is no export stage to ask transformers; these
rules reproduce what it would build, from the repo's files alone:

- the pair template: a fast tokenizer loads ``tokenizer.json`` as is, except the Llama-style classes, whose
  ``__init__`` replaces its post-processor with one built from ``add_bos_token``/``add_eos_token``
  (transformers ``LlamaTokenizerFast.update_post_processor``) — japanese-reranker-xsmall-v2 is one;
- the activation: ``config_sentence_transformers.json``'s ``activation_fn``, else ``config.json``'s
  ``sentence_transformers.activation_fn``, else the pre-v4 ``sbert_ce_default_activation_function``, else
  sentence-transformers' default (sigmoid for one label, identity otherwise); like sentence-transformers,
  only ``torch.*`` paths are honoured.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import DownloadError

# tokenizer classes whose fast tokenizer rebuilds the pair template from flags: class -> (add_bos, add_eos) defaults
FLAG_TEMPLATE_CLASSES: dict[str, tuple[bool, bool]] = {
    "LlamaTokenizer": (True, False), "LlamaTokenizerFast": (True, False),
    "CodeLlamaTokenizer": (True, False), "CodeLlamaTokenizerFast": (True, False),
    "GemmaTokenizer": (True, False), "GemmaTokenizerFast": (True, False),
}  # fmt: skip
ACTIVATIONS = {
    "torch.nn.modules.activation.Sigmoid": "sigmoid", "torch.nn.Sigmoid": "sigmoid",
    "torch.nn.modules.linear.Identity": "identity", "torch.nn.Identity": "identity",
}  # fmt: skip


def _token(value: Any) -> str | None:
    """A special token as tokenizer_config.json writes it: a string or an AddedToken dict."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def pair_tokenizer(tokenizer_json: str, tokenizer_config: dict[str, Any], special_tokens: dict[str, Any]) -> tuple[str, str]:
    """The ``tokenizer.json`` text the runtime should load, and a note on where its pair template came from."""
    from tokenizers import Tokenizer, processors

    tokenizer = Tokenizer.from_str(tokenizer_json)
    tokenizer.no_truncation()
    tokenizer.no_padding()
    cls = str(tokenizer_config.get("tokenizer_class") or "")
    note = "pair template from tokenizer.json"
    if cls in FLAG_TEMPLATE_CLASSES:
        add_bos, add_eos = FLAG_TEMPLATE_CLASSES[cls]
        add_bos = bool(tokenizer_config.get("add_bos_token", add_bos))
        add_eos = bool(tokenizer_config.get("add_eos_token", add_eos))
        specials = []
        for role, wanted in (("bos_token", add_bos), ("eos_token", add_eos)):
            token = _token(tokenizer_config.get(role)) or _token(special_tokens.get(role))
            if not wanted:
                continue
            token_id = tokenizer.token_to_id(token) if token else None
            if token is None or token_id is None:
                raise DownloadError(f"tokenizer_config.json asks for a {role} that the tokenizer lacks ({token!r})")
            specials.append((role, token, token_id))
        bos = next((t for r, t, _ in specials if r == "bos_token"), None)
        eos = next((t for r, t, _ in specials if r == "eos_token"), None)
        single = f"{bos + ':0 ' if bos else ''}$A:0{' ' + eos + ':0' if eos else ''}"
        pair = f"{single}{' ' + bos + ':1' if bos else ''} $B:1{' ' + eos + ':1' if eos else ''}"
        tokenizer.post_processor = processors.TemplateProcessing(
            single=single, pair=pair, special_tokens=[(t, i) for _, t, i in specials]
        )
        note = f"pair template built from tokenizer_config.json as transformers' {cls} does: {pair}"
    single_extra = len(tokenizer.encode("a").ids) - len(tokenizer.encode("a", add_special_tokens=False).ids)
    pair_extra = len(tokenizer.encode("a", "b").ids) - 2 * len(tokenizer.encode("a", add_special_tokens=False).ids)
    if tokenizer.post_processor is None or pair_extra <= single_extra:
        raise DownloadError("the upstream tokenizer has no pair template; a cross-encoder needs one")
    return json.dumps(json.loads(tokenizer.to_str()), ensure_ascii=False), note


def num_labels_of(config: dict[str, Any]) -> int | None:
    """Labels as transformers counts them, or None when the config does not say (transformers then assumes 2)."""
    if isinstance(config.get("id2label"), dict):
        return len(config["id2label"])
    if isinstance(config.get("num_labels"), int):
        return int(config["num_labels"])
    return None


def activation_of(config: dict[str, Any], st_config: dict[str, Any], graph_labels: int) -> tuple[str, str]:
    """(activation, why) as sentence-transformers' CrossEncoder picks it for this repo."""
    found = [
        ("config_sentence_transformers.json activation_fn", st_config.get("activation_fn")),
        ("config.json sentence_transformers.activation_fn", (config.get("sentence_transformers") or {}).get("activation_fn")),
        ("config.json sbert_ce_default_activation_function", config.get("sbert_ce_default_activation_function")),
    ]
    for where, path in found:
        if isinstance(path, str) and path.startswith("torch."):
            if path not in ACTIVATIONS:
                raise DownloadError(f"{where} is {path}; only sigmoid and identity scores are supported")
            return ACTIVATIONS[path], f"{where} = {path}"
    labels = num_labels_of(config)
    if labels is None:  # no label count in the config (JinaBERT): the graph's output width says it
        labels, source = graph_labels, "the graph's output width"
    else:
        source = "config.json"
    if labels == 1:
        return "sigmoid", f"no activation recorded; one label ({source}), so sentence-transformers' default sigmoid"
    return "identity", f"no activation recorded; {labels} labels ({source}), so sentence-transformers' default identity"
