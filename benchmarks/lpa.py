"""The latent profile analysis protocol: emnet's LatentClassModel against scikit-learn's
GaussianMixture (the same starts and tolerance), stepmix (its own starts) and mclust (its
own protocol, through Rscript when R and mclust are installed).

For K = 1..6, the four variance structures users name (mclust's EEI, VVI, EEE, VVV), 20
random starts each, tol 1e-10 (the change of the mean log-likelihood per row), on iris
(150 × 4), wine (178 × 13), breast cancer (569 × 30) and a planted set (``--planted-n`` rows × 10, K = 4, default
100 000). The starts are drawn once per (data set, K): K distinct rows as the means,
equal shares, each column's variance on the diagonal, and given to emnet
(``means_init``/``weights_init``/``covariances_init``, ``n_init=1``, no start search) and
scikit-learn (``means_init``/``weights_init``/``precisions_init``) alike; scikit-learn has
no EEI. stepmix 3 runs ``measurement="gaussian_diag"`` (VVI), ``"gaussian_full"`` (VVV)
and ``"gaussian_tied"`` (EEE) with its own 20 starts (``abs_tol=1e-10``); on the planted
set it and scikit-learn run ``--planted-starts`` starts (default 2) and their seconds are
scaled to 20, which the table says. mclust: ``Mclust(X, G = 1:6, modelNames = c("EEI",
"VVI", "EEE", "VVV"))`` at its defaults (hierarchical start), one timing for its whole
protocol per data set.

Recorded per data set, structure and K: the best log-likelihood each reached (emnet: the
best *proper* maximum — starts that end in a collapsed class are set aside and counted)
and the seconds; then the protocol's ratios. Two more columns judge the maxima rather than
the speed: emnet as a user runs it (its own k-means++ starts and start search, the same
number of starts), and, where stepmix's best is above both emnet columns, whether that
solution is a proper maximum by emnet's rule (EM from stepmix's parameters, which are a
fixed point already, then the degenerate test). Run on a quiet machine:
``python benchmarks/lpa.py`` (writes the ``lpa`` section of docs/benchmarks.md);
``--quick`` runs a small smoke version.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_line, markdown_table, write_section  # noqa: E402

from emnet.mixture import LatentClassModel  # noqa: E402

STRUCTURES = ("EEI", "VVI", "EEE", "VVV")
SKLEARN = {"VVI": "diag", "EEE": "tied", "VVV": "full"}
STEPMIX = {"VVI": "gaussian_diag", "EEE": "gaussian_tied", "VVV": "gaussian_full"}
TOL = 1e-10


def planted(n: int, seed: int = 0) -> np.ndarray:
    """n × 10 rows from 4 Gaussian profiles with class-specific full covariances."""
    rng = np.random.default_rng(seed)
    D, K = 10, 4
    means = rng.normal(0, 2.0, size=(K, D))
    z = rng.choice(K, size=n, p=[0.4, 0.3, 0.2, 0.1])
    X = np.empty((n, D))
    for k in range(K):
        A = rng.normal(size=(D, D)) / np.sqrt(D)
        cov = A @ A.T + 0.5 * np.eye(D)
        rows = z == k
        X[rows] = rng.multivariate_normal(means[k], cov, size=int(rows.sum()))
    return X


def datasets(quick: bool, planted_n: int) -> dict[str, np.ndarray]:
    from sklearn.datasets import load_breast_cancer, load_iris, load_wine

    out = {"iris": load_iris().data, "wine": load_wine().data}
    if not quick:
        out["cancer"] = load_breast_cancer().data
    out["planted"] = planted(2000 if quick else planted_n)
    return out


def draw_starts(X: np.ndarray, k: int, n: int, seed: int) -> list[tuple]:
    rng = np.random.default_rng(seed)
    var = X.var(axis=0)
    return [
        (np.full(k, 1.0 / k), X[rng.choice(len(X), size=k, replace=False)].copy(), var)
        for _ in range(n)
    ]


def compact(var: np.ndarray, k: int, structure: str) -> np.ndarray:
    return {
        "EEI": var,
        "VVI": np.tile(var, (k, 1)),
        "EEE": np.diag(var),
        "VVV": np.tile(np.diag(var), (k, 1, 1)),
    }[structure]


def timed_fit(model, X) -> float:
    """Fit ``model`` on X with its warnings silenced; the seconds the fit took."""
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X)
    return time.perf_counter() - t0


def from_start(k, structure, weights, means, covariances) -> LatentClassModel:
    """emnet from one given start: n_init=1, no start search."""
    return LatentClassModel(
        k, covariance=structure, n_init=1, tol=TOL, max_iter=20000, search_budget=0.0,
        weights_init=weights, means_init=means, covariances_init=covariances,
    )  # fmt: skip


def run_emnet(X, k, structure, starts) -> tuple[float, list[float], int]:
    """(best proper log-likelihood, the seconds of each start, starts set aside)."""
    best, seconds, aside = -np.inf, [], 0
    for w, m, var in starts:
        model = from_start(k, structure, w, m, compact(var, k, structure))
        seconds.append(timed_fit(model, X))
        aside += int(model.n_degenerate_starts_)
        if not model.n_degenerate_starts_:
            best = max(best, float(model.score(X) * len(X)))
    return best, seconds, aside


def run_sklearn(X, k, structure, starts) -> tuple[float, float]:
    from sklearn.mixture import GaussianMixture

    kind = SKLEARN[structure]
    best, seconds = -np.inf, 0.0
    for w, m, var in starts:
        prec = {"diag": np.tile(1 / var, (k, 1)), "tied": np.diag(1 / var),
                "full": np.tile(np.diag(1 / var), (k, 1, 1))}[kind]  # fmt: skip
        gm = GaussianMixture(
            k, covariance_type=kind, tol=TOL, max_iter=20000, weights_init=w, means_init=m,
            precisions_init=prec,
        )  # fmt: skip
        seconds += timed_fit(gm, X)
        best = max(best, float(gm.score(X) * len(X)))
    return best, seconds


def run_defaults(X, k, structure, n_init) -> tuple[float, float]:
    """emnet as a user runs it: its own starts (k-means++) and start search."""
    model = LatentClassModel(
        k, covariance=structure, n_init=n_init, tol=TOL, max_iter=20000, random_state=0
    )
    seconds = timed_fit(model, X)
    proper = model.n_degenerate_starts_ < len(model.init_lower_bounds_)
    return (float(model.score(X) * len(X)) if proper else -np.inf), seconds


def is_proper(X, k, structure, weights, means, covariances) -> bool:
    """Whether a peer's solution is a proper maximum by emnet's rule: EM from it (it is
    a fixed point already) and the block's degenerate test on the result."""
    model = from_start(k, structure, np.asarray(weights) / np.sum(weights), means, covariances)
    timed_fit(model, X)
    return not bool(model.init_degenerate_[0])


