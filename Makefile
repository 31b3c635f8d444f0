# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[slack,discord,test]'
	touch $(STAMP)

## run: start the bot (Slack and/or Discord when their tokens are set, else the console chat)
run: $(STAMP)
	$(BIN)/careerbot run

## test: install what the tests need and run them all
test: $(STAMP)
	$(BIN)/ruff check bot tests
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check bot tests

bench: $(STAMP)
	$(BIN)/careerbot bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
