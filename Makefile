# Two commands do everything on a fresh machine:  `make demo`  and  `make test`.
# Both work inside a virtual environment (python3 -m venv .venv && . .venv/bin/activate, then make ...;
# or PYTHON=.venv/bin/python make ...). Only `make test` installs a system package: Debian's Chromium,
# for the headless browser test (web/setup.sh --with-browser).
PYTHON ?= python3
DEMO ?= demo
PIP = $(PYTHON) -m pip install --quiet --disable-pip-version-check

.PHONY: setup setup-web setup-test demo demo-web test

# torch first, pinned to the CPU build: an unpinned torch pulls the newest CUDA build (several GB).
setup:
	$(PIP) torch==2.13.0
	$(PIP) -e ".[dev]"

# The demo page and the Node interop packages (npm only; no system packages).
setup-web:
	@if command -v npm >/dev/null; then bash web/setup.sh; else echo "no Node.js: skipping web/ (its tests skip)"; fi

# What the tests need: the Python side, the web side and Chromium for the browser test.
setup-test: setup
	@if command -v npm >/dev/null; then bash web/setup.sh --with-browser; else echo "no Node.js: skipping web/ (its tests skip)"; fi

# The main job end to end on the embedded default: a mini face-parsing checkpoint and sample faces.
demo: setup
	$(PYTHON) -m edgeforge zoo make face-parsing --mini --trained -o $(DEMO)/checkpoint
	$(PYTHON) -m edgeforge data synth faces -n 3 --seed 7 -o $(DEMO)/images
	$(PYTHON) -m edgeforge build $(DEMO)/checkpoint -o $(DEMO)/artifacts
	$(PYTHON) -m edgeforge run $(DEMO)/artifacts $(DEMO)/images/images/*.jpg -o $(DEMO)/predictions

# The demo page in a browser, served from localhost: http://127.0.0.1:8000/
demo-web: demo setup-web
	$(PYTHON) -m edgeforge serve-web $(DEMO)/artifacts

test: setup-test
	$(PYTHON) -m pytest -q
