# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo lint test test-slow gallery gallery-quick serve bench bench-sbi bench-perception bench-amortised install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall only when the package's declaration changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/helmholtz demo --out demo-report

# The linter's rules are in pyproject.toml ([tool.ruff]).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

bench: $(STAMP)
	$(BIN)/python benchmarks/svi_overhead.py
	$(BIN)/python benchmarks/vae_overhead.py
	$(BIN)/python benchmarks/hh_throughput.py
	$(BIN)/python benchmarks/hmm_forward.py

# Accuracy benchmarks of the simulation-based back ends (about an hour each on 2 cores).
bench-sbi: $(STAMP)
	$(BIN)/python benchmarks/sbibm_npe.py
	$(BIN)/python benchmarks/allen_cells.py

# The documentation site with every gallery example executed at full size (long: the
# examples' full fits), into docs/_build/html; `make serve` serves it on localhost:8000,
# building it first if missing. `make test` builds the quick version (small sizes).
gallery: $(STAMP)
	$(BIN)/helmholtz gallery --rebuild --no-open

gallery-quick: $(STAMP)
	$(BIN)/helmholtz gallery --quick --rebuild --no-open

serve: $(STAMP)
	$(BIN)/helmholtz gallery --serve --no-open

clean:
	rm -rf $(VENV) demo-report docs/_build docs/auto_examples docs/generated docs/sg_execution_times.rst

# Amortised back ends: MNIST-5k test likelihoods (about an hour on 2 cores, minutes on a
# GPU) and LFADS on Lorenz spikes (about 10 minutes).
bench-amortised: $(STAMP)
	$(BIN)/python benchmarks/mnist_amortised.py
	$(BIN)/python benchmarks/lfads_lorenz.py

# Perception: five real observers (about 25 minutes), three back ends on one (about 15).
bench-perception: $(STAMP)
	$(BIN)/python benchmarks/speed_observers.py
	$(BIN)/python benchmarks/speed_backends.py
	$(BIN)/python benchmarks/speed_loo.py
	$(BIN)/python benchmarks/psychometric_psignifit.py
