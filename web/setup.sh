#!/usr/bin/env bash
# One-time (idempotent) setup of the browser / Node side of edgeforge:
#   1. the pinned npm packages (package-lock.json) with `npm ci`;
#   2. the demo page, built into web/dist (what `edgeforge serve-web` serves);
#   3. with --with-browser only: Chromium from Debian's packages, for the headless browser test (Playwright
#      downloads no browser). This is the one step that installs system packages (apt-get): `make test`
#      asks for it, `make demo` and `make demo-web` do not.
# Re-running skips what is already in place. Needs Node.js >= 20.19 and npm.
set -euo pipefail
cd "$(dirname "$0")"

WITH_BROWSER=0
for arg in "$@"; do
    case "$arg" in
        --with-browser) WITH_BROWSER=1 ;;
        *) echo "usage: web/setup.sh [--with-browser]" >&2; exit 2 ;;
    esac
done

if [ "$WITH_BROWSER" = 1 ] && [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -q
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver
fi

# onnxruntime-node's install script would fetch CUDA binaries from outside the npm registry; its CPU
# binaries ship inside the package, which is all edgeforge uses.
export ONNXRUNTIME_NODE_INSTALL_CUDA=skip
if [ ! -f node_modules/.package-lock.json ] || ! cmp -s package-lock.json node_modules/.edgeforge-installed-lock; then
    npm ci --no-audit --no-fund
    cp package-lock.json node_modules/.edgeforge-installed-lock
fi

npm run --silent build
