# tracelens developer entry points. Everything runs inside .venv, created on demand.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch is installed first, pinned to a CPU build, so sentence-transformers does not pull a
# multi-GB CUDA build. GPU users: make TORCH_SPEC="torch" (or install torch yourself first).
# Where no local CPU wheel is configured, add e.g. TORCH_PIP_ARGS="--index-url <PyTorch CPU wheel index>".
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
STORE ?= .demo/store

.PHONY: demo test lint venv test-venv samples clean bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip >/dev/null 2>&1 || true
	$(PIP) install -q $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"
	$(PIP) install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(PIP) install -q -e ".[test]"
	touch $@

venv: $(VENV)/.installed
test-venv: $(VENV)/.installed-test

demo: $(VENV)/.installed
	$(PY) -m tracelens.demo --store $(STORE)

test: $(VENV)/.installed-test
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m pytest -n 2 --dist loadfile -o addopts="" -p no:cacheprovider -q

lint: $(VENV)/.installed-test
	$(PY) -m ruff check src tests benchmarks

samples: $(VENV)/.installed
	$(PY) -m tracelens.samples

bench: $(VENV)/.installed-test
	@echo "see docs/benchmarks.md: python benchmarks/<name>.py"

clean:
	rm -rf $(VENV) .demo .pytest_cache
