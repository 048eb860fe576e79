"""files.py: writes a kill or an error cannot leave half-done, and the CSV helpers."""

import os

import pytest

from keras_motivation import files


def test_atomic_write_text_and_bytes(tmp_path):
    path = tmp_path / "sub" / "a.json"
    files.atomic_write(str(path), "one")
    files.atomic_write(str(path), "two")
    assert path.read_text() == "two"
    files.atomic_write(str(tmp_path / "b.bin"), b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert sorted(os.listdir(tmp_path / "sub")) == ["a.json"]  # no temporary file left


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "state.json"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with files.replacing(str(path)) as tmp:
            with open(tmp, "w") as f:
                f.write("half")
            raise RuntimeError("killed")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["state.json"]


def test_a_directory_is_replaced_whole(tmp_path):
    target = tmp_path / "export" / "1"
    for content in ("first", "second"):
        with files.replacing(str(target)) as tmp:
            os.makedirs(os.path.join(tmp, "assets"))
            with open(os.path.join(tmp, "assets", content), "w") as f:
                f.write(content)
    assert os.listdir(target / "assets") == ["second"]
    assert os.listdir(tmp_path / "export") == ["1"]


def test_replacing_keeps_the_suffix_writers_need(tmp_path):
    with files.replacing(str(tmp_path / "m.keras"), suffix=".keras") as tmp:
        assert tmp.endswith(".keras") and not os.path.exists(tmp)
        with open(tmp, "w"):
            pass
    assert os.listdir(tmp_path) == ["m.keras"]


def test_csv_read_and_truncate(tmp_path):
    path = tmp_path / "batches.csv"
    assert files.read_csv(str(path)) == []
    path.write_text("step,loss\n1,0.5\n2,0.4\n3,0.3\n")
    files.truncate_csv(str(path), lambda r: int(r["step"]) <= 2)
    assert files.read_csv(str(path)) == [{"step": "1", "loss": "0.5"}, {"step": "2", "loss": "0.4"}]
    assert os.listdir(tmp_path) == ["batches.csv"]


def test_truncate_csv_leaves_missing_and_empty_files_alone(tmp_path):
    files.truncate_csv(str(tmp_path / "missing.csv"), lambda r: True)
    assert not (tmp_path / "missing.csv").exists()
    empty = tmp_path / "history.csv"  # a run killed before its first epoch ended
    empty.write_text("")
    files.truncate_csv(str(empty), lambda r: True)
    assert empty.read_text() == "" and sorted(p.name for p in tmp_path.iterdir()) == ["history.csv"]
