"""`emnet lca` on survey files as people keep them (issue 19): text answers, SPSS/Stata
value labels and user-missing codes, rows without answers, bad cells, the run lock, and
complete, honest output (notes and warnings on stderr and in summary.txt)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from emnet._io import run_lock
from emnet.cli import main
from emnet.datasets import values

LABELS = {1: "particularistic", 2: "universalistic"}


def _exit_code(argv):
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def _run(capsys, argv):
    code = _exit_code(["lca", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _best_loglik(out_dir):
    sel = json.loads((out_dir / "selection.json").read_text())
    return {row["k"]: row["loglik"] for row in sel["table"]}, sel


def _values_with_holes():
    """poLCA's values with some missing answers and two rows with no answer at all."""
    frame = values().astype(float)
    rng = np.random.default_rng(3)
    frame = frame.mask(rng.random(frame.shape) < 0.05)
    frame.loc[[10, 50], :] = np.nan
    return frame


def test_text_answers_with_missing_reach_the_integer_maxima(tmp_path, capsys):
    codes = _values_with_holes()
    codes.to_csv(tmp_path / "codes.csv", index=False)
    codes.replace(LABELS).to_csv(tmp_path / "text.csv", index=False)
    runs = {}
    for name in ("codes", "text"):
        out = tmp_path / f"out_{name}"
        argv = ["--data", str(tmp_path / f"{name}.csv"), "--k", "1:3", "--n-init", "10"]
        code, stdout, err = _run(capsys, [*argv, "--out", str(out)])
        assert code == 0, err
        # the note is on stderr, once, with the count; the results on stdout
        assert "2 of 216 rows have no answers (data rows 11, 51) and are left out" in err
        assert "no answers" not in stdout
        runs[name] = (_best_loglik(out), stdout)
    (ll_codes, sel_codes), _ = runs["codes"]
    (ll_text, sel_text), text_out = runs["text"]
    for k in (1, 2, 3):
        assert ll_text[k] == pytest.approx(ll_codes[k], abs=1e-6)
    assert sel_text["n_samples"] == 214 and sel_text["n_rows_read"] == 216
    assert "Pr(particularistic)" in text_out and "Pr(universalistic)" in text_out


def test_spss_file_with_value_labels_and_user_missing_codes(tmp_path, capsys):
    pyreadstat = pytest.importorskip("pyreadstat")
    codes = _values_with_holes()
    sav = codes.copy()
    rng = np.random.default_rng(0)
    refused = rng.random(sav.shape) < 0.03  # user-missing 9 = "Refused" where answers were
    sav = sav.mask(refused & sav.notna().to_numpy(), 9.0)
    path = tmp_path / "values.sav"
    labels = {c: {**LABELS, 9: "Refused"} for c in sav.columns}
    pyreadstat.write_sav(
        sav, str(path), variable_value_labels=labels, missing_ranges={c: [9] for c in sav.columns}
    )
    reference = codes.mask(refused & codes.notna().to_numpy())  # the same answers, 9 missing
    reference.to_csv(tmp_path / "reference.csv", index=False)
    lls = {}
    for name, data in (("sav", path), ("ref", tmp_path / "reference.csv")):
        out = tmp_path / f"out_{name}"
        code, stdout, err = _run(
            capsys, ["--data", str(data), "--k", "1:2", "--n-init", "10", "--out", str(out)]
        )
        assert code == 0, err
        lls[name] = _best_loglik(out)[0]
        if name == "sav":
            assert "user-missing code (9)" in err or "user-missing" in err
            assert "Pr(particularistic)" in stdout and "Refused" not in stdout
    for k in (1, 2):
        assert lls["sav"][k] == pytest.approx(lls["ref"][k], abs=1e-6)


def test_stata_and_excel_files_fit_like_their_csv(tmp_path, capsys):
    pyreadstat = pytest.importorskip("pyreadstat")
    codes = _values_with_holes()
    pyreadstat.write_dta(
        codes, str(tmp_path / "v.dta"), variable_value_labels={c: LABELS for c in codes.columns}
    )
    codes.replace(LABELS).to_excel(tmp_path / "v.xlsx", index=False)
    codes.to_csv(tmp_path / "v.csv", index=False)
    lls = {}
    for name in ("v.dta", "v.xlsx", "v.csv"):
        out = tmp_path / f"out_{name}"
        argv = ["--data", str(tmp_path / name), "--k", "2", "--n-init", "10", "--out", str(out)]
        code, stdout, err = _run(capsys, argv)
        assert code == 0, err
        lls[name] = _best_loglik(out)[0][2]
        if name != "v.csv":
            assert "Pr(universalistic)" in stdout
    assert lls["v.dta"] == pytest.approx(lls["v.csv"], abs=1e-6)
    assert lls["v.xlsx"] == pytest.approx(lls["v.csv"], abs=1e-6)


