# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench clean k8s-knowledge fingerprint

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[slack,discord,redis,test]'
	touch $(STAMP)

## run: start the bot (Slack and/or Discord when their tokens are set, else the console chat)
run: $(STAMP)
	$(BIN)/careerbot run

## test: install what the tests need and run them all
# The Redis tests start their own redis-server: install it where it is missing
# (as root, with apt-get); otherwise they fail saying so.
test: $(STAMP)
	$(BIN)/ruff check bot tests
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

lint: $(STAMP)
	$(BIN)/ruff check bot tests
	$(BIN)/mypy

## k8s-knowledge: regenerate deploy/k8s/knowledge-configmap.yaml from knowledge/
k8s-knowledge: $(STAMP)
	$(BIN)/python deploy/k8s/knowledge_configmap.py

## fingerprint: regenerate eval/seed_fingerprint.json from the articles (SEEDS=folder)
SEEDS ?= ../shared/seeds
fingerprint:
	$(PYTHON) eval/fingerprint.py $(SEEDS)

bench: $(STAMP)
	$(BIN)/careerbot bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
