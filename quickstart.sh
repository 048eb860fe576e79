#!/usr/bin/env bash
# The main job: sets up what is missing (tools/setup_venv.sh), then trains the quickstart on Debian's
# Fashion-MNIST files. Flags after the flagfile override it: ./quickstart.sh --epochs=1 --workdir=/tmp/mine
set -euo pipefail
cd "$(dirname "$0")"
tools/setup_venv.sh
exec .venv/bin/python -m keras_motivation.train --flagfile=configs/quickstart.flags "$@"
