"""Latent class analysis on real survey data: the Stouffer–Toby values items and LSAT6/7.

The model-selection table with the bootstrap likelihood-ratio test, the chosen model's
item-response probabilities and class shares with standard errors, the profile plot, and
a check against poLCA's published maxima for the values data; and a latent class
regression on planted data (covariates that predict class membership: one-step, BCH, ML
and the naive three-step, against the true coefficients, and the predicted-prevalence
plot).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from emnet.report._threads import single_threaded_blas
from emnet.report.html import Markup, check, checks, figure, fmt, guarded, join, p, table, tag

SEED = 0
COV_SEED = 13
#: The planted latent class regression: n rows, 6 binary items, K = 3, covariates
#: x ~ N(0, 1) and a binary group (A / B). COV_BETA[k − 1] = (intercept, x, group=B) of
#: class k + 1 against class 1; COV_THETA[k] = P(item = 1 | class k + 1).
COV_N = 3000
COV_BETA = np.array([[-0.5, 1.5, 0.8], [0.3, -1.0, 0.0]])
COV_THETA = np.array([[0.9] * 6, [0.1] * 6, [0.85, 0.85, 0.85, 0.15, 0.15, 0.15]])
COV_METHODS = (("one-step", "one-step"), ("bch", "BCH"), ("ml", "ML"), ("naive", "naive"))
SETTINGS = {
    "quick": {"n_init": 5, "blrt": 19, "ks": (1, 2, 3, 4)},
    "full": {"n_init": 20, "blrt": 99, "ks": (1, 2, 3, 4)},
}
_COLUMNS = [("K", "k"), ("log-likelihood", "loglik"), ("npar", "n_params"), ("AIC", "aic"),
            ("BIC", "bic"), ("SABIC", "sabic"), ("CAIC", "caic"), ("entropy R²", "entropy"),
            ("G²", "g2"), ("X²", "x2"), ("df", "df"), ("BLRT p", "blrt_p"),
            ("starts at best", "n_at_best")]  # fmt: skip


def build(ctx: Any) -> str:
    with single_threaded_blas():  # small data: see emnet.report._threads
        return _build(ctx)


def _build(ctx: Any) -> str:
    s = SETTINGS["quick" if ctx.quick else "full"]
    ctx.seeds["§LCA model selection and BLRT (random_state)"] = SEED
    ctx.seeds["§LCA covariate example (planted data, fits)"] = COV_SEED
    ctx.devices["§LCA"] = "CPU (numpy + numba kernels)"
    res = ctx.results.setdefault("lca", {})
    return join(
        [
            guarded("The values analysis", lambda: _values(ctx, s, res)),
            guarded("The LSAT analysis", lambda: _lsat(ctx, s, res)),
            guarded("The covariate example", lambda: _covariates(ctx, s, res)),
        ]
    )


def _select(X: Any, ks: Any, n_init: int, blrt: int) -> Any:
    from emnet.mixture import select_n_components

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return select_n_components(
            X, list(ks), n_init=n_init, estimator="categorical", blrt=blrt,
            random_state=SEED,
        )  # fmt: skip


def _selection_table(sel: Any, caption: str) -> Markup:
    rows = []
    for r in sel.table():
        row = []
        for _, key in _COLUMNS:
            v = r.get(key)
            row.append("–" if v is None else (round(v, 4) if isinstance(v, float) else v))
        if r["k"] == sel.best_k:
            row[0] = f"{r['k']} ★"
        rows.append(row)
    return table([c for c, _ in _COLUMNS], rows, caption=caption)


def _values(ctx: Any, s: dict[str, Any], res: dict[str, Any]) -> Markup:
    from emnet.datasets import VALUES_POLCA_LOGLIK, values
    from emnet.mixture import plot_profile

    X = values()
    sel = _select(X, s["ks"], s["n_init"], s["blrt"])
    res["values_selection"] = sel.table()
    csv = ctx.write_csv(
        "lca_values_selection.csv",
        [key for _, key in _COLUMNS],
        [[r.get(key) for _, key in _COLUMNS] for r in sel.table()],
    )
    model = sel.models[sel.best_k].reorder("weight")
    summary = model.summary(X)
    res["values_best_k"] = int(sel.best_k)
    res["values_summary"] = {
        "weights": summary.weights.tolist(),
        "weights_se": summary.weights_se.tolist(),
        "loglik": summary.loglik,
    }
    lls = dict(zip(sel.ks.tolist(), sel.loglik.tolist(), strict=True))
    verdicts = []
    for k, published in VALUES_POLCA_LOGLIK.items():
        if k in lls:
            ok = abs(lls[k] - published) < 5e-4
            verdicts.append(
                check(
                    ok,
                    f"K = {k}: log-likelihood {lls[k]:.4f}, the same maximum as the "
                    f"published poLCA result {published:.4f} (difference "
                    f"{lls[k] - published:+.1e})",
                )  # fmt: skip
            )
    src = "figures/lca_values_profile.png"
    se = model.standard_errors(X)
    plot_profile(model, standard_errors=se, path=ctx.path(src))
    prob_rows = []
    for name, answers, pr, pse in zip(
        summary.feature_names, summary.answers, summary.probs, summary.probs_se, strict=True
    ):
        for k in range(summary.n_components):
            prob_rows.append(
                [name, f"class {k + 1}"]
                + [f"{pr[k, r]:.4f} ({_se(pse[k, r])})" for r in range(len(answers))]
            )
    shares = ", ".join(
        f"class {k + 1}: {w:.4f} (SE {_se(e)})"
        for k, (w, e) in enumerate(zip(summary.weights, summary.weights_se, strict=True))
    )
    return join(
        [
            tag("h3", "The Stouffer–Toby values items (216 respondents × 4 items)"),
            p(
                "Four role-conflict items (1 = particularistic, 2 = universalistic; Stouffer "
                f"& Toby 1951, poLCA's values). CategoricalMixture for K = "
                f"{', '.join(map(str, s['ks']))} with {s['n_init']} random starts each; BLRT "
                f"with {s['blrt']} bootstrap samples per K (emnet.mixture.select_n_components). "
                "★ marks the K with the lowest BIC."
            ),
            _selection_table(sel, f"Model selection on values (also in {csv})"),
            checks(verdicts),
            tag("h4", f"The chosen model: K = {sel.best_k} (classes ordered by size)"),
            p(f"Class shares with standard errors (observed information): {shares}."),
            table(
                ["item", "class", *[f"Pr({a})" for a in summary.answers[0]]],
                prob_rows,
                caption="Item-response probabilities (standard errors)",
            ),
            figure(
                src,
                "Profile plot of the values classes",
                "Probability of the universalistic answer per item and class, ±1.96 SE.",
                width=640,
            ),  # fmt: skip
            Markup(f"<pre class='summary'>{_escape(str(summary))}</pre>"),
        ]
    )


def _lsat(ctx: Any, s: dict[str, Any], res: dict[str, Any]) -> Markup:
    from emnet.datasets import lsat6, lsat7

    parts = [tag("h3", "LSAT sections 6 and 7 (1000 examinees × 5 binary items each)")]
    best = {}
    for name, loader in (("LSAT6", lsat6), ("LSAT7", lsat7)):
        X = loader()
        sel = _select(X, (1, 2, 3), s["n_init"], 0)
        res[f"{name.lower()}_selection"] = sel.table()
        best[name] = int(sel.best_k)
        parts.append(
            _selection_table(sel, f"{name}: K = 1..3, {s['n_init']} starts each (no BLRT)")
        )
    parts.append(
        p(
            f"BIC prefers K = {best['LSAT6']} on LSAT6 and K = {best['LSAT7']} on LSAT7; 5 "
            "binary items leave 32 answer patterns, so the chi-square references of G² and X² "
            "are usable here (docs/lca.md says when they are not)."
        )
    )
    return join(parts)


def planted_covariates(seed: int = COV_SEED, n: int = COV_N) -> tuple[Any, Any]:
    """(X (n, 6) 0/1, Z DataFrame x, group) drawn from the planted regression."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, n)
    group = rng.integers(0, 2, n)
    D = np.column_stack([np.ones(n), x, group])
    eta = np.column_stack([np.zeros(n), D @ COV_BETA.T])
    prob = np.exp(eta - eta.max(axis=1, keepdims=True))
    prob /= prob.sum(axis=1, keepdims=True)
    z = (prob.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    X = (rng.random((n, COV_THETA.shape[1])) < COV_THETA[z]).astype(np.float64)
    return X, pd.DataFrame({"x": x, "group": np.where(group == 1, "B", "A")})


def _match_truth(model: Any) -> Any:
    """Relabel the fitted classes so that class k is the planted class k (closest means)."""
    from itertools import permutations

    means = np.asarray(model.means_)
    best = min(
        permutations(range(len(means))),
        key=lambda perm: float(np.abs(means[list(perm)] - COV_THETA).sum()),
    )
    return model.reorder(list(best))


def _covariates(ctx: Any, s: dict[str, Any], res: dict[str, Any]) -> Markup:
    from matplotlib.figure import Figure

    from emnet.mixture import BernoulliMixture, plot_covariate_effect

    X, Z = planted_covariates()
    n_init = 3 if ctx.quick else 10
    tables, models = {}, {}
    for method, _ in COV_METHODS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = BernoulliMixture(3, n_init=n_init, random_state=COV_SEED).fit(
                X, covariates=Z, covariate_method=method
            )
        models[method] = _match_truth(model)
        tables[method] = models[method].coefficients()
    names = tables["one-step"].names
    rows, csv_rows, verdicts = [], [], []
    record: dict[str, Any] = {"true": COV_BETA.tolist(), "terms": names}
    for method, label in COV_METHODS:
        t = tables[method]
        record[method] = {"coef": t.coef.tolist(), "se": t.se.tolist()}
        if method == "naive":
            continue
        z = np.abs(t.coef - COV_BETA) / t.se
        verdicts.append(
            check(
                bool(np.all(z < 3)),
                f"{label}: every coefficient within 3 standard errors of the planted value "
                f"(largest |estimate − true| / SE = {z.max():.2f})",
            )
        )
    slope_true, slope_naive = COV_BETA[0, 1], tables["naive"].coef[0, 1]
    slope_bch = tables["bch"].coef[0, 1]
    verdicts.append(
        check(
            abs(slope_naive) < abs(slope_true) - 2 * tables["naive"].se[0, 1],
            f"naive three-step (modal class, plain logit): the x slope of class 2 is "
            f"{slope_naive:.3f} against the true {slope_true:.2f}, biased toward zero; BCH "
            f"gives {slope_bch:.3f}",
        )
    )
    res["covariates"] = record
    for k in range(COV_BETA.shape[0]):
        for j, term in enumerate(names):
            row: list[Any] = [f"class {k + 2}", term, fmt(COV_BETA[k, j])]
            line: list[Any] = [k + 2, term, COV_BETA[k, j]]
            for method, _ in COV_METHODS:
                t = tables[method]
                row.append(f"{t.coef[k, j]:.3f} ({t.se[k, j]:.3f})")
                line += [t.coef[k, j], t.se[k, j]]
            rows.append(row)
            csv_rows.append(line)
    csv = ctx.write_csv(
        "lca_covariate_coefficients.csv",
        ["class", "term", "true"] + [f"{m}_{c}" for m, _ in COV_METHODS for c in ("coef", "se")],
        csv_rows,
    )
    fig = Figure(figsize=(11.0, 4.2), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    grid = np.linspace(Z["x"].min(), Z["x"].max(), 101)
    D = np.column_stack([np.ones_like(grid), grid, np.zeros_like(grid)])
    eta = np.column_stack([np.zeros_like(grid), D @ COV_BETA.T])
    truth = np.exp(eta) / np.exp(eta).sum(axis=1, keepdims=True)
    for ax, method in zip(axes, ("one-step", "bch"), strict=True):
        plot_covariate_effect(models[method], "x", data=Z, ax=ax)
        for k in range(truth.shape[1]):
            ax.plot(grid, truth[:, k], color="0.25", linestyle=(0, (3, 2)), linewidth=0.9,
                    label="true" if k == 0 else None)  # fmt: skip
        ax.legend(fontsize=8, title_fontsize=8, loc="center left",
                  title=f"class (share), ±1.96 SE, {method}")  # fmt: skip
    src = ctx.savefig(fig, "lca_covariate_effect.png")
    return join(
        [
            tag("h3", "Covariates: who is in which class (latent class regression)"),
            p(
                f"Planted data made here (seed {COV_SEED}): {COV_N} respondents, 6 binary "
                "items, 3 classes; class membership is a multinomial logit of a numeric "
                "covariate x ~ N(0, 1) and a binary group (A = reference, B), "
                "P(class k | z) = softmax_k(β_k · [1, x, group=B]) with β_1 = 0. "
                "BernoulliMixture(3).fit(X, covariates=Z, covariate_method=...) with "
                f"{n_init} random starts; classes matched to the planted ones by their item "
                "probabilities. One-step estimates β jointly with the measurement model; "
                "the three-step methods fit the classes first, then correct the regression "
                "on the modal classes for classification error (BCH weights, Vermunt's ML). "
                "The naive three-step (a plain logit of the modal class) is shown for "
                "contrast: it is biased toward zero."
            ),
            table(
                ["class vs 1", "term", "true", *[f"{lab} (SE)" for _, lab in COV_METHODS]],
                rows,
                caption=f"Coefficients with standard errors (also in {csv})",
            ),
            checks(verdicts),
            figure(
                src,
                "Predicted class probabilities against x, one-step and BCH",
                "Predicted class probabilities P(class | x, group = A) with ±1.96 SE bands "
                "(delta method, emnet.mixture.plot_covariate_effect); dashed: the planted "
                "curves.",
                width=900,
            ),
        ]
    )


def _se(v: float) -> str:
    return "–" if not np.isfinite(v) else fmt(round(float(v), 4))


def _escape(text: str) -> str:
    import html

    return html.escape(text)
