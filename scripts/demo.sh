#!/usr/bin/env bash
# Sets up everything (Debian packages, .venv) and runs `hmvae demo`: the shipped models served
# over gRPC (sample, interpolate), then the whole chain from nothing (build a dataset subset,
# train briefly, export, serve, sample, interpolate). Output: out/demo/. Extra arguments go to
# `hmvae demo`, e.g. scripts/demo.sh --part=shipped
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_env.sh
VENV=${HMVAE_VENV:-$PWD/.venv}
exec "$VENV/bin/hmvae" demo "$@"
