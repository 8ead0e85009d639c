"""`emnet lca` on continuous, count and mixed items (issues 20 and 21): latent profile
analysis of iris from a CSV, mixed files with inferred or declared item types, the
covariance structure, and one-line errors for cells that are not what the type needs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris

from emnet.cli import main


def _run(capsys, argv):
    try:
        code = main(["lca", *argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_iris_vvv_reaches_the_known_maximum(tmp_path, capsys):
    load_iris(as_frame=True).data.to_csv(tmp_path / "iris.csv", index=False)
    out = tmp_path / "out"
    argv = ["--data", str(tmp_path / "iris.csv"), "--k", "1:3", "--covariance", "VVV"]
    code, stdout, err = _run(capsys, [*argv, "--n-init", "10", "--out", str(out)])
    assert code == 0, err
    assert "150 rows x 4 items: 4 continuous (Gaussian, VVV)" in stdout
    assert "4 items are continuous (more than 10 distinct numbers)" in err  # said once
    sel = json.loads((out / "selection.json").read_text())
    ll = {row["k"]: row["loglik"] for row in sel["table"]}
    assert ll[3] == pytest.approx(-180.1855, abs=1e-3)  # mclust's iris VVV maximum
    assert sel["estimator"] == "latent" and sel["measurement"] == {
        "gaussian": ["sepal length (cm)", "sepal width (cm)", "petal length (cm)",
                     "petal width (cm)"]}  # fmt: skip
    assert "mean petal length (cm)" in (out / "summary.txt").read_text()
    assert (out / "profile.png").read_bytes()[:4] == b"\x89PNG"
    html = (out / "report.html").read_text()
    assert "Profile" in html and "4 continuous (Gaussian, VVV)" in html


def test_mixed_file_with_declared_counts_and_text_answers(tmp_path, capsys):
    rng = np.random.default_rng(0)
    n = 800
    z = rng.choice(2, n, p=[0.6, 0.4])
    frame = pd.DataFrame(
        {
            "smoker": (rng.random(n) < np.array([0.1, 0.7])[z]).astype(int),
            "health": np.where(rng.random(n) < np.array([0.8, 0.2])[z], "good", "poor"),
            "bmi": np.round(rng.normal(np.array([23.0, 30.0])[z], 2.0), 2),
            "visits": rng.poisson(np.array([1.0, 5.0])[z]),
        }
    )
    frame.to_csv(tmp_path / "m.csv", index=False)
    out = tmp_path / "out"
    argv = ["--data", str(tmp_path / "m.csv"), "--k", "1:3", "--n-init", "4", "--counts", "visits"]
    code, stdout, err = _run(capsys, [*argv, "--out", str(out)])
    assert code == 0, err
    assert "1 continuous (Gaussian, VVI), 1 count (Poisson), 1 binary, 1 categorical" in stdout
    sel = json.loads((out / "selection.json").read_text())
    assert sel["best_k"] == 2
    assert sel["measurement"] == {"gaussian": ["bmi"], "poisson": ["visits"],
                                  "binary": ["smoker"], "categorical": ["health"]}  # fmt: skip
    summary = (out / "summary.txt").read_text()
    assert "rate visits" in summary and "P(poor) health" in summary


@pytest.mark.parametrize(
    "cell, extra, message",
    [
        ("1.5", ["--counts", "c"], "--counts: item c, data row 2: 1.5 is not a count"),
        ("-1", ["--counts", "c"], "--counts: item c, data row 2: -1.0 is not a count"),
        ("inf", ["--continuous", "c"], "--continuous: item c, data row 2: inf is not a finite"),
        (None, ["--continuous", "c"], "--continuous: item c holds text ('x' in data row 1)"),
    ],
)
def test_cells_that_do_not_fit_the_type(tmp_path, capsys, cell, extra, message):
    text = "a,c\n1,x\n2,y\n1,x\n2,y\n" if cell is None else f"a,c\n1,2\n2,{cell}\n1,3\n2,4\n"
    (tmp_path / "t.csv").write_text(text)
    code, stdout, err = _run(
        capsys,
        ["--data", str(tmp_path / "t.csv"), "--k", "1", *extra, "--out", str(tmp_path / "o")],
    )
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err
    assert stdout == ""


def test_bad_type_options(tmp_path, capsys):
    frame = load_iris(as_frame=True).data
    frame["w"] = 1.0
    frame["age"] = np.random.default_rng(0).normal(40, 10, len(frame))
    frame.to_csv(tmp_path / "iris.csv", index=False)
    base = ["--data", str(tmp_path / "iris.csv"), "--k", "2", "--out", str(tmp_path / "o")]
    for extra, message in [
        (["--continuous", "nope"], "--continuous: no column 'nope'"),
        (["--weights", "w", "--continuous", "w"], "--continuous: column 'w' is not an item"),
        (["--covariance", "XYZ"], "--covariance"),
    ]:
        code, _, err = _run(capsys, [*base, *extra])
        assert code == 2 and message in err, (extra, err)


def test_categorical_flag_keeps_non_whole_numbers_as_labels(tmp_path, capsys):
    """--categorical turns the inference off: the numbers are answer labels (issue 19)."""
    frame = pd.DataFrame({"a": np.tile(np.arange(12) / 2, 10), "b": np.repeat([1, 2], 60)})
    frame.to_csv(tmp_path / "t.csv", index=False)
    argv = ["--data", str(tmp_path / "t.csv"), "--k", "1", "--categorical"]
    code, stdout, err = _run(capsys, [*argv, "--out", str(tmp_path / "o")])
    assert code == 0 and "2 categorical items" in stdout and "is continuous" not in err


def test_latent_profile_regression_from_the_command_line(tmp_path, capsys):
    """--covariates with continuous items: LatentClassModel's one-step regression."""
    rng = np.random.default_rng(3)
    n = 900
    age = rng.normal(40.0, 10.0, n)
    z = rng.random(n) < 1 / (1 + np.exp(-(-0.5 + 0.1 * (age - 40.0))))
    frame = pd.DataFrame(
        {
            "x1": rng.normal(np.where(z, 2.5, 0.0), 1.0),
            "x2": rng.normal(np.where(z, -2.0, 0.0), 1.0),
            "x3": rng.normal(np.where(z, 1.5, 0.0), 1.0),
            "age": np.round(age, 1),
        }
    )
    frame.to_csv(tmp_path / "p.csv", index=False)
    out = tmp_path / "out"
    argv = ["--data", str(tmp_path / "p.csv"), "--k", "1:3", "--n-init", "4", "--covariates",
            "age", "--continuous", "x1", "x2", "x3", "--out", str(out)]  # fmt: skip
    code, stdout, err = _run(capsys, argv)
    assert code == 0, err
    assert "3 continuous (Gaussian, VVI)" in stdout and "age (numeric), one-step" in stdout
    assert stdout.count("Latent class regression") == 1 and "nan" not in stdout.lower()
    sel = json.loads((out / "selection.json").read_text())
    assert sel["best_k"] == 2 and "g2" not in sel["table"][0]
    coef = pd.read_csv(out / "coefficients.csv").set_index("term")
    slope = coef.loc["age"]
    assert abs(abs(slope["coef"]) - 0.1) < 3 * slope["se"]  # the sign follows the labels
    names = {p.name for p in out.iterdir()}
    assert {"profile.png", "bic.png", "covariate_effect_age.png", "report.html"} <= names


