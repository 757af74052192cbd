#!/usr/bin/env bash
# Installs everything hmvae-tf needs on a fresh Debian 12 machine with Python 3.11:
# Debian packages (abc2midi for the embedded corpus, fluidsynth + a General MIDI soundfont for
# .wav renderings, python3-venv), a virtualenv in .venv with the pinned packages, and, when
# asked (--web), Chromium for the browser tests and the web page's npm packages.
# Idempotent: a second run only checks. Usage: scripts/setup_env.sh [--web]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${HMVAE_VENV:-$ROOT/.venv}
WEB=0
[ "${1:-}" = "--web" ] && WEB=1

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
DEBS="abcmidi fluidsynth fluid-soundfont-gm python3-venv"
[ "$WEB" = 1 ] && DEBS="$DEBS chromium chromium-driver nodejs npm"
missing=""
for p in $DEBS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
# nodejs/npm may come from elsewhere (nvm, NodeSource): only install them when absent.
if [ "$WEB" = 1 ] && command -v node >/dev/null && command -v npm >/dev/null; then
  missing=$(echo "$missing" | tr ' ' '\n' | grep -vxE 'nodejs|npm' | tr '\n' ' ' || true)
fi
if [ -n "${missing// /}" ]; then
  echo "== installing Debian packages:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for c in python3.11 /usr/bin/python3.11 python3; do
    if command -v "$c" >/dev/null && "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PY=$c; break
    fi
  done
fi
[ -n "$PY" ] || { echo "hmvae-tf needs Python 3.11 (set PYTHON=/path/to/python3.11)"; exit 1; }

if [ ! -x "$VENV/bin/python" ]; then
  echo "== creating virtualenv $VENV with $PY"
  "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.hmvae-installed"
if [ ! -f "$STAMP" ] || [ setup.py -nt "$STAMP" ]; then
  echo "== installing Python packages (pinned in setup.py; first time: several minutes)"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -e ".[tfjs,test]"
  touch "$STAMP"
fi
if [ "$WEB" = 1 ] && [ -f web/package.json ]; then
  if [ ! -d web/node_modules ] || [ web/package-lock.json -nt web/node_modules ]; then
    echo "== installing the web page's npm packages"
    (cd web && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
echo "== environment ready: $VENV"
