"""Starts N workers of the trainer on this machine, a real MultiWorkerMirroredStrategy cluster on loopback.

    python tools/launch_local_cluster.py --workers=2 -- \
        --flagfile=configs/quickstart.flags --workdir=/tmp/km_cluster

Everything after `--` goes to every `python -m keras_motivation.train`
(`--strategy=multi_worker` is added). Each worker gets a `TF_CONFIG` naming
free 127.0.0.1 ports; worker 0 is the chief and writes the workdir. Output
lines are prefixed with the worker index; the exit code is the first non-zero
one. For trying multi-worker training and resumption without a cluster: on
real hosts, set TF_CONFIG yourself or use Slurm (see docs/several-machines.md).
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import threading


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_configs(n):
    """One TF_CONFIG (JSON) per worker of an n-worker loopback cluster."""
    cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(n)]}
    return [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}) for i in range(n)]


def start_workers(command, n, env=None):
    """Popen objects for n copies of `command`, each with its TF_CONFIG; env: dict or [dict per worker]."""
    envs = env if isinstance(env, list) else [env or {}] * n
    return [
        subprocess.Popen(
            command,
            env={**os.environ, **envs[i], "TF_CONFIG": config},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i, config in enumerate(tf_configs(n))
    ]


def wait(procs, timeout=None, echo=True):
    """Waits for every worker; returns [(returncode, output)]; kills them all on timeout."""
    outputs = [[] for _ in procs]

    def pump(i, p):
        for line in p.stdout:
            outputs[i].append(line)
            if echo:
                sys.stdout.write(f"[worker {i}] {line}")

    threads = [threading.Thread(target=pump, args=(i, p), daemon=True) for i, p in enumerate(procs)]
    for t in threads:
        t.start()
    try:
        for p in procs:
            p.wait(timeout=timeout)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for t in threads:
            t.join(timeout=10)
    return [(p.returncode, "".join(out)) for p, out in zip(procs, outputs)]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    own, train_args = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="Number of worker processes.")
    parser.add_argument("--timeout", type=float, default=None, help="Seconds before every worker is killed.")
    args = parser.parse_args(own)
    if args.workers < 1:
        parser.error("--workers must be at least 1.")
    command = [sys.executable, "-m", "keras_motivation.train", "--strategy=multi_worker", *train_args]
    results = wait(start_workers(command, args.workers), timeout=args.timeout)
    return next((rc for rc, _ in results if rc), 0)


if __name__ == "__main__":
    sys.exit(main())
