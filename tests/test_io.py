"""Atomic output: files and directories are either complete or untouched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emnet._io import atomic_dir, atomic_path, check_writable_dir, write_json, write_text


def test_write_text_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "a" / "out.txt"
    write_text(target, "first")
    write_text(target, "second")
    assert target.read_text() == "second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]


def test_failure_leaves_previous_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_write_json_handles_numpy(tmp_path: Path) -> None:
    import numpy as np

    target = write_json(tmp_path / "x.json", {"a": np.float64(1.5), "b": np.arange(3)})
    assert json.loads(target.read_text()) == {"a": 1.5, "b": [0, 1, 2]}


def test_atomic_dir_swaps_only_on_success(tmp_path: Path) -> None:
    out = tmp_path / "report"
    with atomic_dir(out) as d:
        (d / "index.html").write_text("v1")
    assert (out / "index.html").read_text() == "v1"
    with pytest.raises(ValueError), atomic_dir(out) as d:
        (d / "index.html").write_text("v2-partial")
        raise ValueError("section failed")
    assert (out / "index.html").read_text() == "v1"
    assert [p.name for p in tmp_path.iterdir()] == ["report"]


def test_check_writable_dir_rejects_a_file(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ValueError, match="--out: .* is not a directory"):
        check_writable_dir(f)
    assert check_writable_dir(tmp_path / "new" / "dir").is_dir()


def test_outputs_get_normal_permissions(tmp_path: Path) -> None:
    import os
    import stat

    old = os.umask(0o022)
    try:
        f = write_text(tmp_path / "f.txt", "x")
        with atomic_dir(tmp_path / "d") as d:
            (d / "x").write_text("y")
    finally:
        os.umask(old)
    assert stat.S_IMODE(f.stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755
