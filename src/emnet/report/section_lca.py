"""Latent class analysis on real survey data: the Stouffer–Toby values items and LSAT6/7.

The model-selection table with the bootstrap likelihood-ratio test, the chosen model's
item-response probabilities and class shares with standard errors, the profile plot, and
a check against poLCA's published maxima for the values data.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from emnet.report._threads import single_threaded_blas
from emnet.report.html import Markup, check, checks, figure, fmt, guarded, join, p, table, tag

SEED = 0
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
    ctx.devices["§LCA"] = "CPU (numpy + numba kernels)"
    res = ctx.results.setdefault("lca", {})
    return join(
        [
            guarded("The values analysis", lambda: _values(ctx, s, res)),
            guarded("The LSAT analysis", lambda: _lsat(ctx, s, res)),
        ]
    )


def _select(X: Any, ks: Any, n_init: int, blrt: int) -> Any:
    from emnet.mixture import select_n_components

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return select_n_components(
            X, list(ks), n_init=n_init, estimator="categorical", blrt=blrt, blrt_n_init=3,
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


def _se(v: float) -> str:
    return "–" if not np.isfinite(v) else fmt(round(float(v), 4))


def _escape(text: str) -> str:
    import html

    return html.escape(text)
