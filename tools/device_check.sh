#!/usr/bin/env bash
# The accelerator check, one command (README "Performance"); under 10 minutes on one GPU:
#
#   tools/device_check.sh [--tiny] [OUT_DIR]
#
# 1. tools/bench.py in the short-step regime (tiny dense models): plain fit of
#    both models against Never, Always and ConsecutiveDecrease(2), at
#    steps_per_execution 1, 16 and 64, without and with XLA; in float32, then
#    under mixed precision (mixed_float16);
# 2. a short quickstart (configs/quickstart.flags, one epoch) with --mixed_precision;
# 3. tools/bench.py whole_run: the trainer's default run of the prefix pair resnet8:resnet8p14 against plain
#    keras.Model.fit of its bigger network, 3 epochs, 3 interleaved repeats (on a GPU wall-clock is the measure).
# Everything it writes is JSON (and each part's log) under OUT_DIR, by default
# tools/examples/device_check_<commit> (commit it with the README's figures):
#   device_check.json                  the machine, the commands, each part's status and seconds
#   bench_short_steps_float32.json     bench.py's JSON (written after every setting)
#   bench_short_steps_mixed_float16.json
#   quickstart_mixed_precision_summary.json, ..._config.json   the run's summary.json and config.json
#   bench_whole_run.json               the whole-run benchmark's JSON (written after every repeat)
# Each part runs under its own time limit, so the whole stays under 10 minutes;
# a bench cut short keeps the settings it finished ("complete": false).
#
# --tiny: a few steps of every part (a few minutes on a CPU, no GPU needed),
# to prove the script runs end to end; OUT_DIR then defaults to a temporary folder.
# Environment: PYTHON (default .venv/bin/python, else python3); FASHION_MNIST_DIR
# (the quickstart's data, default Debian's /usr/share/datasets/fashion-mnist).
set -uo pipefail
cd "$(dirname "$0")/.."
# This checkout's package, whichever one an editable install points at.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 # the logs as they come, also from a part cut short

usage() {
  echo "usage: tools/device_check.sh [--tiny] [OUT_DIR]" >&2
  exit 2
}

TINY=0
OUT=""
for arg in "$@"; do
  case "$arg" in
    --tiny) TINY=1 ;;
    -h | --help) sed -n '2,26p' "$0"; exit 0 ;;
    -*) echo "tools/device_check.sh: unknown option $arg" >&2; usage ;;
    *) [ -z "$OUT" ] || usage; OUT="$arg" ;;
  esac
done

PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -z "$OUT" ]; then
  if [ "$TINY" = 1 ]; then OUT="$(mktemp -d /tmp/device_check_tiny.XXXXXX)"; else OUT="tools/examples/device_check_$COMMIT"; fi
fi
mkdir -p "$OUT" || exit 1
PARTS="$OUT/.parts.tsv"
: >"$PARTS"

if [ "$TINY" = 1 ]; then
  BENCH=(--model=tiny_dense --image_size=8 --batch_size=64 --steps=8 --repeats=1 --switches=2
    --kinds=plain_base,never,plain_motivated,always,condition --settings=default:1,xla:16)
  QUICK=(--train_size=512 --eval_size=256 --batch_size=64 --model_kwargs=width=4)
  WHOLE=(--epochs=1 --repeats=1)
  LIMITS=(900 900 900 900) # generous: a shared CPU; only the GPU run is timed to fit 10 minutes
else
  # The most telling settings first: a bench cut short by its limit keeps those.
  BENCH=(--model=tiny_dense --image_size=8 --batch_size=64 --steps=256 --repeats=5 --switches=20
    --kinds=plain_base,never,plain_motivated,always,condition
    --settings=default:1,default:16,xla:16,default:64,xla:64,xla:1)
  QUICK=()
  WHOLE=(--epochs=3 --repeats=3)
  LIMITS=(150 120 90 210) # seconds: float32 bench, mixed-precision bench, quickstart, whole runs (9.5 min in all)
fi

# part NAME LIMIT_S COMMAND...: runs the command under its limit, logs to OUT/NAME.log, records the outcome.
part() {
  local name="$1" limit="$2"
  shift 2
  echo "== $name (at most ${limit}s): $*"
  local start end rc status
  start=$(date +%s)
  timeout -k 10 "$limit" "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  end=$(date +%s)
  case "$rc" in
    0) status=ok ;;
    124 | 137) status=timed_out ;;
    *) status=failed ;;
  esac
  echo "   $status (rc $rc, $((end - start)) s); log: $OUT/$name.log"
  [ "$status" = ok ] || tail -n 5 "$OUT/$name.log" | sed 's/^/   | /'
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$status" "$rc" "$((end - start))" "$*" >>"$PARTS"
}