def _iris(tmp_path, **columns):
    frame = load_iris(as_frame=True).data
    frame.columns = ["sl", "sw", "pl", "pw"]
    for name, values in columns.items():
        frame[name] = values
    path = tmp_path / "iris.csv"
    frame.to_csv(path, index=False)
    return frame, path


def test_exclude_leaves_an_id_column_out_and_an_id_is_noted(tmp_path, capsys):
    ids = [f"R{i:03d}" for i in range(150)]
    frame, path = _iris(tmp_path, id=ids)
    argv = ["--data", str(path), "--k", "1:2", "--n-init", "2"]
    code, out, err = _run(capsys, [*argv, "--out", str(tmp_path / "a")])
    assert code == 0 and "item id has a different answer in every row (150 answers)" in err
    assert "say --exclude id" in err and "4 continuous (Gaussian, VVI), 1 categorical" in out
    code, out, err = _run(capsys, [*argv, "--exclude", "id", "--out", str(tmp_path / "b")])
    assert code == 0 and "different answer" not in err, err
    assert "150 rows x 4 items: 4 continuous (Gaussian, VVI)" in out
    record = json.loads((tmp_path / "b" / "selection.json").read_text())
    assert record["item_names"] == ["sl", "sw", "pl", "pw"] and record["excluded"] == ["id"]
    for bad, says in [
        (["--exclude", "nope"], "--exclude: no column 'nope'"),
        (["--exclude", "5", "id"], "--exclude: 'id' is named twice"),
        (["--weights", "sl", "--exclude", "sl"], "--exclude: 'sl' is a --weights column"),
        (["--exclude", "sl", "sw", "pl", "pw", "id"], "--exclude: no items are left"),
        (["--exclude", "id", "--continuous", "id"], "--continuous: column 'id' is not an item"),
    ]:
        code, out, err = _run(capsys, [*argv, *bad, "--out", str(tmp_path / "c")])
        assert code == 2 and len(err.strip().splitlines()) == 1 and says in err, (bad, err)


