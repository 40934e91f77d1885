# The verbs a person types. Everything runs in ./.venv, created on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is pinned to the CPU build (an unpinned torch pulls a multi-GB CUDA build).
TORCH ?= torch==2.13.0
MODEL ?=
EXPORT_FLAGS ?=  # e.g. --no-gate for random-weight fixtures
VARIANT ?=
QUERY ?= tool to compress and archive files

.PHONY: help install install-dev demo default-model test fuzz test-batch export export-all eval bench bench-quick bench-batch \
	bench-serve bench-soak test-arm64 clean replicas seeds-full seeds-smallest verify-seeds bench-long-context \
	eval-longdoc

help:
	@echo "make demo        set up the runtime and rerank Debian package descriptions with the default model"
	@echo "make test        set up and run the offline test suite"
	@echo "make fuzz        the property-based harness at depth (minutes; FUZZ_EXAMPLES=80)"
	@echo "make export MODEL=NAME|DIR   export one model (make export-all: every fixture family + MiniLM)"
	@echo "make seeds-full  export full-size replicas of the five seeds through a local hub stand-in (slow)"
	@echo "make eval / make default-model / make test-arm64"
	@echo "make bench       reranker-onnx against its peers, full run (under 20 min); make bench-quick: smoke run"
	@echo "make bench-batch rerank-onnx batch in one process and on Ray (1 and 2 actors); make test-batch"
	@echo "make bench-serve [QUICK=1] / make bench-soak   the HTTP service under load (QUICK: 2-min smoke) / 10 minutes of RSS"
	@echo "make bench-long-context / make eval-longdoc   JinaBERT to 8k tokens in bounded memory; windows vs truncation"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Runtime only: what a user of the library gets.
$(VENV)/.runtime: $(PY) pyproject.toml
	$(PY) -m pip install --quiet -e .
	@touch $@

# Export stage and test tools (torch CPU, transformers, optimum-onnx, sentence-transformers, pytest).
$(VENV)/.dev: $(PY) pyproject.toml
	$(PY) -m pip install --quiet "$(TORCH)" -e '.[export,dev,eval,batch,ray,serve-test]'
	@touch $@ $(VENV)/.runtime

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

# The main job: rerank real Debian package descriptions with the default model shipped in the package.
# Needs only the runtime (no torch): this is what a user gets from `pip install .`.
demo: $(VENV)/.runtime
	$(PY) -m export.demo_passages | $(VENV)/bin/rerank-onnx score "$(QUERY)" --top-k 5

# Rebuild the bundled default model: train (about 35 min on 2 cores), export with validation, keep one
# int8 graph, and pin its files and provenance in models.lock.
DEFAULT_CKPT ?= .cache/default-model/checkpoint
DEFAULT_EXPORT ?= .cache/exports/default-en
default-model: $(VENV)/.dev
	$(PY) -m training.default_model $(DEFAULT_CKPT)
	$(PY) -m export $(DEFAULT_CKPT) --name default-en --max-length 256 --languages en \
		--quantize-embeddings yes --validation-queries 40 --output $(DEFAULT_EXPORT)
	$(PY) -m export.bundle $(DEFAULT_EXPORT) --lock models.lock --training $(DEFAULT_CKPT)/training.json

test: $(VENV)/.dev
	$(PY) -m pytest -q

# The property-based harness at depth (minutes): random inputs for every surface; each failure is saved
# in tests/fuzz-db and replayed by `make test` (turn it into an @example once fixed). The address-space
# limit stops a runaway allocation before the host's OOM killer does: Python raises MemoryError (a failing
# example), but tokenizers' Rust code aborts the run, saving nothing (the traceback names the call).
FUZZ_EXAMPLES ?= 80
FUZZ_TESTS := tests/test_fuzz.py tests/test_fuzz_batch.py tests/test_serve_fuzz.py
fuzz: $(VENV)/.dev
	ulimit -v 8000000 && RERANKER_FUZZ=deep RERANKER_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q $(FUZZ_TESTS)

# The batch job alone, Ray lane included (marked slow: Ray starts in about 20 s; `make test` runs it too).
test-batch: $(VENV)/.dev
	$(PY) -m pytest -q tests/test_batch.py tests/test_batch_ray.py

export: $(VENV)/.dev
	@test -n "$(MODEL)" || (echo "usage: make export MODEL=<name from models.lock or checkpoint dir>"; exit 2)
	$(VENV)/bin/rerank-onnx export $(MODEL) $(EXPORT_FLAGS)

