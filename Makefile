# The README's two commands: `make run` (set up + generate offline) and `make test` (set up + test).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU build of torch; override (e.g. TORCH_SPEC=torch) on a GPU box that brings its own.
TORCH_SPEC ?= torch==2.13.0
SAMPLES ?= 1000
EXTRAS ?= dev

.PHONY: setup run test lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed-$(EXTRAS): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	touch $@

setup: $(VENV)/.installed-$(EXTRAS)

run: setup
	$(BIN)/python scripts/generate_synth_torch.py .parallel num_total_samples=$(SAMPLES)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: setup lint
	$(BIN)/python -m pytest -q -ra

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: setup
	$(BIN)/python benchmarks/validation_throughput.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
