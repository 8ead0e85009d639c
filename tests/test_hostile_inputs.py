"""A sweep over the CLI with hostile inputs (issue 12): every case must end with exit code 2
and exactly one line on stderr (no traceback, no warning), and every file that existed
before the run must be there afterwards, byte for byte, with nothing new left behind."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from report_stubs import replace_builds

from emnet.cli import main
from emnet.report import SECTIONS

LONG = "n" * 300  # longer than NAME_MAX (255)
TINY_RESNET = ["--widths", "1", "--seeds", "1", "--epochs", "0", "--batch-size", "256",
               "--no-progress"]  # fmt: skip


# ---------------------------------------------------------------------- setups


def user_files(*names: str) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        d = tmp / "out"
        d.mkdir()
        for name in names:
            (d / name).write_bytes(f"the user's own {name}\n".encode())

    return setup


def a_file(name: str, content: bytes = b"a user's file\n") -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        (tmp / name).write_bytes(content)

    return setup


def data_dir(tmp: Path) -> None:
    (tmp / "data.csv").mkdir()


def emnet_output(command: str, config: dict, files: dict[str, bytes]) -> Callable[[Path], None]:
    """An output directory an earlier emnet run owns (written through emnet._io)."""

    def setup(tmp: Path) -> None:
        from emnet._io import owned_output

        with owned_output(tmp / "out", command, config) as stage:
            for rel, content in files.items():
                (stage / rel).parent.mkdir(parents=True, exist_ok=True)
                (stage / rel).write_bytes(content)
        (tmp / "out" / "notes.txt").write_text("the user's notes inside emnet's directory")

    return setup


EM_K3 = {"data": None, "header": None, "k": 3, "seed": 0, "max_iter": 200, "n_init": 1}


def thesis_beside_index(tmp: Path) -> None:
    d = tmp / "out"
    d.mkdir()
    (d / "thesis.tex").write_text("\\documentclass{article}")
    (d / "index.html").write_text('<meta name="generator" content="emnet report 0.1.0">')


@pytest.fixture(scope="module")
def resnet_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny sweep (epochs 0): a directory `emnet resnet` owns, with a checkpoint."""
    out = tmp_path_factory.mktemp("resnet") / "out"
    assert main(["resnet", *TINY_RESNET, "--out", str(out)]) == 0
    assert (out / "state" / "w1_s0.pt").is_file()
    return out


def checkpoint(kind: str) -> Callable[[Path, Path], None]:
    def setup(tmp: Path, run: Path) -> None:
        shutil.copytree(run, tmp / "out")
        ckpt = tmp / "out" / "state" / "w1_s0.pt"
        if kind == "truncated":
            ckpt.write_bytes(ckpt.read_bytes()[:200])
        elif kind == "empty":
            ckpt.write_bytes(b"")
        elif kind == "pickle":
            import pickle

            class Payload:
                def __reduce__(self):
                    return (os.system, ("echo pwned",))

            ckpt.write_bytes(pickle.dumps({"epoch": 0, "model": Payload()}))
        elif kind == "other state":
            import torch

            torch.save({"epoch": 0, "model": {}}, ckpt)

    return setup


def legacy_config_not_an_object(tmp: Path) -> None:
    d = tmp / "out"
    (d / "state").mkdir(parents=True)
    (d / "config.json").write_text("[1, 2, 3]\n")
    (d / "state" / "w1_s0.pt").write_bytes(b"")


# ---------------------------------------------------------------------- the cases

CSV_BODY = "0,1,1\n1,0,1\n1,1,0\n0,0,1\n"

