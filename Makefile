# The two commands of README: `make train` and `make test` (each installs what it needs first).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?=

.PHONY: install system-deps train test test-fast lint bench bench-serve bench-load bench-peers bench-scale clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

## Debian packages of the browser and tracking-server tests (chromium, chromium-driver, postgresql); quick when present
system-deps:
	@bash scripts/system-deps.sh

## Train on the default dataset (the shipped demo corpus); pass Hydra overrides with ARGS="data=uscongress ..."
train: install
	$(BIN)/policy-topics train $(ARGS)

## Run the whole test suite (unit + end-to-end), one process per core, each taking whole test files (their
## fixtures are built once). Registered datasets come from POLICY_TOPICS_DATA_MIRROR.
test: install system-deps
	$(BIN)/ruff check src tests experiments
	$(BIN)/pytest -q -n auto --dist loadfile $(ARGS)

## The quick loop while changing code: ruff and the unit tests alone (no end-to-end test, no system packages).
test-fast: install
	$(BIN)/ruff check src tests experiments
	$(BIN)/pytest -q -n auto --dist loadfile -m "not e2e" $(ARGS)

lint: install
	$(BIN)/ruff check src tests experiments

## Wall time and peak memory of training (medians of several runs); needs the data mirror.
bench: install
	$(BIN)/python experiments/bench_train.py

## The model server against `mlflow models serve`, and the batch command; needs the data mirror.
bench-serve: install
	$(BIN)/python experiments/bench_serve.py

## 64 clients for 60 s against the model server: 5xx, latency, memory growth.
bench-load: install
	$(BIN)/python experiments/bench_load.py

## The project's default and presets against fastText and MiniLM embeddings on issue 7's folds (needs the
## data mirror); rewrites experiments/results/peers.{json,md}. PEER_PRESETS=NAME,... picks the presets.
PEER_PRESETS ?= uscongress_best,uscongress_tfidf,nytimes_tfidf,uscongress_tfidf_minilm,nytimes_tfidf_minilm
bench-peers: install
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python experiments/bench_peers.py --presets $(PEER_PRESETS) $(ARGS)

## Training at 100k and 1M synthetic documents: in-memory TF-IDF vs out-of-core hashing vs fastText (docs/s,
## peak memory). Long: the 1M in-memory run needs ~10 GB and ~15 min. Installs the `bench` extra (fastText).
bench-scale: install
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python experiments/bench_scale.py --sizes 100000,1000000 --runs 3 --in-memory-runs 1 $(ARGS)

clean:
	rm -rf $(VENV) outputs .pytest_cache
