"""`emnet em`: default digits run, user data (.npy / .csv), outputs, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emnet.cli import main
from emnet.mixture import BernoulliMixture

PNG = b"\x89PNG\r\n\x1a\n"


def _outputs_ok(out):
    for name in ("means.png", "loglik.png"):
        assert (out / name).read_bytes()[:8] == PNG
    # no temp files left (the ownership marker is emnet's own, by design)
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.name != ".emnet-run.json"]


def test_default_fits_binarised_digits(tmp_path, capsys):
    out = tmp_path / "em"
    assert main(["em", "--k", "4", "--seed", "1", "--max-iter", "100", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "binarised 8x8 digits" in text and "1797 x 64" in text
    for word in ("iterations", "log-likelihood", "BIC", "component  weight"):
        assert word in text
    _outputs_ok(out)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_components"] == 4 and abs(sum(summary["weights"]) - 1) < 1e-9
    model = BernoulliMixture.load(out / "model.npz")
    assert model.means_.shape == (4, 64)
    assert f"{summary['bic']:.2f}" in text


def test_npy_and_csv_data(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = (rng.uniform(size=(200, 6)) < rng.uniform(0.1, 0.9, size=6)).astype(float)
    np.save(tmp_path / "x.npy", X.astype(np.uint8))
    assert (
        main(["em", "--data", str(tmp_path / "x.npy"), "--k", "2", "--out", str(tmp_path / "a")])
        == 0
    )
    _outputs_ok(tmp_path / "a")
    lines = ["a,b,c,d,e,f"] + [",".join(str(int(v)) for v in row) for row in X]
    lines[5] = ",1,0,,1,0"  # empty cells are missing values
    (tmp_path / "x.csv").write_text("\n".join(lines) + "\n")
    assert (
        main(["em", "--data", str(tmp_path / "x.csv"), "--k", "3", "--out", str(tmp_path / "b")])
        == 0
    )
    text = capsys.readouterr().out
    assert "200 x 6" in text
    _outputs_ok(tmp_path / "b")


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (None, ["--k", "0"], "--k: expected a positive integer"),
        (None, ["--k", "two"], "--k: expected a positive integer"),
        (None, ["--max-iter", "-3"], "--max-iter"),
        (None, ["--seed", "x"], "--seed"),
        (None, ["--data", "{tmp}/missing.npy"], "does not exist"),
        ("x.txt", ["--data", "{tmp}/x.txt"], "expected a .npy or .csv file"),
        ("bad.npy", ["--data", "{tmp}/bad.npy", "--k", "2"], "found 2 at row 1, column 0"),
        ("small.npy", ["--data", "{tmp}/small.npy", "--k", "5"], "need at least 5 rows"),
        ("ragged.csv", ["--data", "{tmp}/ragged.csv"], "cannot read"),
        ("spaces.csv", ["--data", "{tmp}/spaces.csv"], "line 2 column 1: expected a number"),
        ("file", ["--out", "{tmp}/file"], "--out"),
    ],
)
def test_bad_arguments_are_one_line_exit_2(tmp_path, capsys, setup, args, message):
    if setup == "x.txt":
        (tmp_path / "x.txt").write_text("0 1\n")
    elif setup == "bad.npy":
        np.save(tmp_path / "bad.npy", np.array([[0, 1], [2, 0], [1, 1]]))
    elif setup == "small.npy":
        np.save(tmp_path / "small.npy", np.eye(3))
    elif setup == "ragged.csv":
        (tmp_path / "ragged.csv").write_text("0,1\n1,0,1\n")
    elif setup == "spaces.csv":  # header line, then space-separated rows
        (tmp_path / "spaces.csv").write_text("a,b\n0 1\n1 0\n")
    elif setup == "file":
        (tmp_path / "file").write_text("")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as exc_info:
        code = main(["em", *args])
        raise SystemExit(code)
    assert exc_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "out" / "means.png").exists()
