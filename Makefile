# vpcpeer developer entry points. `make demo` and `make test` are the README quick start.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.vpcpeer-installed

.PHONY: setup demo dev test test-unit lock lambda preview clean bench

# Install exactly the locked set, then this project (editable) without re-resolving.
setup: $(STAMP)
$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip check
	@touch $@

# The main job on the embedded default: local AWS, rollout, a day of flow logs, analysis.
demo: setup
	$(BIN)/vpcpeer demo

# The Dagster UI on the same instance as the demo: `dg dev` ([tool.dg] in pyproject.toml loads
# the same code location as workspace.yaml; `dagster dev` prints that it is superseded).
dev: setup
	DAGSTER_HOME=$(CURDIR)/dagster_home $(BIN)/dg dev

test: setup
	$(BIN)/python -m pytest -q

test-unit: setup
	$(BIN)/python -m pytest -q tests/unit

preview: setup
	$(BIN)/vpcpeer infra preview --json

lambda: setup
	$(BIN)/vpcpeer lambda build

# Re-resolve the lock file from pyproject.toml (needs network access to PyPI).
lock:
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

clean:
	rm -rf build .pytest_cache

# Performance figures (not tests), all in one run: written to docs/benchmarks.md.
bench: setup
	$(BIN)/python -m bench.run
