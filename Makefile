# The verbs a person types. Everything runs in ./.venv, created on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is pinned to the CPU build (an unpinned torch pulls a multi-GB CUDA build).
TORCH ?= torch==2.13.0
MODEL ?=
EXPORT_FLAGS ?=  # e.g. --no-gate for random-weight fixtures
VARIANT ?=
QUERY ?= how do I compress files on the command line

.PHONY: help install install-dev demo test export export-all eval test-arm64 clean

help:
	@echo "make demo        set up, build a real-weight model, and rerank Debian package descriptions"
	@echo "make test        set up and run the offline test suite"
	@echo "make export MODEL=NAME|DIR   export one model (make export-all: every fixture family + MiniLM)"
	@echo "make eval / make test-arm64"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Runtime only: what a user of the library gets.
$(VENV)/.runtime: $(PY) pyproject.toml
	$(PY) -m pip install --quiet -e .
	@touch $@

# Export stage and test tools (torch CPU, transformers, optimum-onnx, sentence-transformers, pytest).
$(VENV)/.dev: $(PY) pyproject.toml
	$(PY) -m pip install --quiet "$(TORCH)" -e '.[export,dev,eval]'
	@touch $@ $(VENV)/.runtime

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

# The main job: a real-weight cross-encoder (all-MiniLM-L6-v2 encoder, fixed-seed head) exported by the
# export stage into the local store, then used to rank real passages from the shell.
demo: $(VENV)/.dev
	@test -f "$$($(PY) -c 'from reranker_onnx.store import store_dir; print(store_dir())')/minilm-l6-cross-encoder/manifest.json" || ( \
		$(PY) -m export.minilm .cache/checkpoints/minilm-l6-cross-encoder && \
		$(PY) -m export .cache/checkpoints/minilm-l6-cross-encoder --name minilm-l6-cross-encoder )
	$(PY) -m export.demo_passages | $(VENV)/bin/rerank-onnx score "$(QUERY)" --model minilm-l6-cross-encoder --top-k 5

test: $(VENV)/.dev
	$(PY) -m pytest -q

export: $(VENV)/.dev
	@test -n "$(MODEL)" || (echo "usage: make export MODEL=<name from models.lock or checkpoint dir>"; exit 2)
	$(PY) -m export $(MODEL) $(EXPORT_FLAGS)

export-all: $(VENV)/.dev
	@for family in bert xlm-roberta modernbert jinabert tinybert-l2; do \
		$(PY) -m export.fixtures $$family .cache/checkpoints/tiny-$$family && \
		$(PY) -m export .cache/checkpoints/tiny-$$family --name tiny-$$family --no-gate || exit 1; \
	done
	$(PY) -m export.minilm .cache/checkpoints/minilm-l6-cross-encoder
	$(PY) -m export .cache/checkpoints/minilm-l6-cross-encoder --name minilm-l6-cross-encoder

# BM25, the bi-encoder baseline and any exported model (MODEL="dir ...", VARIANT="fp32 avx2") on the Debian tasks.
eval: $(VENV)/.dev
	$(PY) -m evaluation $(if $(MODEL),--model $(MODEL)) $(if $(VARIANT),--variant $(VARIANT)) --out results/eval

# The runtime on emulated aarch64 (qemu-user + a Debian arm64 root cached outside the repo); needs root.
BOARDS ?= pi5
test-arm64: $(VENV)/.dev
	RERANKER_ARM64_BOARDS="$(BOARDS)" PYTHON=$(abspath $(PY)) arm64/run.sh

clean:
	rm -rf $(VENV) .cache .pytest_cache
