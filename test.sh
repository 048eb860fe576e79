#!/usr/bin/env bash
# Lint, the documentation site (a dead link fails it), then the test suite: sets up what is missing
# (tools/setup_venv.sh) first, and, as root on Debian, the headless Chromium that the site's browser check opens
# it in (tests/test_docs.py; without it that check is skipped). Arguments go to pytest: ./test.sh -m slow,
# ./test.sh tests/test_summary.py
set -euo pipefail
cd "$(dirname "$0")"
tools/setup_venv.sh
if ! command -v chromium-headless-shell >/dev/null && ! command -v chromium >/dev/null \
  && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "set-up: apt-get install chromium-headless-shell (the site's browser check)" >&2
  { apt-get update -q && apt-get install -y -q chromium-headless-shell >/dev/null; } \
    || echo "set-up: chromium-headless-shell did not install; the browser check will be skipped" >&2
fi
.venv/bin/ruff format --check .
.venv/bin/ruff check .
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --site-dir site
# The tests read the site just built (tests/test_docs.py) instead of building it again.
KERAS_MOTIVATION_SITE=site exec .venv/bin/python -m pytest "$@"
