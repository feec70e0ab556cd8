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
# pip byte-compiles at install on purpose. With --no-compile, creating .venv took 40 s instead of 131 s here, but
# where PYTHONDONTWRITEBYTECODE is set (as on the development machine) nothing is cached later, so every process
# compiled what it imported: the suite then took 940 s instead of 728 s from a clean clone.
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[test,bench]"
echo "$WANT" > "$STAMP"
echo "bootstrap: .venv ready"