def run_stepmix(X, k, structure, n_init) -> tuple[float, float, tuple]:
    from stepmix.stepmix import StepMix

    model = StepMix(
        n_components=k, measurement=STEPMIX[structure], n_init=n_init, abs_tol=TOL,
        rel_tol=0.0, max_iter=20000, verbose=0, progress_bar=0, random_state=0,
    )  # fmt: skip
    seconds = timed_fit(model, X)
    p = model.get_parameters()
    solution = (p["weights"], p["measurement"]["means"], p["measurement"]["covariances"])
    return float(model.score(X) * len(X)), seconds, solution


def rscript(script: str, X: np.ndarray) -> str | None:
    """The standard output of R ``script`` run on X (a CSV file, its path the script's
    first argument); None when Rscript is missing or the script fails."""
    if shutil.which("Rscript") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.csv"
        np.savetxt(path, X, delimiter=",", header=",".join(f"x{j}" for j in range(X.shape[1])),
                   comments="")  # fmt: skip
        try:
            return subprocess.run(
                ["Rscript", "-e", script, str(path)], capture_output=True, text=True, check=True
            ).stdout
        except subprocess.CalledProcessError:
            return None


def run_mclust(X: np.ndarray) -> tuple[dict, float] | None:
    """{(structure, K): log-likelihood} and the seconds of mclust's whole protocol."""
    script = (
        "suppressMessages(library(mclust)); X <- as.matrix(read.csv(commandArgs(TRUE)[1]));"
        "t0 <- Sys.time(); fits <- list();"
        "for (m in c('EEI','VVI','EEE','VVV')) for (g in 1:6) {"
        " f <- tryCatch(Mclust(X, G = g, modelNames = m, verbose = FALSE), error = function(e) NULL);"
        " cat(m, g, if (is.null(f)) NA else f$loglik, '\\n') };"
        "cat('seconds', as.numeric(difftime(Sys.time(), t0, units = 'secs')), '\\n')"
    )
    out = rscript(script, X)
    if out is None:
        return None
    lls, seconds = {}, float("nan")
    for line in out.splitlines():
        parts = line.split()
        if parts[0] == "seconds":
            seconds = float(parts[1])
        elif len(parts) == 3:
            lls[(parts[0], int(parts[1]))] = float(parts[2]) if parts[2] != "NA" else np.nan
    return lls, seconds


