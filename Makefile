# The README's two commands: `make train` and `make test`. Each creates .venv when missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Extra arguments for the training entry point, e.g. make train ARGS="experiment=vae_mnist"
ARGS   ?=
# pytest-xdist workers; CI machines have 2 cores.
WORKERS ?= 2

.PHONY: train test test-fast plan bench-env docs venv wheels clean

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

# The documentation site (docs/, mkdocs.yml) into site/; warnings are errors.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

# Full suite, slow statistical tests included, after the docs build (this is what CI runs).
test: $(STAMP) docs
	$(PY) -m pytest -n $(WORKERS) --durations=15 $(ARGS)

# Quick loop while developing: skip the slow statistical tests.
test-fast: $(STAMP)
	$(PY) -m pytest -n $(WORKERS) -m "not slow" $(ARGS)

# Wheels the GPU machine's image lacks (Python 3.12 there), carried as .wheels/ by scripts/gpu_check.sh.
wheels: $(STAMP)
	mkdir -p .wheels
	$(PY) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 -d .wheels \
	  hydra-core==1.3.8 omegaconf==2.3.1 gymnasium==1.4.0 farama-notifications torchsde==0.2.6 \
	  trampoline hydra-submitit-launcher==1.2.0 submitit mlxtend==0.25.0
	$(PY) -m pip wheel -q --no-deps -w .wheels antlr4-python3-runtime==4.9.3 pymdptoolbox==4.0b3

# Benchmark peers (diffusers, k-diffusion) for benchmarks/sampler_*.py, in .venv-bench: a venv layered
# on .venv (a .pth runs site.addsitedir on .venv's site-packages, so torch and mathml are reused, not
# reinstalled) with requirements-bench.txt installed --no-deps; .venv is never changed.
BENCH_VENV := .venv-bench
bench-env: $(BENCH_VENV)/.installed

$(BENCH_VENV)/.installed: $(STAMP) requirements-bench.txt
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv --without-pip $(BENCH_VENV)
	echo '*' > $(BENCH_VENV)/.gitignore
	base=$$($(PY) -c "import sysconfig; print(sysconfig.get_paths()['purelib'])"); \
	  dest=$$($(BENCH_VENV)/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])"); \
	  echo "import site; site.addsitedir('$$base')" > $$dest/_mathml_venv.pth
	$(PY) -m pip --python $(BENCH_VENV)/bin/python install -q --no-deps -r requirements-bench.txt
	$(BENCH_VENV)/bin/python -c "import diffusers, mathml; from benchmarks.peers.kdiffusion_vp import sampling_module; sampling_module()"
	touch $@

clean:
	rm -rf $(VENV) $(BENCH_VENV) outputs multirun .pytest_cache site