skip() {
  echo "== $1: skipped ($2)"
  printf '%s\t%s\t%s\t%s\t%s\n' "$1" "skipped: $2" "" 0 "" >>"$PARTS"
}

GPUS="$("$PY" -c 'import os; os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf; print(len(tf.config.list_physical_devices("GPU")))' 2>/dev/null | tail -n 1)"
if [ -z "$GPUS" ]; then
  echo "tools/device_check.sh: $PY cannot import TensorFlow (set PYTHON, or set up .venv as the README says)" >&2
  exit 1
fi
if [ "$GPUS" = 0 ] && [ "$TINY" = 0 ]; then
  echo "tools/device_check.sh: TensorFlow sees no GPU here: this check is for a GPU machine" \
    "(tools/device_check.sh --tiny runs a few steps of it on a CPU)" >&2
  exit 2
fi
echo "device check at $COMMIT: $GPUS GPU(s), out: $OUT"

part bench_short_steps_float32 "${LIMITS[0]}" "$PY" tools/bench.py "${BENCH[@]}" \
  --out="$OUT/bench_short_steps_float32.json"
part bench_short_steps_mixed_float16 "${LIMITS[1]}" "$PY" tools/bench.py "${BENCH[@]}" --mixed_precision \
  --out="$OUT/bench_short_steps_mixed_float16.json"

FMNIST="${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}"
if [ -f "$FMNIST/train-images-idx3-ubyte.gz" ]; then
  WORKDIR="$(mktemp -d /tmp/device_check_quickstart.XXXXXX)"
  part quickstart_mixed_precision "${LIMITS[2]}" "$PY" -m keras_motivation.train --flagfile=configs/quickstart.flags \
    --mixed_precision --epochs=1 --verbose=2 --data_dir="$FMNIST" --workdir="$WORKDIR" ${QUICK[@]+"${QUICK[@]}"}
  for f in summary config; do
    [ -f "$WORKDIR/$f.json" ] && cp "$WORKDIR/$f.json" "$OUT/quickstart_mixed_precision_$f.json"
  done
  rm -rf "$WORKDIR"
  part bench_whole_run "${LIMITS[3]}" "$PY" tools/bench.py whole_run --pair=resnet8:resnet8p14 "${WHOLE[@]}" \
    --trainer_flags="--data_dir=$FMNIST ${QUICK[*]+${QUICK[*]}}" --out="$OUT/bench_whole_run.json"
else
  for name in quickstart_mixed_precision bench_whole_run; do
    skip "$name" "no Fashion-MNIST IDX files in $FMNIST: apt-get install dataset-fashion-mnist or set FASHION_MNIST_DIR"
  done
fi

NVIDIA_SMI="$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || true)"
"$PY" - "$OUT" "$COMMIT" "$TINY" "$GPUS" "$NVIDIA_SMI" <<'EOF'
import json, os, platform, sys, time

out, commit, tiny, gpus, smi = sys.argv[1:6]
parts = []
with open(os.path.join(out, ".parts.tsv")) as f:
    for line in f:
        name, status, rc, seconds, command = line.rstrip("\n").split("\t")
        files = sorted(p for p in os.listdir(out) if p.startswith(name) and p.endswith(".json"))
        parts.append({"name": name, "status": status, "rc": int(rc) if rc else None, "seconds": int(seconds),
                      "command": command, "json": files})
report = {"date": time.strftime("%Y-%m-%d %H:%M"), "commit": commit, "tiny": tiny == "1", "gpus": int(gpus),
          "nvidia_smi": [line.strip() for line in smi.splitlines() if line.strip()],
          "platform": platform.platform(), "parts": parts}
with open(os.path.join(out, "device_check.json"), "w") as f:
    json.dump(report, f, indent=2)
print(f"wrote {os.path.join(out, 'device_check.json')}: " + ", ".join(f"{p['name']} {p['status']}" for p in parts))
sys.exit(0 if all(p["status"] == "ok" or p["status"].startswith("skipped") for p in parts) else 1)
EOF
rc=$?
rm -f "$PARTS"
exit $rc
