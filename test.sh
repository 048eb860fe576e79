#!/usr/bin/env bash
# Lint, the documentation site (a dead link fails it), then the test suite: sets up what is missing
# (tools/setup_venv.sh) first. Arguments go to pytest: ./test.sh -m slow, ./test.sh tests/test_summary.py
set -euo pipefail
cd "$(dirname "$0")"
tools/setup_venv.sh
.venv/bin/ruff format --check .
.venv/bin/ruff check .
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --site-dir site
exec .venv/bin/python -m pytest "$@"
