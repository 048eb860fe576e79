"""Workdir logs: truncation on resume, including files killed before their first row."""

from keras_motivation import callbacks as callbacks_lib


def test_truncate_csv_keeps_header_and_selected_rows(tmp_path):
    path = tmp_path / "batches.csv"
    path.write_text("step,batch_loss\n1,0.5\n2,0.4\n3,0.3\n")
    callbacks_lib.truncate_csv(str(path), lambda r: int(r["step"]) <= 2)
    assert path.read_text().splitlines() == ["step,batch_loss", "1,0.5", "2,0.4"]
    assert callbacks_lib.read_csv(str(path)) == [{"step": "1", "batch_loss": "0.5"}, {"step": "2", "batch_loss": "0.4"}]


def test_truncate_csv_leaves_missing_and_empty_files_alone(tmp_path):
    callbacks_lib.truncate_csv(str(tmp_path / "missing.csv"), lambda r: True)
    assert not (tmp_path / "missing.csv").exists()
    empty = tmp_path / "history.csv"  # a run killed before its first epoch ended
    empty.write_text("")
    callbacks_lib.truncate_csv(str(empty), lambda r: True)
    assert empty.read_text() == "" and sorted(p.name for p in tmp_path.iterdir()) == ["history.csv"]
