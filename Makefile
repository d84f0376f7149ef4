# tracelens developer entry points. Everything runs inside .venv, created on demand.
#
# Installs come from the lock in requirements/ (exact versions and hashes, per Python version), so a
# fresh clone gets exactly the versions the suite was tested with, whatever the index serves today.
# `make lock` refreshes the lock from pyproject.toml's ranges.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch is installed after the lock, pinned to a CPU build, so sentence-transformers never pulls a
# multi-GB CUDA build (the lock leaves torch out: see requirements/torch-cpu-deps.in).
# GPU users: make TORCH_SPEC="torch" (or install torch yourself first).
# Where no local CPU wheel is configured, add e.g. TORCH_PIP_ARGS="--index-url <PyTorch CPU wheel index>".
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
STORE ?= .demo/store
PYVER := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
LOCK_ALL := requirements/py$(PYVER)-all.txt
LOCK_TEST := requirements/py$(PYVER)-test.txt
# The Python versions `make lock` writes locks for (Linux x86-64).
LOCK_PYTHONS ?= 3.11 3.12
UV_SPEC ?= uv==0.13.9
LOCK_VENV ?= .venv-lock

.PHONY: demo test lint venv test-venv samples clean bench lock check-lock fixtures

check-lock:
	@test -f $(LOCK_ALL) -a -f $(LOCK_TEST) || { \
	  echo "no lock for Python $(PYVER) in requirements/ (locked: $(LOCK_PYTHONS)); use one of those, or run 'make lock LOCK_PYTHONS=$(PYVER)'" >&2; \
	  exit 1; }

# pip installs exactly the locked files (--no-deps: the lock is complete; hashes are checked), then
# torch, whose dependencies the lock already satisfies, then the project itself without build
# isolation (setuptools comes from the lock). `pip check` proves the result is consistent.
$(VENV)/.installed: pyproject.toml $(wildcard $(LOCK_ALL)) | check-lock
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --no-deps --require-hashes -r $(LOCK_ALL)
	$(PIP) install -q $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"
	$(PIP) install -q --no-deps --no-build-isolation -e .
	$(PIP) check
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed $(wildcard $(LOCK_TEST))
	$(PIP) install -q --no-deps --require-hashes -r $(LOCK_TEST)
	$(PIP) check
	touch $@

venv: $(VENV)/.installed
test-venv: $(VENV)/.installed-test

demo: $(VENV)/.installed
	$(PY) -m tracelens.demo --store $(STORE)

test: $(VENV)/.installed-test
	$(PY) -m ruff check src tests benchmarks
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -n 2 --dist loadfile -o addopts="" -p no:cacheprovider -q

lint: $(VENV)/.installed-test
	$(PY) -m ruff check src tests benchmarks
	$(VENV)/bin/lint-imports

samples: $(VENV)/.installed
	$(PY) -m tracelens.samples

bench: $(VENV)/.installed-test
	@echo "see docs/benchmarks.md: python benchmarks/<name>.py"

# Re-resolve pyproject.toml's ranges against the index and rewrite the locks (test first; the runtime
# lock is constrained to the test lock's versions, so both install into one venv without conflict).
lock:
	test -x $(LOCK_VENV)/bin/uv || { $(PYTHON) -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/pip install -q "$(UV_SPEC)"; }
	for v in $(LOCK_PYTHONS); do \
	  common="pyproject.toml requirements/torch-cpu-deps.in --override requirements/no-torch.txt --python-version $$v \
	    --python-platform x86_64-manylinux_2_28 --generate-hashes --custom-compile-command 'make lock' --upgrade --quiet"; \
	  eval $(LOCK_VENV)/bin/uv pip compile $$common --extra all --extra test -o requirements/py$$v-test.txt && \
	  eval $(LOCK_VENV)/bin/uv pip compile $$common --extra all -c requirements/py$$v-test.txt \
	    -o requirements/py$$v-all.txt || exit 1; \
	done

# Regenerate tests/fixtures/instrumented/: the real instrumentation libraries (pinned in its requirements.txt,
# installed into their own venv, never into .venv) driven against the local fake APIs. Commit the result.
FIXTURES_VENV ?= .venv-fixtures
FIXTURES_DIR := tests/fixtures/instrumented
$(FIXTURES_VENV)/.installed: $(FIXTURES_DIR)/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(FIXTURES_VENV)
	$(FIXTURES_VENV)/bin/python -m pip install -q -r $(FIXTURES_DIR)/requirements.txt -e .
	touch $@

fixtures: $(FIXTURES_VENV)/.installed
	$(FIXTURES_VENV)/bin/python $(FIXTURES_DIR)/generate.py $(if $(ONLY),--only $(ONLY))

clean:
	rm -rf $(VENV) $(LOCK_VENV) $(FIXTURES_VENV) .demo .pytest_cache
