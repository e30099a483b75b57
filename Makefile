# Two commands do everything on a fresh machine:  `make demo`  and  `make test`.
# Both work inside a virtual environment (python3 -m venv .venv && . .venv/bin/activate, then make ...;
# or PYTHON=.venv/bin/python make ...). Only `make test` installs system packages: Debian's Chromium,
# for the headless browser test (web/setup.sh --with-browser), and qemu-user-static + mmdebstrap for the
# ARM64 check (setup-arm64).
PYTHON ?= python3
DEMO ?= demo
PIP = $(PYTHON) -m pip install --quiet --disable-pip-version-check

.PHONY: setup setup-web setup-test setup-arm64 check-arm64 demo demo-web test

# torch first, pinned to the CPU build: an unpinned torch pulls the newest CUDA build (several GB).
setup:
	$(PIP) torch==2.13.0
	$(PIP) -e ".[dev]"

# The demo page and the Node interop packages (npm only; no system packages).
setup-web:
	@if command -v npm >/dev/null; then bash web/setup.sh; else echo "no Node.js: skipping web/ (its tests skip)"; fi

# What the tests need: the Python side, the web side and Chromium for the browser test, the ARM64 emulation.
setup-test: setup setup-arm64
	@if command -v npm >/dev/null; then bash web/setup.sh --with-browser; else echo "no Node.js: skipping web/ (its tests skip)"; fi

# Debian's user-mode qemu and mmdebstrap: an aarch64 Python runs here without ARM hardware or binfmt_misc.
setup-arm64:
	@if command -v qemu-aarch64-static >/dev/null && command -v mmdebstrap >/dev/null; then :; \
	else apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static mmdebstrap >/dev/null; fi

# Every variant of the three trained minis, built here for every Linux target, run on emulated aarch64 and
# compared with this machine; the verdicts go into each manifest and the table into $(ARM64)/report.
ARM64 ?= arm64-check
check-arm64: setup setup-arm64
	for name in face-parsing clothes-parsing facial-emotions; do \
	  $(PYTHON) -m edgeforge zoo make $$name --mini --trained -o $(ARM64)/checkpoints/$$name && \
	  $(PYTHON) -m edgeforge build $(ARM64)/checkpoints/$$name -o $(ARM64)/artifacts/$$name \
	    --targets onnx,ort,openvino,litert --bench none || exit 1; \
	done
	$(PYTHON) -m edgeforge check-arm64 $(ARM64)/artifacts/* -o $(ARM64)/report --record

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