@pytest.mark.parametrize(
    "cell, message",
    [
        ("inf", "item B, data row 3: inf is not an answer code"),
        ("1e308", "item B, data row 3: 1e+308 is not an answer code"),
        ("1.5", "item B, data row 3: 1.5 is not an answer code"),
    ],
)
def test_cells_that_are_not_answer_codes(tmp_path, capsys, cell, message):
    frame = values().astype(str)
    frame.iloc[2, 1] = cell
    frame.to_csv(tmp_path / "v.csv", index=False)
    out = tmp_path / "out"
    code, stdout, err = _run(
        capsys, ["--data", str(tmp_path / "v.csv"), "--k", "2", "--out", str(out)]
    )
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err
    assert stdout == "" and not out.exists()
    # with --categorical every number is a label, and a note says so
    argv = ["--data", str(tmp_path / "v.csv"), "--k", "2", "--n-init", "2", "--categorical"]
    code, stdout, err = _run(capsys, [*argv, "--out", str(out)])
    assert code == 0 and "taken as labels (--categorical)" in err


def test_npy_of_halves_is_refused_not_fitted_as_one_answer_items(tmp_path, capsys):
    np.save(tmp_path / "h.npy", np.full((20, 3), 0.5))
    code, _, err = _run(
        capsys, ["--data", str(tmp_path / "h.npy"), "--k", "2", "--out", str(tmp_path / "o")]
    )
    assert code == 2 and "item 1, data row 1: 0.5 is not an answer code" in err