def test_a_k_whose_every_start_collapsed_is_left_out_and_said(tmp_path, capsys):
    """One wild value (a missing-value code in a measurement) makes every K >= 2 start
    collapse onto its row: those K are flagged and left out, each said once on stderr
    (it used to choose K = 3 with a bare UserWarning naming no K)."""
    frame, path = _iris(tmp_path)
    frame.loc[3, "pl"] = 99999.0
    frame.to_csv(path, index=False)
    argv = ["--data", str(path), "--k", "1:3", "--n-init", "3", "--covariance", "VVV"]
    code, out, err = _run(capsys, [*argv, "--out", str(tmp_path / "o")])
    assert code == 0 and "UserWarning" not in err
    for k in (2, 3):
        assert f"K = {k}: every start ended in a collapsed class" in err
    assert (
        "best K by BIC: 1" in out and "‡ every start ended in a collapsed class (K = 2, 3)" in out
    )
    assert "LatentClassModel: 1 latent class;" in out


def test_decimal_codes_suggest_continuous_and_infinity_is_named_at_its_row(tmp_path, capsys):
    gpa = np.clip(np.round(np.random.default_rng(0).normal(3, 0.5, 150) * 2) / 2, 1, 4)
    _, path = _iris(tmp_path, gpa=gpa)
    argv = ["--data", str(path), "--k", "1:2", "--out", str(tmp_path / "o")]
    code, _, err = _run(capsys, argv)
    first = int(np.flatnonzero(gpa != np.round(gpa))[0]) + 1
    assert code == 2 and f"item gpa, data row {first}:" in err
    assert "say --continuous gpa for a measurement" in err
    frame, path = _iris(tmp_path, likert=np.arange(150) % 5)
    frame["pl"] = frame["pl"].astype(object)
    frame.loc[3, "pl"] = "inf"
    frame.to_csv(path, index=False)
    code, _, err = _run(capsys, argv)
    assert code == 2 and "item pl, data row 4: inf is not an answer code (not a finite" in err