CASES = [
    # emnet em: --out
    ("em user summary.json", ["em", "--k", "2", "--out", "{tmp}/out"],
     user_files("summary.json", "model.npz"), "--out: "),
    ("em user files, --force", ["em", "--k", "2", "--out", "{tmp}/out", "--force"],
     user_files("results.csv"), "does not hold an emnet em result"),
    ("em other configuration", ["em", "--k", "2:4", "--out", "{tmp}/out"],
     emnet_output("em", EM_K3, {"summary.json": b"{}", "model.npz": b"m"}),
     "different configuration (k was 3, now [2, 3, 4])"),
    ("em in a resnet dir", ["em", "--k", "3", "--out", "{tmp}/out"],
     emnet_output("resnet", {"epochs": 1}, {"results.csv": b"r"}), "`emnet resnet`"),
    ("em user file in the way", ["em", "--k", "2:3", "--max-iter", "2", "--out", "{tmp}/out",
                                 "--force"],
     lambda tmp: (emnet_output("em", EM_K3, {"model.npz": b"m"})(tmp),
                  (tmp / "out" / "selection.json").write_text("mine")),
     "selection.json was not written by emnet"),
    ("em out is a file", ["em", "--out", "{tmp}/f"], a_file("f"), "--out: "),
    ("em out under a file", ["em", "--out", "{tmp}/f/sub"], a_file("f"), "--out: "),
    ("em out too long", ["em", "--out", "{tmp}/" + LONG], None, "--out: "),
    ("em out empty name", ["em", "--out", ""], None, "--out: expected a directory name"),
    # emnet em: --data
    ("em data missing", ["em", "--data", "{tmp}/missing.csv", "--out", "{tmp}/o"], None,
     "--data: "),
    ("em data is a directory", ["em", "--data", "{tmp}/data.csv", "--out", "{tmp}/o"], data_dir,
     "is a directory"),
    ("em data too long", ["em", "--data", "{tmp}/" + LONG + ".csv", "--out", "{tmp}/o"], None,
     "File name too long"),
    ("em garbled first row", ["em", "--data", "{tmp}/g.csv", "--k", "2", "--out", "{tmp}/o"],
     a_file("g.csv", b"0,1,?\n" + CSV_BODY.encode()), "line 1"),
    ("em garbled, --no-header", ["em", "--data", "{tmp}/g.csv", "--no-header", "--out",
                                 "{tmp}/o"],
     a_file("g.csv", b"0,1,?\n" + CSV_BODY.encode()), "line 1 column 3"),
    ("em binary csv", ["em", "--data", "{tmp}/b.csv", "--out", "{tmp}/o"],
     a_file("b.csv", bytes(range(256))), "--data: "),
    ("em npz named npy", ["em", "--data", "{tmp}/z.npy", "--out", "{tmp}/o"],
     a_file("z.npy", b"PK\x03\x04" + b"\x00" * 40), "--data: "),
    ("em header with npy", ["em", "--data", "{tmp}/x.npy", "--header", "--out", "{tmp}/o"],
     lambda tmp: np.save(tmp / "x.npy", np.eye(3)), "CSV files only"),
    # emnet em: numbers
    ("em n-jobs 0", ["em", "--k", "2:3", "--n-jobs", "0", "--out", "{tmp}/o"], None,
     "--n-jobs"),
    ("em scheduler not a url", ["em", "--k", "2:3", "--scheduler", "notaurl", "--out",
                                "{tmp}/o"], None, "--scheduler"),
    ("em scheduler single K", ["em", "--k", "3", "--scheduler", "tcp://127.0.0.1:1", "--out",
                               "{tmp}/o"], None, "--scheduler: only used"),
    ("em n-jobs single K", ["em", "--k", "3", "--n-jobs", "2", "--out", "{tmp}/o"], None,
     "--n-jobs: only used"),
    ("em negative max-iter", ["em", "--max-iter", "-1e300", "--out", "{tmp}/o"], None,
     "--max-iter: expected a positive integer, got '-1e300'"),
    ("em k too big", ["em", "--data", "{tmp}/d.csv", "--k", "9", "--out", "{tmp}/o"],
     a_file("d.csv", CSV_BODY.encode()), "--k: 9 components need at least 9 rows"),
    # emnet grad
    ("grad nan", ["grad", "--x", "nan", "--no-picture"], None, "--x"),
    ("grad inf", ["grad", "--w3", "-1e400", "--no-picture"], None, "--w3"),
    ("grad word", ["grad", "--w1", "one"], None, "--w1"),
    ("grad out is a file", ["grad", "--out", "{tmp}/f"], a_file("f"), "--out: "),
    ("grad out too long", ["grad", "--out", "{tmp}/" + LONG], None, "--out: "),
    # emnet shapes
    ("shapes negative size", ["shapes", "1x-28x28 conv20k5"], None,
     "input shape '1x-28x28': expected CxHxW with whole numbers >= 1"),
    ("shapes fractional kernel", ["shapes", "1x28x28 conv20k3.5"], None,
     "'conv20k3.5': conv sizes and options are whole numbers >= 0, but '.5' follows"),
    ("shapes empty", ["shapes", " "], None, "spec is empty"),
    ("shapes unknown", ["shapes", "1x28x28 dropout5"], None, "unknown layer"),
    # emnet resnet
    ("resnet user results.csv", ["resnet", *TINY_RESNET, "--out", "{tmp}/out"],
     user_files("results.csv"), "--out: "),
    ("resnet other configuration", ["resnet", *TINY_RESNET, "--lr", "0.05", "--out",
                                    "{tmp}/out"], "resnet_run", "different configuration"),
    ("resnet truncated checkpoint", ["resnet", *TINY_RESNET, "--out", "{tmp}/out"],
     checkpoint("truncated"), "w1_s0.pt cannot be resumed from"),
    ("resnet empty checkpoint", ["resnet", *TINY_RESNET, "--out", "{tmp}/out"],
     checkpoint("empty"), "w1_s0.pt cannot be resumed from (the file is empty)"),
    ("resnet pickle checkpoint", ["resnet", *TINY_RESNET, "--out", "{tmp}/out"],
     checkpoint("pickle"), "w1_s0.pt cannot be resumed from"),
    ("resnet foreign checkpoint", ["resnet", *TINY_RESNET, "--out", "{tmp}/out"],
     checkpoint("other state"), "w1_s0.pt cannot be resumed from"),
    ("resnet config.json a list", ["resnet", *TINY_RESNET, "--out", "{tmp}/out"],
     legacy_config_not_an_object, "config.json is not a sweep configuration"),
    ("resnet scheduler not a url", ["resnet", *TINY_RESNET, "--scheduler", "notaurl"], None,
     "--scheduler"),
    ("resnet negative lr", ["resnet", *TINY_RESNET, "--lr", "-1e-3", "--out", "{tmp}/o"], None,
     "--lr"),
    ("resnet lr beyond float32", ["resnet", *TINY_RESNET, "--epochs", "1", "--lr", "1e300",
                                  "--out", "{tmp}/o"], None, "--lr: expected a number below"),
    ("resnet workers without dask", ["resnet", *TINY_RESNET, "--workers", "3", "--out",
                                     "{tmp}/o"], None, "--workers"),
    ("resnet out under a file", ["resnet", *TINY_RESNET, "--out", "{tmp}/f/sub"], a_file("f"),
     "--out: "),
    ("resnet out too long", ["resnet", *TINY_RESNET, "--out", "{tmp}/" + LONG], None,
     "--out: "),
    # emnet report (the sections are cheap fakes: only --out is under test)
    ("report thesis beside index.html", ["report", "--quick", "--no-progress", "--out",
                                         "{tmp}/out"], thesis_beside_index, "--out: "),
    ("report out is a file", ["report", "--quick", "--out", "{tmp}/f"], a_file("f"), "--out: "),
    ("report out too long", ["report", "--quick", "--out", "{tmp}/" + LONG], None, "--out: "),
]  # fmt: skip


