#!/usr/bin/env bash
# Sets up what this checkout needs, and only what is missing (quickstart.sh and test.sh run it first):
#
#   - the Debian packages python3-venv (when Python cannot make a virtual environment) and
#     dataset-fashion-mnist (when $FASHION_MNIST_DIR, default /usr/share/datasets/fashion-mnist, is
#     not there), with apt-get (as root, or through sudo);
#   - the virtual environment .venv, and `pip install -e ".[cpu,dev,hub]"` into it
#     (KERAS_MOTIVATION_EXTRAS=gpu,dev,hub on a CUDA host; leave out hub for no keras-hub);
#   - with the hub extra, keras-hub itself without its dependencies: they are the extra, but for
#     tensorflow-text, which would bring the full tensorflow wheel beside tensorflow-cpu.
#
# A finished install writes .venv/.installed (the extras and the checksums of setup.py and of this
# script); while it matches, nothing is installed again. Every step it takes is one line on stderr, starting with "set-up:".
set -euo pipefail
cd "$(dirname "$0")/.."

extras="${KERAS_MOTIVATION_EXTRAS:-cpu,dev,hub}"
keras_hub="keras-hub==0.32.*"
stamp=".venv/.installed"
want="$extras $(sha256sum setup.py | cut -d' ' -f1) $(sha256sum tools/setup_venv.sh | cut -d' ' -f1)"
installed=false
if [ -x .venv/bin/python ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  installed=true
fi

packages=()
if [ "$installed" = false ] && [ ! -x .venv/bin/python ] && ! python3 -c "import ensurepip" 2>/dev/null; then
  packages+=(python3-venv)
fi
if [ ! -d "${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}" ]; then
  packages+=(dataset-fashion-mnist)
fi
if [ "${#packages[@]}" -gt 0 ]; then
  sudo=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || {
      echo "set-up: needs the Debian packages ${packages[*]}: run as root, or apt-get install them" >&2
      exit 1
    }
    sudo=(sudo)
  fi
  echo "set-up: apt-get install ${packages[*]}" >&2
  "${sudo[@]}" apt-get update
  "${sudo[@]}" apt-get install -y "${packages[@]}"
fi

if [ "$installed" = false ]; then
  if [ ! -x .venv/bin/python ]; then
    echo "set-up: python3 -m venv .venv" >&2
    python3 -m venv .venv
  fi
  echo "set-up: .venv/bin/pip install -e \".[$extras]\" (a few minutes the first time)" >&2
  .venv/bin/pip install -e ".[$extras]"
  if [[ ",$extras," == *,hub,* ]]; then
    echo "set-up: .venv/bin/pip install --no-deps \"$keras_hub\"" >&2
    .venv/bin/pip install --no-deps "$keras_hub"
  fi
  echo "$want" >"$stamp"
fi