def test_weights_that_do_not_sum_to_n_are_said_to_be_frequency_weights(tmp_path, capsys):
    _, path = _iris(tmp_path, w=np.full(150, 5000.0))
    argv = ["--data", str(path), "--k", "1:2", "--n-init", "2", "--weights", "w"]
    code, _, err = _run(capsys, [*argv, "--out", str(tmp_path / "o")])
    assert code == 0 and "the --weights sum to 750000 over 150 rows" in err
    _, path = _iris(tmp_path, w=np.linspace(0.5, 1.5, 150))
    code, _, err = _run(capsys, [*argv, "--out", str(tmp_path / "p")])
    assert code == 0 and "--weights sum" not in err


def test_unconverged_starts_are_counted_out_of_every_start_run(tmp_path, capsys):
    """The start search adds starts to --n-init: "4 of 3 starts did not converge" was
    said; the count is out of every start run."""
    import re

    rng = np.random.default_rng(0)
    _, path = _iris(tmp_path, visits=rng.poisson(3, 150), likert=rng.integers(1, 6, 150))
    argv = ["--data", str(path), "--k", "2:3", "--n-init", "3", "--max-iter", "3"]
    code, _, err = _run(capsys, [*argv, "--out", str(tmp_path / "o")])
    found = re.findall(r"K = \d: (\d+) of (\d+) starts did not converge", err)
    assert code == 0 and found, err
    assert all(int(a) <= int(b) for a, b in found) and any(int(b) > 3 for _, b in found)


def test_posteriors_csv_has_each_rows_classes_beside_its_id(tmp_path, capsys):
    """posteriors.csv (Mplus's CPROB/MLCLASS, poLCA's posterior/predclass): one line per
    fitted row with its data row and --exclude IDs; the posteriors average to the class
    shares as printed (at the maximum the mean posterior is the share)."""
    frame, path = _iris(tmp_path, id=[f"R{i:03d}" for i in range(150)])
    frame.loc[[4, 9], ["sl", "sw", "pl", "pw"]] = np.nan  # rows without answers: left out
    frame.to_csv(path, index=False)
    argv = ["--data", str(path), "--k", "3", "--n-init", "3", "--exclude", "id"]
    code, _, err = _run(capsys, [*argv, "--out", str(tmp_path / "o")])
    assert code == 0, err
    post = pd.read_csv(tmp_path / "o" / "posteriors.csv")
    assert list(post.columns) == ["data_row", "id", "modal_class", "p_class_1", "p_class_2",
                                  "p_class_3"]  # fmt: skip
    assert len(post) == 148 and 5 not in post["data_row"].tolist()
    assert post.loc[post["data_row"] == 7, "id"].item() == "R006"
    p = post[["p_class_1", "p_class_2", "p_class_3"]].to_numpy()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
    assert (post["modal_class"].to_numpy() == p.argmax(axis=1) + 1).all()
    shares = json.loads((tmp_path / "o" / "selection.json").read_text())
    classes = pd.read_csv(tmp_path / "o" / "classes.csv")
    np.testing.assert_allclose(p.mean(axis=0), classes.iloc[:, 1].to_numpy(), atol=1e-6)
    assert shares["best_k"] == 3