def test_float_codes_print_as_whole_numbers(tmp_path, capsys):
    np.save(tmp_path / "v.npy", values().to_numpy(dtype=float))
    code, stdout, err = _run(
        capsys,
        [
            "--data",
            str(tmp_path / "v.npy"),
            "--k",
            "2",
            "--n-init",
            "2",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert code == 0, err
    assert "Pr(1)" in stdout and "Pr(1.0)" not in stdout


@pytest.mark.parametrize(
    "text, message",
    [
        ("A,A,B\n1,2,1\n2,1,2\n", "the column name 'A' appears twice"),
        (
            "A,B\n1,2\n2,1\nx,1\n",
            "column 'A' mixes numbers (data row 1: '1') and text (data row 3: 'x')",
        ),
        ("A,B,C\n1,2,1\n2,1,2\n1,2", "the last line has 2 columns, expected 3"),
    ],
)
def test_bad_tables_are_one_line(tmp_path, capsys, text, message):
    (tmp_path / "t.csv").write_text(text)
    code, stdout, err = _run(
        capsys, ["--data", str(tmp_path / "t.csv"), "--k", "2", "--out", str(tmp_path / "o")]
    )
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err
    assert err.startswith("emnet lca: error: --data: ")


def test_binary_file_is_one_line(tmp_path, capsys):
    (tmp_path / "b.csv").write_bytes(bytes(range(256)) * 100)
    code, _, err = _run(
        capsys, ["--data", str(tmp_path / "b.csv"), "--k", "2", "--out", str(tmp_path / "o")]
    )
    assert code == 2 and "binary data" in err and len(err.strip().splitlines()) == 1


def test_weights_that_overflow_are_refused(tmp_path, capsys):
    frame = values()
    frame["w"] = 1e300
    frame.to_csv(tmp_path / "w.csv", index=False)
    code, _, err = _run(
        capsys,
        [
            "--data",
            str(tmp_path / "w.csv"),
            "--weights",
            "w",
            "--k",
            "2",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert code == 2 and "--weights: w sums to 2.16e+302" in err and "data row 1" in err, err


def test_single_answer_item_and_headerless_names(tmp_path, capsys):
    frame = values()
    frame["E"] = 1
    frame.to_csv(tmp_path / "v.csv", index=False)
    code, _, err = _run(
        capsys,
        [
            "--data",
            str(tmp_path / "v.csv"),
            "--k",
            "2",
            "--n-init",
            "2",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert code == 0 and "item E has a single answer (1); it carries no information" in err
    values().to_csv(tmp_path / "nh.csv", index=False, header=False)
    code, _, err = _run(
        capsys,
        ["--data", str(tmp_path / "nh.csv"), "--binary", "--k", "2", "--out", str(tmp_path / "o2")],
    )
    assert code == 2 and "--binary: item 1 has the answer 2" in err and "item item" not in err


def test_a_second_run_into_the_same_out_is_refused_up_front(tmp_path, capsys):
    values().to_csv(tmp_path / "v.csv", index=False)
    out = tmp_path / "out"
    with run_lock(out):  # another run holds it
        code, stdout, err = _run(
            capsys, ["--data", str(tmp_path / "v.csv"), "--k", "2", "--out", str(out)]
        )
    assert code == 2 and stdout == ""  # no results printed that it could not write
    assert "another emnet run" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
    code, _, err = _run(
        capsys, ["--data", str(tmp_path / "v.csv"), "--k", "2", "--n-init", "2", "--out", str(out)]
    )
    assert code == 0, err  # released


def test_non_convergence_is_warned_on_stderr_and_in_summary(tmp_path, capsys):
    values().to_csv(tmp_path / "v.csv", index=False)
    out = tmp_path / "out"
    argv = ["--data", str(tmp_path / "v.csv"), "--k", "1:2", "--n-init", "2", "--max-iter", "1"]
    code, stdout, err = _run(capsys, [*argv, "--out", str(out)])
    assert code == 0
    assert "warning: K = 2: 2 of 2 starts did not converge within --max-iter 1" in err
    assert "the best among them" in err
    summary = (out / "summary.txt").read_text()
    assert "did not converge" in summary and "the best did NOT converge" in summary
    assert "starts run to convergence" not in summary
    sel = json.loads((out / "selection.json").read_text())
    assert [row["n_unconverged"] for row in sel["table"]] == [2, 2]  # one step tells nothing
    assert "warning: K = 1: 2 of 2 starts did not converge" in err
    assert "did not converge" in (out / "report.html").read_text()


def test_covariate_run_reports_what_a_plain_run_does(tmp_path, capsys):
    rng = np.random.default_rng(0)
    n = 400
    x = rng.normal(size=n)
    z = rng.random(n) < 1 / (1 + np.exp(-(0.2 + 1.5 * x)))
    items = (rng.random((n, 4)) < np.where(z[:, None], 0.85, 0.2)).astype(int)
    frame = pd.DataFrame(items, columns=["a", "b", "c", "d"])
    frame["age"] = np.round(40 + 10 * x, 1)
    frame.to_csv(tmp_path / "s.csv", index=False)
    out = tmp_path / "out"
    argv = ["--data", str(tmp_path / "s.csv"), "--k", "1:3", "--n-init", "4", "--covariates", "age"]
    code, stdout, err = _run(capsys, [*argv, "--out", str(out)])
    assert code == 0, err
    assert "G^2(2)" in stdout and "X^2(2)" in stdout and "residual degrees of freedom" in stdout
    assert "(NaN)" not in stdout and "nan" not in stdout.lower().replace("nannual", "")
    assert stdout.count("Latent class regression") == 1  # one Wald table
    assert "entropy" in stdout.splitlines()[1] and "G2" in stdout.splitlines()[1]
    names = {p.name for p in out.iterdir()}
    assert {"bic.png", "classification.csv", "coefficients.csv", "report.html"} <= names
    sel = json.loads((out / "selection.json").read_text())
    assert all(row["g2"] is not None and row["entropy"] is not None for row in sel["table"])


@pytest.mark.browser
def test_run_page_in_headless_chromium(tmp_path, capsys):
    """The report.html of a run on a labelled SPSS file with a row without answers: every
    section, the embedded figures load, no console error (screenshot: /tmp/lca_run_page.png)."""
    pyreadstat = pytest.importorskip("pyreadstat")
    from pathlib import Path

    from emnet.report.browser import check_page, find_chromium

    try:
        find_chromium()
    except RuntimeError as exc:
        pytest.fail(f"the browser test needs chromium and chromedriver: {exc}")
    codes = _values_with_holes()
    pyreadstat.write_sav(
        codes, str(tmp_path / "values.sav"), variable_value_labels={c: LABELS for c in codes}
    )
    out = tmp_path / "out"
    argv = ["--data", str(tmp_path / "values.sav"), "--k", "1:3", "--n-init", "5"]
    code, _, err = _run(capsys, [*argv, "--out", str(out)])
    assert code == 0, err
    html = (out / "report.html").read_text()
    for part in ("Model selection", "Chosen model", "Profile", "Classification", "Warnings"):
        assert part in html
    assert "2 of 216 rows have no answers" in html and "Pr(universalistic)" in html
    seen = check_page(out / "report.html", width=1280)
    Path("/tmp/lca_run_page.png").write_bytes(seen.screenshot)
    assert len(seen.images) == 2 and seen.broken_images == []
    assert seen.console_errors == [], seen.console_errors