def _state(root: Path) -> dict[str, bytes | None]:
    """Every path under root: a file's bytes, None for a folder."""
    return {
        p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture
def cheap_report_sections(monkeypatch: pytest.MonkeyPatch) -> None:
    replace_builds(monkeypatch, {s.anchor: lambda ctx: "<p>fake</p>" for s in SECTIONS})


def _run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse errors
            code = exc.code
    leaked = [w for w in caught if issubclass(w.category, RuntimeWarning | UserWarning)]
    assert not leaked, [str(w.message) for w in leaked]
    err = capsys.readouterr().err
    return code, err.strip().splitlines()


@pytest.mark.parametrize(("argv", "setup", "needle"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_hostile_input_is_one_line_exit_2_and_loses_nothing(
    argv: list[str],
    setup: Callable | str | None,
    needle: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
    cheap_report_sections: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tmp = tmp_path / "work"
    tmp.mkdir()
    monkeypatch.chdir(tmp)
    if setup == "resnet_run":
        shutil.copytree(request.getfixturevalue("resnet_run"), tmp / "out")
    elif setup is not None and "resnet" in argv[0] and "checkpoint" in request.node.name:
        setup(tmp, request.getfixturevalue("resnet_run"))
    elif setup is not None:
        setup(tmp)
    before = _state(tmp)
    code, err = _run_cli([a.replace("{tmp}", str(tmp)) for a in argv], capsys)
    assert code == 2, err
    assert len(err) == 1, err
    assert err[0].startswith(f"emnet {argv[0]}: error: "), err
    assert "Traceback" not in err[0] and needle in err[0], err
    assert _state(tmp) == before  # nothing lost, changed, or left behind


# ---------------------------------------------------------------------- the OS says no


@pytest.mark.parametrize(
    ("where", "code"),
    [("stage", errno.EROFS), ("write", errno.ENOSPC), ("write", errno.EIO)],
)
def test_os_errors_while_writing_are_one_line_and_leave_the_old_result(
    where: str,
    code: int,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tempfile

    from emnet import _io

    emnet_output("em", {**EM_K3, "max_iter": 2}, {"summary.json": b"old"})(tmp_path)
    before = _state(tmp_path)

    def fail(path, *args, **kwargs):
        raise OSError(code, os.strerror(code), str(path))

    if where == "stage":
        monkeypatch.setattr(tempfile, "mkdtemp", lambda *a, **k: fail(k.get("dir")))
    else:
        monkeypatch.setattr(_io, "write_text", fail)
    rc, err = _run_cli(["em", "--k", "3", "--max-iter", "2", "--out", str(tmp_path / "out")],
                       capsys)  # fmt: skip
    assert rc == 2 and len(err) == 1, err
    assert os.strerror(code) in err[0] and str(tmp_path / "out") in err[0], err
    assert _state(tmp_path) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only directories")
def test_read_only_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        rc, err = _run_cli(["em", "--k", "2", "--out", str(ro / "out")], capsys)
        assert rc == 2 and len(err) == 1 and "--out: cannot write to" in err[0], err
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


def test_real_process_too_long_path_has_no_traceback(tmp_path: Path) -> None:
    """End to end: the exit code and stderr a shell sees."""
    proc = subprocess.run(
        [sys.executable, "-m", "emnet", "shapes", "1x28x28 conv20k3.5"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "emnet", "grad", "--out", str(tmp_path / LONG)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


# ---------------------------------------------------------------------- what must work


def test_bom_csv_keeps_every_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Item 6: a UTF-8 byte-order mark no longer turns the first data row into a header."""
    (tmp_path / "bom.csv").write_bytes(("\ufeff" + CSV_BODY).encode("utf-8"))
    argv = ["em", "--data", str(tmp_path / "bom.csv"), "--k", "2", "--max-iter", "5", "--out",
            str(tmp_path / "o")]  # fmt: skip
    assert main(argv) == 0
    assert "4 x 3" in capsys.readouterr().out
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["n_samples"] == 4


def test_em_out_dot_and_rerun(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 5 for `emnet em`; the same command again replaces its own files."""
    monkeypatch.chdir(tmp_path)
    argv = ["em", "--k", "2", "--max-iter", "3", "--out", "."]
    assert main(argv) == 0
    (tmp_path / "notes.txt").write_text("mine")
    assert main(argv) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [".emnet-run.json", "loglik.png", "means.png", "model.npz", "notes.txt",
                     "summary.json"]  # fmt: skip
    assert "wrote loglik.png" not in capsys.readouterr().out  # paths as given: ./means.png


def test_em_range_then_single_k_with_force_leaves_one_configuration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Item 2: no selection.json / bic.png of K = 2:3 beside the K = 3 model."""
    out = str(tmp_path / "d")
    assert main(["em", "--k", "2:3", "--max-iter", "3", "--out", out]) == 0
    assert (tmp_path / "d" / "selection.json").is_file()
    assert main(["em", "--k", "3", "--max-iter", "3", "--out", out]) == 2
    assert main(["em", "--k", "3", "--max-iter", "3", "--out", out, "--force"]) == 0
    names = sorted(p.name for p in (tmp_path / "d").iterdir())
    assert names == [".emnet-run.json", "loglik.png", "means.png", "model.npz", "summary.json"]


def test_resnet_resumes_its_own_directory_and_cleans_stale_temporaries(
    resnet_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Item 13: a killed plot's .curves.png.XXXX.png is removed by the resumed run."""
    out = tmp_path / "out"
    shutil.copytree(resnet_run, out)
    (out / ".curves.png.k1ll3d_x.png").write_bytes(b"half a png")
    (out / "mine.txt").write_text("a user's file")
    assert main(["resnet", *TINY_RESNET, "--out", str(out)]) == 0
    assert not (out / ".curves.png.k1ll3d_x.png").exists()
    assert (out / "mine.txt").read_text() == "a user's file"
    assert main(["resnet", *TINY_RESNET, "--lr", "0.05", "--out", str(out), "--force"]) == 0
    assert json.loads((out / "config.json").read_text())["lr"] == 0.05
    assert (out / "mine.txt").read_text() == "a user's file"


@pytest.mark.parametrize(
    ("argv", "name"),
    [(["grad"], "grad_graph.png"), (["train-demo", "--quick"], "train_demo_moons.png")],
)
def test_single_file_commands_never_replace_a_users_file(tmp_path, capsys, argv, name):
    """`emnet grad` and `emnet train-demo` write named files into a user's folder: an
    existing file of that name is refused (exit 2, one line, untouched) unless --force."""
    from emnet.cli import main

    user = tmp_path / name
    user.write_bytes(b"my own picture")
    assert main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already exists" in err[0] and "--force" in err[0]
    assert user.read_bytes() == b"my own picture"
    if argv[0] == "grad":
        assert main([*argv, "--out", str(tmp_path), "--force"]) == 0
        assert user.read_bytes()[:4] == b"\x89PNG"
