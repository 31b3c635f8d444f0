# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# what running needs (the platforms, Redis), and on top of it what testing needs;
# both pinned by constraints.txt (`make lock` refreshes it)
RUN_STAMP  := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
PIP := $(BIN)/pip install --quiet --constraint constraints.txt

.PHONY: run test lint bench bench-quick clean k8s-knowledge fingerprint handover lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) -e '.[slack,discord,redis]'
	touch $(RUN_STAMP)

# the bench extra too: tests/test_bench.py runs the quick benchmarks
$(TEST_STAMP): $(RUN_STAMP)
	$(PIP) -e '.[slack,discord,redis,test,bench]'
	touch $(TEST_STAMP)

## run: start the bot (Slack and/or Discord when their tokens are set, else the console chat)
run: $(RUN_STAMP)
	@$(BIN)/careerbot run || { status=$$?; [ $$status -eq 130 ] || exit $$status; }

## test: install what the tests need and run them all
# The Redis tests start their own redis-server: install it where it is missing
# (as root, with apt-get); otherwise they fail saying so.
test: $(TEST_STAMP)
	$(BIN)/ruff check bot tests benchmarks
	$(BIN)/mypy
	@command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing redis-server (apt-get) for the Redis tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq --no-install-recommends redis-server >/dev/null; \
	  else \
	    echo "redis-server is missing and cannot be installed here (root and apt-get needed): the Redis tests will fail"; \
	  fi; }
	$(BIN)/python -m pytest -q

lint: $(TEST_STAMP)
	$(BIN)/ruff check bot tests benchmarks
	$(BIN)/mypy

## k8s-knowledge: regenerate deploy/k8s/knowledge-configmap.yaml from knowledge/
k8s-knowledge: $(RUN_STAMP)
	$(BIN)/python deploy/k8s/knowledge_configmap.py

## fingerprint: regenerate eval/seed_fingerprint.json from the articles (SEEDS=folder)
fingerprint:
	$(PYTHON) eval/fingerprint.py $(SEEDS)

## handover: check eval/ against a handed-over folder (SHARED=folder: topics.yaml, eval/, seeds/)
handover:
	$(PYTHON) eval/handover.py $(SHARED)

## bench: the benchmarks (benchmarks/), every figure beside a same-run baseline
bench: $(TEST_STAMP)
	$(BIN)/python -m benchmarks

## bench-quick: the same with small counts (a minute)
bench-quick: $(TEST_STAMP)
	$(BIN)/python -m benchmarks --quick

## lock: refresh constraints.txt, the exact versions make, CI and the image install
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --upgrade pip
	.lock-venv/bin/pip install --quiet -e '.[slack,discord,redis,test,bench]'
	{ echo "# pinned by \`make lock\` from pyproject.toml; make, CI and deploy/Dockerfile install with it"; \
	  .lock-venv/bin/pip freeze --exclude-editable; } > constraints.txt
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
