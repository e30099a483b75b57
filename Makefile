# Two commands do everything on a fresh machine:  `make demo`  and  `make test`.
PYTHON ?= python3
DEMO ?= demo

.PHONY: setup demo test

# torch first, pinned to the CPU build: an unpinned torch pulls the newest CUDA build (several GB).
setup:
	$(PYTHON) -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e ".[dev]"

# The main job end to end on the embedded default: a mini face-parsing checkpoint and sample faces.
demo: setup
	$(PYTHON) -m edgeforge zoo make face-parsing --mini -o $(DEMO)/checkpoint
	$(PYTHON) -m edgeforge data synth faces -n 3 --seed 7 -o $(DEMO)/images
	$(PYTHON) -m edgeforge build $(DEMO)/checkpoint -o $(DEMO)/artifacts
	$(PYTHON) -m edgeforge run $(DEMO)/artifacts $(DEMO)/images/images/*.jpg -o $(DEMO)/predictions

test: setup
	$(PYTHON) -m pytest -q
