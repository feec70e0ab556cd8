#!/usr/bin/env bash
# Create/refresh the local virtualenv: torch (pinned CPU wheel) first, then the project with test extras.
# Idempotent: does nothing when .venv is up to date with pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
STAMP=.venv/.modelops-installed
WANT=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then exit 0; fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# --no-compile: Python compiles the modules it imports on first use. Byte-compiling every installed file up front
# (thousands of transformers model files are never imported) made creating .venv take 131 s here instead of 40 s.
.venv/bin/python -m pip install --quiet --no-compile "torch==2.13.0"
.venv/bin/python -m pip install --quiet --no-compile -e ".[test,bench]"
echo "$WANT" > "$STAMP"
echo "bootstrap: .venv ready"