def test_missing_codes_are_missing_in_items_and_covariates(tmp_path, capsys):
    """--missing -99 refused (Mplus's MISSING ARE): the codes are missing answers in
    number and text columns, covariates too, with one note; the fit equals the one on
    the file with those cells empty."""
    frame, path = _iris(tmp_path, mood=np.where(np.arange(150) % 3 == 0, "low", "high"))
    frame["age"] = np.linspace(20, 70, 150)
    coded = frame.astype(object)
    coded.loc[[3, 8], "pl"] = -99
    coded.loc[5, "mood"] = "refused"
    coded.loc[7, "age"] = -99
    coded.to_csv(path, index=False)
    blank = frame.astype(object)
    blank.loc[[3, 8], "pl"] = np.nan
    blank.loc[5, "mood"] = np.nan
    blank.to_csv(tmp_path / "blank.csv", index=False)
    base = ["--k", "2", "--n-init", "2", "--covariates", "age"]
    code, out_a, err = _run(capsys, ["--data", str(path), *base, "--missing", "-99", "refused",
                                     "--out", str(tmp_path / "a")])  # fmt: skip
    assert code == 0, err
    assert (
        "answers taken as missing (--missing): pl: 2 × -99; mood: 1 × refused; age: 1 × -99" in err
    )
    assert "1 of 150 rows have a missing covariate" in err
    blank.loc[7, "age"] = np.nan
    blank.to_csv(tmp_path / "blank.csv", index=False)
    code, out_b, err = _run(capsys, ["--data", str(tmp_path / "blank.csv"), *base,
                                     "--out", str(tmp_path / "b")])  # fmt: skip
    assert code == 0, err
    a = json.loads((tmp_path / "a" / "selection.json").read_text())["table"]
    b = json.loads((tmp_path / "b" / "selection.json").read_text())["table"]
    assert a[0]["loglik"] == pytest.approx(b[0]["loglik"], abs=1e-8)


def test_covariates_that_separate_the_classes_are_warned(tmp_path, capsys):
    """A covariate that predicts the class perfectly (iris's setosa flag) drives the
    logit coefficients toward infinity: a warning says so (the Wald table showed a
    coefficient of -32 with p = 0.95); a covariate with a real but finite effect does not."""
    target = load_iris().target
    rng = np.random.default_rng(1)
    _, path = _iris(tmp_path, grp=np.where(target == 0, "a", "b"),
                    noisy=np.where((target == 0) ^ (rng.random(150) < 0.2), "a", "b"))  # fmt: skip
    argv = ["--data", str(path), "--k", "2", "--n-init", "3", "--exclude"]
    code, _, err = _run(capsys, [*argv, "noisy", "--covariates", "grp",
                                 "--out", str(tmp_path / "a")])  # fmt: skip
    assert code == 0 and "warning: the covariates separate the classes" in err, err
    code, _, err = _run(capsys, [*argv, "grp", "--covariates", "noisy",
                                 "--out", str(tmp_path / "b")])  # fmt: skip
    assert code == 0 and "separate the classes" not in err, err


def test_missing_codes_in_a_text_covariate_and_codes_that_match_nothing(tmp_path, capsys):
    rng = np.random.default_rng(1)
    frame, path = _iris(tmp_path, txt=rng.choice(["yes", "no"], 150), rid=np.arange(1001, 1151))
    frame.loc[12, "txt"] = "refused"
    frame.to_csv(path, index=False)
    argv = ["--data", str(path), "--k", "2", "--n-init", "2", "--exclude", "rid"]
    code, _, err = _run(capsys, [*argv, "--covariates", "txt", "--missing", "refused",
                                 "--out", str(tmp_path / "a")])  # fmt: skip
    assert code == 0 and "txt: 1 × refused" in err and "1 of 150 rows have a missing" in err
    post = (tmp_path / "a" / "posteriors.csv").read_text().splitlines()
    assert post[1].startswith("1,1001,") and len(post) == 150  # whole-number IDs as such
    code, _, err = _run(capsys, [*argv, "--missing", "-77", "--out", str(tmp_path / "b")])
    assert code == 0 and "--missing: no answer equals '-77'" in err


def test_a_headerless_semicolon_file_with_decimal_commas_is_sniffed(tmp_path, capsys):
    frame = load_iris(as_frame=True).data
    path = tmp_path / "semi.csv"
    frame.to_csv(path, sep=";", decimal=",", index=False, header=False)
    for extra in ([], ["--sep", ";"]):
        code, out, err = _run(capsys, ["--data", str(path), "--k", "2", "--n-init", "2",
                                       *extra, "--out", str(tmp_path / f"o{len(extra)}")])  # fmt: skip
        assert code == 0 and "150 rows x 4 items: 4 continuous" in out, (extra, err)
        assert "decimal comma" in err and "read as the column names" not in err
