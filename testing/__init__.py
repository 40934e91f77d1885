"""Test support: never imported by the product (``reranker_onnx`` or the export stage).

Modules, one job each:

* ``hub``: a Hugging Face hub stand-in on 127.0.0.1 that ``huggingface_hub`` accepts through
  ``HF_ENDPOINT`` (revision and file resolution, LFS headers, ranged GETs, typed 404s, a request log
  and fault switches: a dropped connection, wrong bytes, a slow trickle).
* ``replicas``: the five seed checkpoints with upstream's layout, config and tokenizer kind, at full
  size or tiny, with seeded random weights and optional upstream-like ``onnx/`` folders;
  ``python -m testing.replicas OUT`` builds them.
* ``cache``: build a folder once per key of the code that builds it, atomically.
* ``seeds``: export seed replicas through the stand-in with the user's command (``make seeds-full``).
"""