export-all: $(VENV)/.dev
	@for family in $$($(PY) -m export.fixtures --list); do \
		$(PY) -m export.fixtures $$family .cache/checkpoints/tiny-$$family && \
		$(PY) -m export .cache/checkpoints/tiny-$$family --name tiny-$$family --no-gate || exit 1; \
	done
	$(PY) -m export.minilm .cache/checkpoints/minilm-l6-cross-encoder
	$(PY) -m export .cache/checkpoints/minilm-l6-cross-encoder --name minilm-l6-cross-encoder

# Seed replicas (testing/): upstream's layout, config and tokenizers, random weights. seeds-full exports all
# five at full size through the hub stand-in with `rerank-onnx export NAME`, one at a time, niced, and
# writes $(SEEDS_OUT)/seeds.{json,md}; seeds-smallest is CI's slow lane. verify-seeds needs the real hub.
SEEDS_OUT ?= results/seeds
SEEDS ?=
replicas: $(VENV)/.dev
	$(PY) -m testing.replicas .cache/replicas/out $(SEEDS)
seeds-full: $(VENV)/.dev
	$(PY) -m testing.seeds $(SEEDS_OUT) --size full $(SEEDS)
seeds-smallest: $(VENV)/.dev
	$(PY) -m testing.seeds $(SEEDS_OUT) --size full ms-marco-TinyBERT-L2-v2
verify-seeds: $(VENV)/.dev
	RERANKER_VERIFY_SEEDS=1 $(PY) -m pytest -q tests/test_seeds_real.py

# BM25, the bi-encoder baseline and any exported model (MODEL="dir ...", VARIANT="fp32 avx2") on the Debian tasks.
eval: $(VENV)/.dev
	$(PY) -m evaluation $(if $(MODEL),--model $(MODEL)) $(if $(VARIANT),--variant $(VARIANT)) --out results/eval

# reranker-onnx against sentence-transformers, FlashRank, fastembed and a bare onnxruntime loop on the same
# weights and pairs: builds its models under .cache/bench, writes results/bench/bench.{md,json,png}.
$(VENV)/.bench: $(PY) pyproject.toml
	$(PY) -m pip install --quiet "$(TORCH)" -e '.[export,dev,eval,bench,batch,ray,serve-test]'
	@touch $@ $(VENV)/.dev $(VENV)/.runtime

bench: $(VENV)/.bench
	$(PY) -m bench

bench-quick: $(VENV)/.bench
	$(PY) -m bench --quick

# JinaBERT at 512-8,192 tokens, full attention graph against query blocks: latency and peak RSS per length
# (full-size replica, one nice'd process per point; ~15 min on a quiet 2-core host). results/bench/long_context.*
bench-long-context: $(VENV)/.dev
	$(PY) -m bench.long_context

# Long documents: the pinned Debian man pages (apt-get download on first use, sha256-checked; the rest is
# offline), NAME summary against the whole page, truncation against MaxP windows. results/eval/longdoc.json
eval-longdoc: $(VENV)/.dev
	$(PY) -m evaluation.longdoc

# rerank-onnx batch: pairs/s in one process and on Ray with 1 and 2 actors, peak memory per worker
# (results/bench/batch.{md,json}; about 5 min).
bench-batch: $(VENV)/.dev
	$(PY) -m bench.batch

# rerank-onnx serve under 1-64 concurrent clients against in-process scoring and a FastAPI +
# sentence-transformers peer (15-30 min; QUICK=1: the 2-minute smoke of every engine): results/bench/serve.md.
# bench-soak: 10 minutes (SOAK_SECONDS=30: a smoke) of load, server RSS.
bench-serve: $(VENV)/.bench
	$(PY) -m bench.serving $(if $(QUICK),--quick)

bench-soak: $(VENV)/.bench
	nice -n 10 $(PY) -m bench.serving --soak $(or $(SOAK_SECONDS),600) --soak-model reranker_onnx/models/default

# The runtime on emulated aarch64 (qemu-user + a Debian arm64 root cached outside the repo); needs root.
BOARDS ?= pi5
test-arm64: $(VENV)/.dev
	RERANKER_ARM64_BOARDS="$(BOARDS)" PYTHON=$(abspath $(PY)) arm64/run.sh

clean:
	rm -rf $(VENV) .cache .pytest_cache
