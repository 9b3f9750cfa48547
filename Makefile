# The two commands of README: `make train` and `make test`. Each target installs what it needs first, into
# .venv: `train` the core package alone (`pip install -e .`), the others the extra they need (`.[dev]`,
# `.[bench]`, `.[docs]`). Each install leaves a stamp file in .venv, redone only when pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?=

.PHONY: install install-dev install-bench install-docs system-deps train test test-fast lint docs docs-serve \
	bench bench-serve bench-load bench-peers bench-scale bench-spark bench-laws bench-sample-coverage bench-loop bench-agreement clean

## The core package: what `policy-topics train`, `predict` and `serve` need, nothing for tests or benchmarks.
install: $(VENV)/.installed-core
## The test tools, and the extras the tests exercise (ray, bench with CPU torch, server).
install-dev: $(VENV)/.installed-dev
## The peers of the benchmarks: fastText and the embeddings extra.
install-bench: $(VENV)/.installed-bench
## MkDocs, the Material theme and mkdocstrings, to build the documentation site.
install-docs: $(VENV)/.installed-docs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed-core: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[bench]'
	touch $@

$(VENV)/.installed-docs: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[docs]'
	touch $@

## Debian packages of the browser and tracking-server tests (chromium, chromium-driver, postgresql); quick when present
system-deps:
	@bash scripts/system-deps.sh

## Train on the default dataset (the shipped demo corpus); pass Hydra overrides with ARGS="data=uscongress ..."
train: install
	$(BIN)/policy-topics train $(ARGS)

## Run the whole test suite (unit + end-to-end), one process per core, each taking whole test files (their
## fixtures are built once). Registered datasets come from POLICY_TOPICS_DATA_MIRROR.
test: install-dev system-deps
	$(BIN)/ruff check src tests experiments docs/hooks
	$(BIN)/pytest -q -n auto --dist loadfile $(ARGS)

## The quick loop while changing code: ruff and the unit tests alone (no end-to-end test, no data mirror, no
## system packages). The unit tests build no costly file-wide fixtures, so they are dealt out one by one and
## both workers finish together.
test-fast: install-dev
	$(BIN)/ruff check src tests experiments docs/hooks
	$(BIN)/pytest -q -n auto --dist load -m "not e2e" $(ARGS)

lint: install-dev
	$(BIN)/ruff check src tests experiments docs/hooks

## Build the documentation site into site/ (git-ignored); --strict: a broken link, anchor or missing page fails
## (not with --quiet, which hides the warnings that --strict counts).
## The command and configuration reference pages are generated from the code and conf/ at build time.
docs: install-docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

## The documentation site on http://127.0.0.1:8000, rebuilt on every change.
docs-serve: install-docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

## Wall time and peak memory of training (medians of several runs); needs the data mirror.
bench: install
	$(BIN)/python experiments/bench_train.py

## The model server against `mlflow models serve`, and the batch command; needs the data mirror.
bench-serve: install
	$(BIN)/python experiments/bench_serve.py

## 64 clients for 60 s against the model server: 5xx, latency, memory growth.
bench-load: install
	$(BIN)/python experiments/bench_load.py

## The project's default and presets against fastText and MiniLM embeddings (needs the data mirror);
## rewrites experiments/results/peers.{json,md}. PEER_PRESETS=NAME,... picks the presets.
PEER_PRESETS ?= uscongress_best,uscongress_tfidf,nytimes_tfidf,uscongress_tfidf_minilm,nytimes_tfidf_minilm
bench-peers: install-bench
	$(BIN)/python experiments/bench_peers.py --presets $(PEER_PRESETS) $(ARGS)

## The CAP law datasets of six countries on their fixed test splits: the cap_laws preset and the plain TF-IDF bar
## against the published models and zero-shot LLMs (needs the data mirror); writes outputs/cap_laws/cap_laws.{json,md}.
bench-laws: install
	$(BIN)/python experiments/cap_laws_benchmark.py $(ARGS)

## Do a coded 200-document sample's 95% intervals cover the true figures of its corpus? 20 seeded samples of the
## held-back half of uscongress (needs the data mirror); writes outputs/sample_coverage/sample_coverage.{json,md}.
bench-sample-coverage: install
	$(BIN)/python experiments/sample_coverage.py $(ARGS)

## What kappa and alpha with their bootstrap intervals cost a run, on synthetic codes of 185 to 20,000 documents.
bench-agreement: install
	$(BIN)/python experiments/bench_agreement.py $(ARGS)

## Active learning against random coding, simulated on uscongress, nytimes and the UK acts (5 seeds, 100 codes a
## round; needs the data mirror); writes outputs/active_learning/active_learning.{json,md} and docs/img/active-learning.png.
bench-loop: install
	$(BIN)/python experiments/active_learning_benchmark.py $(ARGS)

## Training at 1M and 10M synthetic documents: out-of-core hashing vs fastText (docs/s, peak memory), each
## measured in the same run. Long (10M: ~1 GB of Parquet, minutes per run). The in-memory path as well:
## ARGS="--sizes 100000,1000000 --paths in_memory,out_of_core,fasttext --in-memory-runs 1" (it peaks at ~7 GB
## at 1M). Installs the `bench` extra (fastText).
bench-scale: install-bench
	$(BIN)/python experiments/bench_scale.py --sizes 1000000,10000000 --runs 3 --paths out_of_core,fasttext $(ARGS)

## Batch prediction on Spark local[2] against the batch command on the same 1M synthetic documents, and where
## Spark's time goes (JVM start, UDF set-up, Arrow transfer, model load, prediction). Needs Java 17+.
bench-spark: install-dev
	$(BIN)/python experiments/bench_spark.py --docs 1000000 --runs 3 $(ARGS)

clean:
	rm -rf $(VENV) outputs .pytest_cache site
