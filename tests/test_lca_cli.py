"""`emnet lca`: the shipped survey data as CSV (BOM, header or not), binary vs categorical
detection, --weights, a small BLRT, the files written, ownership, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from emnet.cli import main
from emnet.commands.lca import detect_items
from emnet.datasets import VALUES_POLCA_LOGLIK, lsat6, lsat7, values
from emnet.mixture import BernoulliMixture, CategoricalMixture

PNG = b"\x89PNG\r\n\x1a\n"
FILES = {
    "selection.json",
    "selection.csv",
    "summary.txt",
    "probabilities.csv",
    "classes.csv",
    "fit.csv",
    "classification.csv",
    "profile.png",
    "bic.png",
    "model.npz",
    "posteriors.csv",
    "report.html",
}


def _csv(frame: pd.DataFrame, path, *, header=True, bom=False):
    text = frame.to_csv(index=False, header=header)
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode())
    return str(path)


def _files_ok(out):
    names = {p.name for p in out.iterdir()}
    assert names == FILES | {".emnet-run.json"}
    for png in ("profile.png", "bic.png"):
        assert (out / png).read_bytes()[:8] == PNG


def test_values_csv_with_bom_categorical_matches_polca(tmp_path, capsys):
    data = _csv(values(), tmp_path / "values.csv", bom=True)
    out = tmp_path / "out"
    argv = ["lca", "--data", data, "--k", "1:3", "--n-init", "4", "--out", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "216 rows x 4 categorical items" in text
    for head in ("LL", "npar", "SABIC", "CAIC", "entropy", "G2", "X2", "df"):
        assert head in text.splitlines()[1]
    assert "CategoricalMixture: 2 latent classes" in text  # BIC picks K = 2
    assert "$A" in text and "Pr(2)" in text
    _files_ok(out)
    sel = json.loads((out / "selection.json").read_text())
    assert sel["items"] == "categorical" and sel["best_k"] == 2
    assert sel["item_names"] == ["A", "B", "C", "D"]
    for row in sel["table"]:
        assert row["loglik"] == pytest.approx(VALUES_POLCA_LOGLIK[row["k"]], abs=1e-3)
    frame = pd.read_csv(out / "selection.csv")
    assert list(frame["k"]) == [1, 2, 3]
    probs = pd.read_csv(out / "probabilities.csv")
    assert set(probs["item"]) == {"A", "B", "C", "D"} and set(probs["answer"]) == {1, 2}
    classes = pd.read_csv(out / "classes.csv")
    assert list(classes["share"]) == sorted(classes["share"], reverse=True)  # by weight
    assert (out / "summary.txt").read_text().startswith(text.splitlines()[1])
    model = CategoricalMixture.load(out / "model.npz")
    assert model.n_components == 2


def test_lsat_without_header_is_binary(tmp_path, capsys):
    data = _csv(lsat6(), tmp_path / "lsat6.csv", header=False)
    out = tmp_path / "out"
    assert main(["lca", "--data", data, "--k", "1:2", "--n-init", "2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "1000 rows x 5 binary items (Bernoulli mixture)" in text
    assert "$item 1" in text
    _files_ok(out)
    sel = json.loads((out / "selection.json").read_text())
    assert sel["items"] == "binary" and sel["estimator"] == "bernoulli"
    BernoulliMixture.load(out / "model.npz")


@pytest.mark.parametrize("items", [[], ["--categorical"]])
def test_lsat6_four_classes_reach_the_best_maximum_with_the_start_search(tmp_path, items):
    """K = 4 on LSAT6: 6% of random starts reach the best maximum (−2461.2369). With seed 2
    the binary run's 20 starts alone end at −2461.2851 (``--search-budget 0``); the
    default start search finds the best, for binary and categorical runs alike."""
    data = _csv(lsat6(), tmp_path / "lsat6.csv")
    out = tmp_path / "out"
    argv = ["lca", "--data", data, "--k", "4", "--n-init", "20", "--seed", "2", *items]
    assert main([*argv, "--out", str(out)]) == 0
    loglik = json.loads((out / "selection.json").read_text())["table"][0]["loglik"]
    assert loglik == pytest.approx(-2461.2369, abs=1e-3)


def test_header_flag_and_categorical_override(tmp_path, capsys):
    data = _csv(lsat7(), tmp_path / "lsat7.csv")
    out = tmp_path / "out"
    argv = ["lca", "--data", data, "--header", "--categorical", "--k", "2", "--n-init", "2"]
    assert main([*argv, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "5 categorical items" in text and "$Q1" in text
    assert json.loads((out / "selection.json").read_text())["items"] == "categorical"


def test_detection_rule():
    assert detect_items(np.array([[0, 1], [1, 0], [np.nan, 1]], float)) == "binary"
    assert detect_items(np.array([[1, 2], [2, 1]], float)) == "categorical"
    assert detect_items(np.array([[0, 1], [0, 0]], float)) == "categorical"  # one answer
    assert detect_items(np.array([[0, 1], [2, 0]], float)) == "categorical"


def test_weights_column_and_small_blrt(tmp_path, capsys):
    frame = lsat7()
    frame.insert(2, "w", np.random.default_rng(0).uniform(0.5, 2.0, len(frame)))
    data = _csv(frame, tmp_path / "w.csv")
    out = tmp_path / "out"
    argv = ["lca", "--data", data, "--weights", "w", "--k", "1:2", "--n-init", "2"]
    assert main([*argv, "--blrt", "5", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "5 binary items" in text and "weights from w" in text and "BLRT p" in text
    sel = json.loads((out / "selection.json").read_text())
    assert sel["item_names"] == ["Q1", "Q2", "Q3", "Q4", "Q5"] and sel["weights"] == "w"
    assert sel["table"][0]["blrt_p"] is None and 0 <= sel["table"][1]["blrt_p"] <= 1
    fit = pd.read_csv(out / "fit.csv").set_index("statistic")["value"]
    assert fit["observations"] == pytest.approx(frame["w"].sum())  # weighted n


def test_single_value_column_is_fine(tmp_path, capsys):
    frame = values()
    frame["E"] = 1
    data = _csv(frame, tmp_path / "v.csv")
    out = tmp_path / "out"
    assert main(["lca", "--data", data, "--k", "1:2", "--n-init", "2", "--out", str(out)]) == 0
    assert "$E" in capsys.readouterr().out
    _files_ok(out)


def test_npy_input_and_rerun_same_config(tmp_path, capsys):
    path = tmp_path / "x.npy"
    np.save(path, lsat6().to_numpy())
    out = tmp_path / "out"
    argv = ["lca", "--data", str(path), "--k", "1:2", "--n-init", "2", "--out", str(out)]
    assert main(argv) == 0
    assert main(argv) == 0  # its own directory, same configuration
    capsys.readouterr()
    assert main([*argv[:-2], "--seed", "3", "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main([*argv[:-2], "--seed", "3", "--force", "--out", str(out)]) == 0
    capsys.readouterr()  # the start search's budget decides the numbers too
    seed3 = [*argv[:-2], "--seed", "3"]
    assert main([*seed3, "--search-budget", "0", "--out", str(out)]) == 2
    assert "search_budget" in capsys.readouterr().err


def test_refuses_foreign_directory(tmp_path, capsys):
    data = _csv(values(), tmp_path / "values.csv")
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert main(["lca", "--data", data, "--k", "1:2", "--n-init", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "non-empty directory" in err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


@pytest.fixture()
def shipped(tmp_path):
    frame = lsat6()
    frame["w"] = 1.0
    good = _csv(frame, tmp_path / "good.csv")
    neg = frame.copy()
    neg.loc[3, "w"] = -1.0
    (tmp_path / "empty_rows.csv").write_text("a,b\n,\n,\n")
    bad_text = tmp_path / "text.csv"
    bad_text.write_text("a,b\n1,x\n")
    return {"good": good, "neg": _csv(neg, tmp_path / "neg.csv"), "text": str(bad_text)}


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--data", "{tmp}/missing.csv"], "does not exist"),
        (["--data", "{good}", "--k", "0:3"], "--k"),
        (["--data", "{good}", "--k", "a:b"], "--k"),
        (["--data", "{good}", "--k", "2000"], "--k: 2000 classes need at least 2000 rows"),
        (["--data", "{good}", "--weights", "nope"], "--weights: no column 'nope'"),
        (["--data", "{good}", "--weights", "9"], "--weights: no column '9'"),
        (["--data", "{neg}", "--weights", "w"], "negative weight (-1) in data row 4"),
        (["--data", "{text}"], "--k: 6 classes need at least 6 rows; the data has 1"),
        (["--data", "{tmp}/empty_rows.csv", "--k", "2"], "--data: no row has an answer"),
        (["--data", "{good}", "--binary", "--weights", "w", "--n-init", "0"], "--n-init"),
        (["--data", "{good}", "--blrt", "-1"], "--blrt"),
        (["--data", "{good}", "--search-budget", "-1"], "--search-budget"),
        (["--data", "{good}", "--criterion", "foo"], "--criterion"),
        (["--data", "{tmp}/x.doc"], "expected one of .csv, .tsv"),
        (["--data", "{good}", "--categorical", "--binary"], "not allowed with"),
        (["--k", "2"], "the following arguments are required: --data"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, shipped, extra, message):
    (tmp_path / "x.doc").write_text("1,2\n")
    argv = [a.format(tmp=tmp_path, **shipped) for a in extra]
    out = tmp_path / "out"
    assert _exit_code(["lca", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not out.exists()


def test_binary_flag_rejects_other_answers(tmp_path, capsys):
    data = _csv(values(), tmp_path / "values.csv")
    out = tmp_path / "out"
    assert main(["lca", "--data", data, "--binary", "--k", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "emnet lca: error: --binary: item A has the answer 2; binary items are 0/1 "
        "(use --categorical)"
    )


def _exit_code(argv):
    """main's return code, or argparse's exit code (it exits for bad arguments)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def test_parquet_unreadable_is_one_line(tmp_path, capsys):
    path = tmp_path / "x.parquet"
    path.write_bytes(b"not parquet")
    out = tmp_path / "out"
    assert _exit_code(["lca", "--data", str(path), "--k", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("emnet lca: error: --data: ")
    assert not out.exists()


def test_progress_flag_draws_bars_on_stderr(tmp_path, capsys):
    data = _csv(lsat6(), tmp_path / "lsat6.csv")
    out = tmp_path / "out"
    argv = ["lca", "--data", data, "--k", "1:2", "--n-init", "2", "--progress"]
    assert main([*argv, "--out", str(out)]) == 0
    assert "K x restarts" in capsys.readouterr().err


# ------------------------------------------------------------------ --covariates (issue 13)
def _planted_survey(n=800, seed=0):
    """5 binary items, K = 2; P(class 2) = logit⁻¹(-0.3 + 3·(gpa − 3) + 0.8·[party = rep])."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    g = rng.integers(0, 2, n)
    p2 = 1 / (1 + np.exp(-(-0.3 + 1.5 * x + 0.8 * g)))
    z = rng.random(n) < p2
    theta = np.where(z[:, None], 0.15, 0.85)
    frame = pd.DataFrame(
        (rng.random((n, 5)) < theta).astype(int), columns=[f"q{j + 1}" for j in range(5)]
    )
    frame.insert(2, "gpa", np.round(3 + 0.5 * x, 4))
    frame["party"] = np.where(g == 1, "rep", "dem")
    return frame


COV_FILES = {
    "report.html",
    "bic.png",
    "fit.csv",
    "classification.csv",
    "selection.json",
    "selection.csv",
    "summary.txt",
    "coefficients.csv",
    "classes.csv",
    "probabilities.csv",
    "profile.png",
    "covariate_effect_gpa.png",
    "model.npz",
    "posteriors.csv",
}


def test_covariates_one_step_recovers_the_effect(tmp_path, capsys):
    frame = _planted_survey()
    frame.loc[[4, 9], "gpa"] = np.nan
    data = _csv(frame, tmp_path / "survey.csv")
    out = tmp_path / "out"
    argv = ["lca", "--data", data, "--k", "1:3", "--n-init", "2", "--covariates", "gpa", "party"]
    assert main([*argv, "--out", str(out)]) == 0
    text, err = capsys.readouterr()
    assert "2 of 800 rows have a missing covariate" in err
    assert "798 rows x 5 binary items" in text
    assert "gpa (numeric), party (categorical), one-step" in text
    assert "party=rep" in text and "class 1 is the reference" in text
    assert {p.name for p in out.iterdir()} == COV_FILES | {".emnet-run.json"}
    assert (out / "covariate_effect_gpa.png").read_bytes()[:8] == PNG
    from emnet.mixture import BernoulliMixture

    saved = BernoulliMixture.load(out / "model.npz")
    assert saved.covariate_names_[1] == "gpa" and saved.coef_.shape[1] == 3
    assert "Latent class regression" in (out / "summary.txt").read_text()
    sel = json.loads((out / "selection.json").read_text())
    assert sel["best_k"] == 2 and sel["covariates"] == ["gpa", "party"]
    coef = pd.read_csv(out / "coefficients.csv")
    assert list(coef.columns) == ["class", "term", "coef", "se", "z", "p"]
    assert list(coef["term"]) == ["intercept", "gpa", "party=rep"]
    row = coef.set_index("term").loc["gpa"]  # true slope ±3 (the sign follows the labels)
    assert abs(abs(row["coef"]) - 3.0) < 4 * row["se"]
    # the table's BIC is the model's BIC with the covariates
    keep = frame["gpa"].notna().to_numpy()
    X = frame.drop(columns=["gpa", "party"])[keep].astype(float).reset_index(drop=True)
    Z = frame[["gpa", "party"]][keep].reset_index(drop=True)
    model = BernoulliMixture(2, n_init=2, random_state=0, max_iter=5000).fit(X, covariates=Z)
    bic2 = next(r["bic"] for r in sel["table"] if r["k"] == 2)
    assert bic2 == pytest.approx(model.bic(X, covariates=Z), rel=1e-6)


def test_covariates_bch_without_header_and_weights_by_number(tmp_path, capsys):
    frame = _planted_survey(n=600, seed=1).drop(columns=["party"])
    frame["w"] = 1.0
    data = _csv(frame, tmp_path / "s.csv", header=False)  # columns: q1 q2 gpa q3 q4 q5 w
    out = tmp_path / "out"
    argv = ["lca", "--data", data, "--k", "2", "--n-init", "2", "--covariates", "3"]
    argv += ["--weights", "7", "--covariate-method", "bch", "--out", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "600 rows x 5 binary items" in text and "column 3 (numeric), bch" in text
    assert (out / "covariate_effect_column_3.png").read_bytes()[:8] == PNG
    coef = pd.read_csv(out / "coefficients.csv")
    assert list(coef["term"]) == ["intercept", "column 3"]


@pytest.fixture()
def cov_files(tmp_path):
    frame = _planted_survey(n=200)
    frame["w"] = 1.0
    frame["empty"] = np.nan
    frame["gpa2"] = 2 * frame["gpa"] + 1
    good = _csv(frame, tmp_path / "cov.csv")
    return {"good": good}


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--covariates", "age"], "--covariates: no column 'age'"),
        (["--covariates", "gpa", "--weights", "gpa"], "'gpa' is the --weights column"),
        (["--covariates", "empty", "party"], "--covariates: column 'empty' has no value"),
        (["--covariates", "gpa", "gpa2", "party"], "'gpa2' is perfectly collinear"),
        (["--covariates", "gpa", "gpa"], "named twice"),
        (["--covariates", "gpa", "--blrt", "5"], "--blrt: not available with --covariates"),
        (["--covariates", "gpa"], "--data: item empty has no answers"),
        (["--covariates", "gpa", "--covariate-method", "magic"], "--covariate-method"),
    ],
)
def test_covariate_errors_are_one_line_exit_2(tmp_path, capsys, cov_files, extra, message):
    argv = ["lca", "--data", cov_files["good"], "--k", "2", "--n-init", "1", *extra]
    out = tmp_path / "out"
    assert _exit_code([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not out.exists()
