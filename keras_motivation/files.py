"""Files a kill cannot leave half-written, and the CSV logs read back.

Every file of a workdir (config, backups, logs, final models, summary,
exports) is written to a temporary name in the same directory and renamed
over the target: a reader, or a resumed run, sees the old file or the new
one, never a part of it.
"""

import contextlib
import csv
import os
import shutil
import tempfile


@contextlib.contextmanager
def replacing(path, suffix="", durable=False):
    """Yields a temporary path next to `path`; renames it to `path` when the block ends without error.

    `suffix` keeps the extension writers dispatch on (Keras saves `.keras`
    and `.weights.h5` by name). A directory is replaced whole. `durable`:
    the new file is on the disk before the rename and the rename before the
    block ends (fsync), so a machine that goes away right after keeps it.
    """
    with replacing_all([path], [suffix], durable=durable) as (tmp,):
        yield tmp


@contextlib.contextmanager
def replacing_all(paths, suffixes=None, durable=False):
    """`replacing` for several files written together: yields one temporary path per path; when the block
    ends without error, renames each over its path, in order. When the block fails (a full disk, a
    writer's error) none of `paths` has changed; a kill between two renames leaves the first ones new."""
    suffixes = list(suffixes or [""] * len(paths))
    temporaries = []
    try:
        for path, suffix in zip(paths, suffixes):
            directory = os.path.dirname(os.path.abspath(path))
            os.makedirs(directory, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=suffix)
            os.close(fd)
            os.remove(tmp)  # the writer creates it (some refuse to overwrite)
            temporaries.append(tmp)
        yield list(temporaries)
        if durable:
            for tmp in temporaries:
                _fsync_tree(tmp)
        for path, tmp in zip(paths, temporaries):
            if os.path.isdir(tmp) and os.path.exists(path):
                shutil.rmtree(path)
            os.replace(tmp, path)
        if durable:
            for directory in sorted({os.path.dirname(os.path.abspath(p)) for p in paths}):
                _fsync(directory)
    finally:
        for tmp in temporaries:
            if os.path.isdir(tmp):
                shutil.rmtree(tmp, ignore_errors=True)
            elif os.path.exists(tmp):
                os.remove(tmp)


def _fsync(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path):
    """fsync of a file, or of every file and directory under a directory."""
    if not os.path.isdir(path):
        _fsync(path)
        return
    for folder, _, names in os.walk(path):
        for name in names:
            _fsync(os.path.join(folder, name))
        _fsync(folder)


def atomic_write(path, data):
    """Writes `data` (str or bytes) to `path` atomically."""
    with replacing(path) as tmp:
        with open(tmp, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)


def read_csv(path):
    """Rows of a CSV file as dicts ([] when the file does not exist)."""
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def truncate_csv(path, keep):
    """Keeps the header and the rows for which `keep(row)` is true (atomically)."""
    if not os.path.exists(path):
        return
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, [r for r in reader if keep(r)]
    if not fields:  # killed before the first row: nothing to keep
        return
    with replacing(path) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
