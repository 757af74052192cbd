#!/usr/bin/env bash
# Sets up everything (Debian packages incl. Chromium, .venv, npm packages of the web page) and
# runs the test suite. Extra arguments go to pytest, e.g. scripts/test.sh -k serving
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_env.sh --web
VENV=${HMVAE_VENV:-$PWD/.venv}
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-3}
exec "$VENV/bin/python" -m pytest -q tests/ "$@"
