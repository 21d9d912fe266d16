# The README's two commands: `make train` and `make test`. Each creates .venv when missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Extra arguments for the training entry point, e.g. make train ARGS="experiment=vae_mnist"
ARGS   ?=
# pytest-xdist workers; CI machines have 2 cores.
WORKERS ?= 2

.PHONY: train test test-fast plan venv clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

train: $(STAMP)
	$(VENV)/bin/mathml-train $(ARGS)

plan: $(STAMP)
	$(VENV)/bin/mathml-plan $(ARGS)

# Full suite, slow statistical tests included (this is what CI runs).
test: $(STAMP)
	$(PY) -m pytest -n $(WORKERS) --durations=15 $(ARGS)

# Quick loop while developing: skip the slow statistical tests.
test-fast: $(STAMP)
	$(PY) -m pytest -n $(WORKERS) -m "not slow" $(ARGS)

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache
