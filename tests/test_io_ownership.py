"""emnet._io's ownership rule for output directories: the marker, refusals, --force,
staged output moved into place, and cleaning what a killed run left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from emnet import _io
from emnet._io import MARKER, check_output_dir, claim_dir, clean_stale, owned_output


def _write(stage: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (stage / rel).parent.mkdir(parents=True, exist_ok=True)
        (stage / rel).write_text(text)


def _run(target: Path, config: dict, files: dict[str, str], force: bool = False) -> None:
    with owned_output(target, "em", config, force=force) as stage:
        _write(stage, files)


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], text=True,
                          capture_output=True, check=True)  # fmt: skip
    return int(proc.stdout)


def test_new_directory_gets_the_files_and_a_marker(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b" / "out"
    _run(out, {"k": 3}, {"summary.json": "1", "figures/x.png": "2"})
    marker = json.loads((out / MARKER).read_text())
    assert marker["command"] == "em" and marker["config"] == {"k": 3}
    assert marker["files"] == ["figures/x.png", "summary.json"]
    assert sorted(_tree(out)) == [MARKER, "figures/x.png", "summary.json"]
    assert [p.name for p in (tmp_path / "a" / "b").iterdir()] == ["out"]  # no temporaries


def test_refuses_a_non_empty_directory_it_does_not_own(tmp_path: Path) -> None:
    """Item 1: a user's own summary.json / model.npz are never replaced."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / "summary.json").write_text("my summary")
    (out / "model.npz").write_bytes(b"my model")
    before = _tree(out)
    with pytest.raises(ValueError, match=r"--out: .*mine is a non-empty directory that does not"):
        _run(out, {"k": 3}, {"summary.json": "new"})
    with pytest.raises(ValueError, match="does not hold an emnet em result"):
        _run(out, {"k": 3}, {"summary.json": "new"}, force=True)  # --force does not help
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_another_configuration_needs_force_and_then_replaces_only_emnets_files(
    tmp_path: Path,
) -> None:
    """Item 2: K = 2:4 then K = 3 must not leave selection.json and bic.png of the first."""
    out = tmp_path / "d"
    _run(out, {"k": [2, 3, 4]}, {"selection.json": "best 2", "bic.png": "b", "model.npz": "m2"})
    (out / "notes.txt").write_text("mine")  # a user's file inside emnet's directory
    before = _tree(out)
    with pytest.raises(ValueError, match=r"different configuration \(k was \[2, 3, 4\], now 3\)"):
        _run(out, {"k": 3}, {"model.npz": "m3", "summary.json": "s3"})
    assert _tree(out) == before
    _run(out, {"k": 3}, {"model.npz": "m3", "summary.json": "s3"}, force=True)
    assert sorted(_tree(out)) == [MARKER, "model.npz", "notes.txt", "summary.json"]
    assert (out / "notes.txt").read_text() == "mine" and (out / "model.npz").read_text() == "m3"
    _run(out, {"k": 3}, {"model.npz": "m3b"})  # the same configuration: no --force needed
    assert sorted(_tree(out)) == [MARKER, "model.npz", "notes.txt"]


def test_a_user_file_where_a_new_file_would_go_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "d"
    _run(out, {"k": 3}, {"model.npz": "m"})
    (out / "selection.json").write_text("the user's")
    before = _tree(out)
    with pytest.raises(ValueError, match="selection.json was not written by emnet"):
        _run(out, {"k": [2, 3]}, {"model.npz": "m", "selection.json": "emnet's"}, force=True)
    assert _tree(out) == before
    assert [p.name for p in out.iterdir() if p.name.startswith(".emnet-stage")] == []


def test_failure_or_interrupt_leaves_the_old_result_and_no_new_directory(tmp_path: Path) -> None:
    """Item 13: a failed run leaves no empty --out (nor parents it created)."""
    out = tmp_path / "new" / "out"
    with pytest.raises(RuntimeError), owned_output(out, "em", {}) as stage:
        (stage / "half.png").write_text("x")
        raise RuntimeError("fit failed")
    assert list(tmp_path.iterdir()) == []
    _run(out, {"k": 1}, {"a": "old"})
    before = _tree(out)
    with pytest.raises(KeyboardInterrupt), owned_output(out, "em", {"k": 1}) as stage:
        (stage / "a").write_text("new, half")
        raise KeyboardInterrupt
    assert _tree(out) == before
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "a"]


def test_dot_as_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Item 5: --out . in an empty directory works and leaves no temporary."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    _run(Path("."), {"quick": True}, {"index.html": "<html>"})
    assert sorted(p.name for p in work.iterdir()) == [MARKER, "index.html"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]
    _run(Path("."), {"quick": True}, {"index.html": "<html>2"})
    assert (work / "index.html").read_text() == "<html>2"
    with pytest.raises(ValueError, match="expected a directory name"):
        _run("", {}, {})  # type: ignore[arg-type]


def test_marker_that_is_not_emnets_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "d"
    out.mkdir()
    for text in ("not json", "[1, 2]", json.dumps({"command": "em", "config": {},
                                                   "files": ["../outside.txt"]})):  # fmt: skip
        (out / MARKER).write_text(text)
        with pytest.raises(ValueError, match=r"\.emnet-run\.json"):
            _run(out, {}, {"a": "x"}, force=True)
    assert (tmp_path / "d" / MARKER).exists() and not (tmp_path / "outside.txt").exists()


def test_stale_staging_of_a_dead_run_is_removed_or_finished(tmp_path: Path) -> None:
    out = tmp_path / "d"
    _run(out, {"k": 1}, {"a": "old", "b": "old"})
    pid = _dead_pid()
    # an incomplete staging directory inside, one next to a new target, and a live one
    for stage, alive in ((out / ".emnet-stage-abcd1234", False),
                         (tmp_path / ".n.emnet-stage-abcd1234", False),
                         (out / ".emnet-stage-live0000", True)):  # fmt: skip
        stage.mkdir()
        info = {"pid": os.getpid() if alive else pid, "host": os.uname().nodename}
        (stage / ".emnet-stage.json").write_text(json.dumps(info))
        (stage / "a").write_text("partial")
    # a complete one, killed half-way through its commit (b moved, a not yet)
    done = out / ".emnet-stage-done0000"
    done.mkdir()
    (done / ".emnet-stage.json").write_text(json.dumps({"pid": pid, "host": os.uname().nodename}))
    (done / "a").write_text("new")
    (done / MARKER).write_text(json.dumps(_io._marker("em", {"k": 2}, ["a", "b"])))
    (done / ".emnet-commit").write_text("")
    (out / "b").write_text("new")
    # the temporary of an atomic write a SIGKILL interrupted
    (out / ".a.x1y2z3w4").write_text("tmp")
    (out / ".notes.txt.x1y2z3w4").write_text("a user's file with a similar name")
    clean_stale(out, ["a", "b"])
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([".emnet-stage-live0000", MARKER, ".notes.txt.x1y2z3w4", "a", "b"])
    assert (out / "a").read_text() == "new" and (out / "b").read_text() == "new"
    assert json.loads((out / MARKER).read_text())["config"] == {"k": 2}
    clean_stale(tmp_path / "n")
    assert not (tmp_path / ".n.emnet-stage-abcd1234").exists()


def test_stale_plot_temporary_is_removed_on_start(tmp_path: Path) -> None:
    """Item 13: .curves.png.XXXX.png from a killed plot is removed by the next run."""
    out = claim_dir(tmp_path / "r", "resnet", {"e": 1}, ["curves.png", "state/w1_s0.pt"])
    (out / "state").mkdir()
    (out / ".curves.png.abcd_123.png").write_bytes(b"half")
    (out / "state" / ".w1_s0.pt.abcd_123.pt").write_bytes(b"half")
    claim_dir(out, "resnet", {"e": 1}, ["curves.png", "state/w1_s0.pt"])
    assert sorted(_tree(out)) == [MARKER]


def test_claim_dir_resumes_same_config_and_force_removes_only_listed_files(
    tmp_path: Path,
) -> None:
    out = tmp_path / "r"
    claim_dir(out, "resnet", {"lr": 0.1}, ["results.csv", "state/w1_s0.pt"])
    (out / "state").mkdir()
    (out / "state" / "w1_s0.pt").write_text("ckpt")
    (out / "state" / "mine.txt").write_text("user")
    (out / "results.csv").write_text("r")
    claim_dir(out, "resnet", {"lr": 0.1}, ["results.csv", "state/w1_s0.pt"])  # resume
    assert (out / "state" / "w1_s0.pt").read_text() == "ckpt"
    with pytest.raises(ValueError, match=r"lr was 0\.1, now 0\.05\); use --force"):
        claim_dir(out, "resnet", {"lr": 0.05}, ["results.csv"])
    claim_dir(out, "resnet", {"lr": 0.05}, ["results.csv"], force=True)
    assert sorted(_tree(out)) == [MARKER, "state/mine.txt"]


def test_check_output_dir_names_bad_paths(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="--out: .*file exists and is not a directory"):
        check_output_dir(tmp_path / "file", "em", {})
    with pytest.raises(ValueError, match="--out: cannot create .*sub: .*file is not a directory"):
        _run(tmp_path / "file" / "sub", {}, {})
    with pytest.raises(ValueError, match="--out: cannot use .*File name too long"):
        check_output_dir(tmp_path / ("a" * 300), "em", {})
    assert (tmp_path / "file").read_text() == "x"


def test_a_setting_left_at_its_default_is_named_so():
    """A setting the configuration records only when it is not the default: the refusal
    says 'not given (its default)', not 'was None' (emnet lca --covariance)."""
    from emnet._io import _describe_difference

    old = {"command": "lca", "config": {"k": 3}}
    why = _describe_difference(old, "lca", {"k": 3, "covariance": "EEE"})
    assert why == "covariance was not given (its default), now 'EEE'"
