# Two commands do everything on a fresh machine:  `make demo`  and  `make test`.
PYTHON ?= python3
DEMO ?= demo

.PHONY: setup demo demo-web test

# torch first, pinned to the CPU build: an unpinned torch pulls the newest CUDA build (several GB).
setup:
	$(PYTHON) -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	@if command -v npm >/dev/null; then bash web/setup.sh; else echo "no Node.js: skipping web/ (its tests skip)"; fi

# The main job end to end on the embedded default: a mini face-parsing checkpoint and sample faces.
demo: setup
	$(PYTHON) -m edgeforge zoo make face-parsing --mini --trained -o $(DEMO)/checkpoint
	$(PYTHON) -m edgeforge data synth faces -n 3 --seed 7 -o $(DEMO)/images
	$(PYTHON) -m edgeforge build $(DEMO)/checkpoint -o $(DEMO)/artifacts
	$(PYTHON) -m edgeforge run $(DEMO)/artifacts $(DEMO)/images/images/*.jpg -o $(DEMO)/predictions

# The demo page in a browser, served from localhost: http://127.0.0.1:8000/
demo-web: demo
	$(PYTHON) -m edgeforge serve-web $(DEMO)/artifacts

test: setup
	$(PYTHON) -m pytest -q