def _cell(v: object) -> object:
    if isinstance(v, float):
        return "—" if not np.isfinite(v) else (f"{v:.4f}" if abs(v) >= 10 else f"{v:.3g}")
    return v


def section_text(
    rows: list, totals: dict, per_data: dict, notes: list, ks: tuple, n_init: int,
    have_stepmix: bool,
) -> str:  # fmt: skip
    """The ``lpa`` section of docs/benchmarks.md: the protocol's ratios and the table."""
    header = ["data", "structure", "K", "emnet LL (proper)", "emnet s", "set aside",
              "emnet defaults LL", "defaults s", "sklearn LL", "sklearn s", "stepmix LL",
              "stepmix s", "stepmix above emnet", "mclust LL"]  # fmt: skip
    by_data = "; ".join(
        f"{name}: {d['sk'] / max(d['emnet_sk'], 1e-12):.1f}× scikit-learn, "
        f"{d['sm'] / max(d['emnet_sm'], 1e-12):.1f}× stepmix"
        for name, d in per_data.items()
    )
    ratio_sk = totals["sklearn"] / max(totals["emnet_sk"], 1e-12)
    ratio_sm = totals["stepmix"] / max(totals["emnet_sm"], 1e-12) if have_stepmix else np.nan
    text = "\n".join(
        [
            "## Latent profile analysis (`benchmarks/lpa.py`)",
            "",
            machine_line(),
            "",
            f"Protocol: K = {ks[0]}..{ks[-1]}, {n_init} starts, tol {TOL:g}, EEI/VVI/EEE/VVV. "
            f"emnet total {totals['emnet']:.1f} s. Against scikit-learn (same starts, VVI/EEE/VVV): "
            f"{ratio_sk:.1f}× ({totals['sklearn']:.1f} s vs {totals['emnet_sk']:.1f} s). "
            f"Against stepmix (VVI/EEE/VVV): {ratio_sm:.1f}× ({totals['stepmix']:.1f} s vs "
            f"{totals['emnet_sm']:.1f} s). Per data set: {by_data}. mclust's own protocol: "
            f"{totals['mclust']:.1f} s (all structures and K, hierarchical start). "
            '"emnet defaults": LatentClassModel as a user runs it (its own k-means++ '
            "starts, and the start search's k-means++ and random soft partitions; the "
            'same number of starts); "stepmix above emnet": '
            "where stepmix's best is higher than both emnet columns, whether its solution "
            "is a proper maximum by emnet's rule (EM from it, then the degenerate test)."
            + ("" if not notes else " " + "; ".join(notes) + "."),
            "",
            markdown_table(header, [[_cell(v) for v in row] for row in rows]),
        ]
    )
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n-init", type=int, default=20)
    ap.add_argument("--planted-n", type=int, default=100_000)
    ap.add_argument("--planted-starts", type=int, default=2)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    ks = (1, 2, 3) if args.quick else (1, 2, 3, 4, 5, 6)
    n_init = 3 if args.quick else args.n_init
    try:
        import stepmix  # noqa: F401

        have_stepmix = True
    except ImportError:
        have_stepmix = False
    rows, totals = [], {"emnet": 0.0, "sklearn": 0.0, "emnet_sk": 0.0, "stepmix": 0.0,
                        "emnet_sm": 0.0, "mclust": 0.0}  # fmt: skip
    per_data: dict[str, dict[str, float]] = {}
    notes = []
    for name, X in datasets(args.quick, args.planted_n).items():
        big = name == "planted" and not args.quick
        peer_starts = min(args.planted_starts, n_init) if big else n_init
        scale = n_init / peer_starts
        mclust = run_mclust(X)
        if mclust is not None:
            totals["mclust"] += mclust[1]
        mine = per_data.setdefault(name, dict.fromkeys(("sk", "emnet_sk", "sm", "emnet_sm"), 0.0))
        for structure in STRUCTURES:
            for k in ks:
                starts = draw_starts(X, k, n_init, seed=1000 * k + 7)
                ll, times, aside = run_emnet(X, k, structure, starts)
                secs = float(sum(times))
                same = float(sum(times[:peer_starts])) * scale  # on scikit-learn's starts
                own_ll, own_secs = run_defaults(X, k, structure, n_init)
                row = [name, structure, k, ll, secs, aside, own_ll, own_secs]
                if structure in SKLEARN:
                    sk_ll, sk_secs = run_sklearn(X, k, structure, starts[:peer_starts])
                    sk_secs *= scale
                    totals["sklearn"] += sk_secs
                    totals["emnet_sk"] += same
                    mine["sk"] += sk_secs
                    mine["emnet_sk"] += same
                    row += [sk_ll, sk_secs]
                else:
                    row += ["—", "—"]
                if have_stepmix and structure in STEPMIX:
                    sm_ll, sm_secs, solution = run_stepmix(X, k, structure, peer_starts)
                    sm_secs *= scale
                    totals["stepmix"] += sm_secs
                    totals["emnet_sm"] += secs
                    mine["sm"] += sm_secs
                    mine["emnet_sm"] += secs
                    verdict = "—"
                    if sm_ll > max(ll, own_ll) + 1e-3:  # higher than emnet: proper or not?
                        proper = is_proper(X, k, structure, *solution)
                        verdict = "proper" if proper else "collapsed"
                    row += [sm_ll, sm_secs, verdict]
                else:
                    row += ["—", "—", "—"]
                mc = mclust[0].get((structure, k), np.nan) if mclust else np.nan
                row.append(mc)
                totals["emnet"] += secs
                rows.append(row)
                print(*(f"{v:.4f}" if isinstance(v, float) else v for v in row), flush=True)
        if big:
            notes.append(
                f"{name}: scikit-learn and stepmix ran {peer_starts} of the {n_init} starts "
                f"and their seconds are scaled to {n_init}; the scikit-learn ratio takes "
                f"emnet's seconds on the same {peer_starts} (scaled likewise; the table's "
                f"emnet s is all {n_init}), the stepmix ratio emnet's {n_init} (stepmix draws "
                "its own starts)"
            )
            if mclust is not None:
                notes.append(
                    f"{name}: mclust's hierarchical start runs on 2000 random rows (its "
                    'default mclust.options("subset")), its EM on all'
                )
    text = section_text(rows, totals, per_data, notes, ks, n_init, have_stepmix)
    print(text)
    if not args.no_write and not args.quick:
        write_section("lpa", text)


if __name__ == "__main__":
    main()
