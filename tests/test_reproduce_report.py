"""A reduced reproduction, from tools/reproduce.py to tools/report.py, on real data."""

import csv
import json
import os
import sys

import pytest

from testing_utils import FASHION_MNIST_DIR

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))


@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST_DIR), reason="needs Debian's dataset-fashion-mnist")
def test_reduced_reproduction_and_report(tmp_path):
    import report
    import reproduce

    out = tmp_path / "runs"
    args = [f"--flagfile={ROOT}/configs/quickstart.flags", f"--out={out}", "--seeds=0,1", "--arms=X-C,X-Y,Y-C,ExpA,ExpB",
            "--epochs=1", "--train_size=256", "--extra=--batch_size=32", "--extra=--eval_size=128",
            "--extra=--model_kwargs=width=4"]
    done = reproduce.main(args)
    assert len(done) == 10
    # Resumable: a second call finds every run finished and trains nothing.
    assert reproduce.main(args) == done
    xy = [json.load(open(out / "X-Y" / f"seed{s}" / "summary.json")) for s in (0, 1)]
    expb = json.load(open(out / "ExpB" / "seed0" / "config.json"))
    per_epoch = round(sum(s["activations"]["motivated_steps"] for s in xy) / 2)
    assert expb["condition"] == f"matched_random:per_epoch={max(1, per_epoch)}"

    rows = report.write_report([str(out)], str(tmp_path / "report"))
    table = open(tmp_path / "report" / "results.md").read()
    for name in ("ResNet-8-C", "ResNet-8-ResNet-14-B", "ResNet-8-ResNet-14-M", "ResNet-14-C", "ExpA", "ExpB"):
        assert name in table, name
    # The report's numbers are read back from the run directories.
    by_model = {r["model"]: r for r in rows}
    xc = [json.load(open(out / "X-C" / f"seed{s}" / "summary.json"))["final"]["accuracy"] * 100 for s in (0, 1)]
    assert by_model["ResNet-8-C"]["accuracy_mean"] == pytest.approx(sum(xc) / 2)
    assert by_model["ResNet-8-C"]["seeds"] == 2
    xyb = [r for r in rows if r["arm"].startswith("X-Y") and r["model"].endswith("-B k=2")] or \
          [r for r in rows if r["arm"].startswith("X-Y") and "-B" in r["model"]]
    assert xyb and "acc_per_mflop" in xyb[0] and "acc_f_ratio" in xyb[0]
    assert xyb[0]["noise_rate"] == pytest.approx(1 / 6)
    with open(tmp_path / "report" / "results.csv") as f:
        assert len(list(csv.DictReader(f))) == len(rows)
    for png in ("dynamics.png", "accuracy_vs_flops.png"):
        assert os.path.getsize(tmp_path / "report" / png) > 10_000
