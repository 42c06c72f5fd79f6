# One-command set-up: every target creates what it needs on a fresh machine.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: setup lint format test test-slow demo bench deb clean

$(STAMP): pyproject.toml scripts/system-deps.sh
	sh scripts/system-deps.sh
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# Wheels of the box's compiled dependencies for its other architectures (packaging/fetch_wheels.py),
# so that `make deb` and the package tests build without network.
WHEELS := build/wheels/.fetched-stamp
$(WHEELS): $(STAMP) packaging/debian/tvpay-box.toml packaging/fetch_wheels.py
	$(PY) packaging/fetch_wheels.py
	touch $@

setup: $(STAMP) $(WHEELS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: lint
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test-slow: setup
	$(VENV)/bin/pytest -m slow $(PYTEST_ARGS)

demo: setup
	$(VENV)/bin/tvpay-emulator up

bench: setup
	for b in bench/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info test-output

# Debian packages tvpay-box (amd64, arm64) and tvpay-gateway into build/deb/, offline
# (packaging/build_deb.py).
deb: setup
	$(PY) packaging/build_deb.py --out build/deb
