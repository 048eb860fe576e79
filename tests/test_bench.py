"""tools/bench.py runs end to end and writes its JSON (a smoke test: timings are not asserted)."""

import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))


def test_bench_writes_every_measure(tmp_path):
    import bench

    out = tmp_path / "bench.json"
    result = bench.main(
        [
            "--pair=resnet8:resnet14",
            "--image_size=16",
            "--batch_size=8",
            "--steps=4",
            "--repeats=1",
            "--switches=2",
            "--width=4",
            f"--out={out}",
        ]
    )
    on_disk = json.loads(out.read_text())
    for key in (
        "a_never_vs_plain_base",
        "b_always_vs_plain_motivated",
        "c_switch_one_way_in_base_steps",
        "d_measured_vs_predicted",
        "e_pipeline_vs_base_model",
        "machine",
        "raw_seconds",
    ):
        assert key in on_disk, key
    assert on_disk["d_counts_per_epoch"]["steps"] == 4
    assert on_disk["cpu_time"]["paired"]["f_update_only_vs_plain_base"] > 0
    assert result["a_never_vs_plain_base"] > 0 and result["c_switch_pair_s"] > 0
