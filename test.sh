#!/usr/bin/env bash
# Lint, then the test suite: sets up what is missing (tools/setup_venv.sh) first. Arguments go to
# pytest: ./test.sh -m slow, ./test.sh tests/test_summary.py
set -euo pipefail
cd "$(dirname "$0")"
tools/setup_venv.sh
.venv/bin/ruff format --check .
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
