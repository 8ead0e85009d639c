"""§1 of the report: a Bernoulli mixture fitted by EM to the binarized digits.

Shows the component means (K = 10), the log-likelihood per iteration (checked monotone),
the expected complete-data log-likelihood Q (eq. 7) next to it from EM run step by step
with the pure functions, BIC vs K, and the agreement of the clusters with the digit labels.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from emnet.report._threads import single_threaded_blas
from emnet.report.em_trace import Trace, em_trace
from emnet.report.html import Markup, check, checks, figure, fmt, guarded, join, p, table, tag

if TYPE_CHECKING:
    from emnet.report.context import Context


@dataclass(frozen=True)
class EMSettings:
    n_components: int
    n_init: int
    max_iter: int
    tol: float
    trace_iter: int
    bic_ks: tuple[int, ...]
    bic_n_init: int
    seed: int = 0


SETTINGS = {
    "full": EMSettings(
        n_components=10,
        n_init=10,
        max_iter=300,
        tol=1e-6,
        trace_iter=60,
        bic_ks=(1, 2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 18, 20, 25, 30),
        bic_n_init=2,
    ),
    "quick": EMSettings(
        n_components=10,
        n_init=1,
        max_iter=150,
        tol=1e-5,
        trace_iter=25,
        bic_ks=(2, 5, 10, 15, 20),
        bic_n_init=1,
    ),
}

#: Monotonicity tolerance: relative to the magnitude of the objective.
RTOL = 1e-9


def build(ctx: Context) -> str:
    with single_threaded_blas():  # tiny matrices: see emnet.report._threads
        return _build(ctx)


def _build(ctx: Context) -> str:
    from sklearn.metrics import adjusted_rand_score

    from emnet.data import binarized_digits
    from emnet.mixture import BernoulliMixture

    s = SETTINGS["quick" if ctx.quick else "full"]
    X, labels = binarized_digits()
    n, d = X.shape
    ctx.seeds["§1 EM fit (random_state)"] = s.seed
    ctx.devices["§1 EM"] = "CPU (numpy)"

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        model = BernoulliMixture(
            n_components=s.n_components,
            n_init=s.n_init,
            max_iter=s.max_iter,
            tol=s.tol,
            random_state=s.seed,
        ).fit(X)
    pred = model.predict(X)
    ari = float(adjusted_rand_score(labels, pred))
    history = np.asarray(model.history_, dtype=float)
    steps = np.diff(history)
    worst_step = float(steps.min()) if steps.size else 0.0
    monotone = bool(worst_step >= -RTOL * max(1.0, float(np.abs(history).max())))
    loglik = float(model.score(X))
    bic = float(model.bic(X))
    order = np.argsort(-model.weights_)
    majority, purity = _majority_labels(pred, labels, s.n_components)

    res = ctx.results.setdefault("em", {})
    res.update(
        n_samples=n,
        n_features=d,
        n_components=s.n_components,
        n_init=s.n_init,
        n_iter=int(model.n_iter_),
        converged=bool(model.converged_),
        loglik_per_sample=loglik,
        bic=bic,
        adjusted_rand_index=ari,
        history=history.tolist(),
        monotone=monotone,
        worst_step=worst_step,
        weights=model.weights_.tolist(),
    )

    means_src = ctx.savefig(
        _plot_means(model.means_[order], model.weights_[order], majority[order], purity[order]),
        "em_means.png",
    )
    history_src = ctx.savefig(_plot_history(history), "em_loglik.png")
    ctx.write_csv(
        "em_history.csv", ["iteration", "loglik_per_sample"], enumerate(history.tolist(), 1)
    )

    contingency_rows = []
    for rank, k in enumerate(order):
        counts = np.bincount(labels[pred == k], minlength=10)
        contingency_rows.append(
            (rank, float(model.weights_[k]), int(counts.sum()), int(majority[k]), float(purity[k]))
            + tuple(int(c) for c in counts)
        )
    ctx.write_csv(
        "em_clusters_vs_labels.csv",
        ["component", "weight", "size", "majority_digit", "purity"] + [str(i) for i in range(10)],
        contingency_rows,
    )

    summary = table(
        ["quantity", "value"],
        [
            ("samples × pixels", f"{n:,} × {d}"),
            ("components K", s.n_components),
            ("restarts (n_init)", s.n_init),
            ("EM iterations", int(model.n_iter_)),
            ("converged", bool(model.converged_)),
            ("log-likelihood per sample", loglik),
            ("total log-likelihood (eq. 2)", loglik * n),
            ("BIC", bic),
            ("adjusted Rand index vs digit labels", ari),
        ],
        caption=f"Fit of K = {s.n_components} (BernoulliMixture, random_state = {s.seed})",
        class_="data compact",
    )
    clusters = table(
        ["component", "weight π", "size", "majority digit", "purity"] + [str(i) for i in range(10)],
        contingency_rows,
        caption="Clusters vs true digit labels (counts of each digit per component)",
        class_="data compact",
    )
    return join(
        [
            summary,
            figure(
                means_src,
                "component means of the Bernoulli mixture, as 8x8 images",
                "Component means p⁽ᵏ⁾ as 8×8 images, sorted by weight; each title gives the "
                "weight π_k and the digit most of the component's samples carry.",
                width=900,
            ),
            tag("h3", "Log-likelihood per iteration"),
            checks(
                [
                    check(
                        monotone,
                        f"EM never decreased the log-likelihood: smallest step between "
                        f"iterations {fmt(worst_step)} nats per sample over "
                        f"{history.size} iterations.",
                    )
                ]
            ),
            figure(
                history_src,
                "log-likelihood per iteration",
                "Mean log-likelihood per sample after each EM iteration (model.history_).",
                width=640,
            ),
            guarded("The Q trace", lambda: _q_part(ctx, X, s)),
            guarded("BIC vs K", lambda: _bic_section(ctx, X, s)),
            tag("h3", "Agreement with the digit labels"),
            p(
                f"The adjusted Rand index between the K = {s.n_components} clusters and the "
                f"true digit labels is {fmt(ari, 4)} (1 = identical partitions, 0 = chance). "
                "The labels were not used by the fit."
            ),
            clusters,
        ]
    )


def _q_part(ctx: Context, X: np.ndarray, s: EMSettings) -> Markup:
    """EM step by step with the pure functions: L, Q (eq. 7) and the entropy per iteration."""
    trace = em_trace(X, s.n_components, s.trace_iter, seed=s.seed + 1)
    ctx.seeds["§1 Q trace start (random rows)"] = s.seed + 1
    estimator_gap = _estimator_matches_trace(X, trace, s)
    ctx.results["em"]["trace"] = {
        "loglik": trace.loglik.tolist(),
        "q": trace.q.tolist(),
        "entropy": trace.entropy.tolist(),
        "identity_max_abs_error": trace.identity_error,
        "estimator_max_abs_diff": estimator_gap,
    }
    q_src = ctx.savefig(_plot_trace(trace), "em_q.png")
    ctx.write_csv(
        "em_q_trace.csv",
        ["iteration", "loglik_per_sample", "Q_next_per_sample", "entropy_per_sample"],
        zip(range(trace.loglik.size), trace.loglik, trace.q, trace.entropy),
    )

    return join(
        [
            tag("h3", "Q (eq. 7) next to the log-likelihood"),
            p(
                "EM run step by step with the pure functions (e_step, m_step, "
                "expected_complete_loglik) from a start at random data rows. At iteration t, "
                "L(θₜ) is the log-likelihood and Q(θₜ₊₁ | θₜ) the expected complete-data "
                "log-likelihood (eq. 7) that the M-step maximises; H(ηₜ) is the entropy of "
                "the responsibilities. EM theory: L(θₜ) = Q(θₜ | θₜ) + H(ηₜ) and "
                "L(θₜ₊₁) ≥ Q(θₜ₊₁ | θₜ) + H(ηₜ) ≥ L(θₜ)."
            ),
            checks(
                [
                    check(
                        trace.identity_error < 1e-8,
                        f"L(θₜ) = Q(θₜ | θₜ) + H(ηₜ) at every iteration: largest error "
                        f"{fmt(trace.identity_error)} nats per sample.",
                    ),
                    check(
                        trace.bound_violation <= 1e-9,
                        f"L(θₜ₊₁) ≥ Q(θₜ₊₁ | θₜ) + H(ηₜ) ≥ L(θₜ) at every iteration "
                        f"(largest violation {fmt(trace.bound_violation)}).",
                    ),
                    check(
                        estimator_gap < 1e-8,
                        f"BernoulliMixture started from the same parameters follows the same "
                        f"log-likelihood path: largest difference {fmt(estimator_gap)}.",
                    ),
                ]
            ),
            figure(
                q_src,
                "Q and log-likelihood per iteration",
                "Per sample: log-likelihood L(θₜ) and Q(θₜ₊₁ | θₜ) (left); the gap "
                "L(θₜ₊₁) − L(θₜ) and the entropy term (right).",
                width=1000,
            ),
        ]
    )


def _majority_labels(
    pred: np.ndarray, labels: np.ndarray, n_components: int
) -> tuple[np.ndarray, np.ndarray]:
    majority = np.zeros(n_components, dtype=int)
    purity = np.zeros(n_components)
    for k in range(n_components):
        counts = np.bincount(labels[pred == k], minlength=10)
        if counts.sum():
            majority[k] = int(counts.argmax())
            purity[k] = counts.max() / counts.sum()
    return majority, purity


def _estimator_matches_trace(X: np.ndarray, trace: Trace, s: EMSettings) -> float:
    """Largest |difference| between the estimator's history_ and the traced L(θₜ₊₁)."""
    from emnet.mixture import BernoulliMixture

    n_iter = trace.loglik.size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = BernoulliMixture(
            n_components=s.n_components,
            weights_init=trace.weights0,
            means_init=trace.means0,
            max_iter=n_iter - 1,
            tol=0.0,
            accelerate=False,  # the traced loop is plain EM, step for step
        ).fit(X)
    hist = np.asarray(model.history_, dtype=float)
    m = min(hist.size, n_iter - 1)
    # history_[t] is the objective after iteration t+1, i.e. L(θₜ₊₁)
    return float(np.max(np.abs(hist[:m] - trace.loglik[1 : m + 1]))) if m else float("inf")


def _bic_section(ctx: Context, X: np.ndarray, s: EMSettings) -> Markup:
    from emnet.mixture.inference.selection import plot_bic, select_n_components

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sel = select_n_components(
            X,
            list(s.bic_ks),
            n_init=s.bic_n_init,
            random_state=s.seed,
            max_iter=s.max_iter,
            tol=s.tol,
        )
    rows = [
        (int(r["k"]), r["loglik_per_sample"], r["bic"], r["aic"], int(r["n_iter"]), r["converged"])
        for r in sel.table()
    ]
    ctx.seeds["§1 BIC fits (seed of the restarts' seeds)"] = s.seed
    ctx.results["em"]["bic_vs_k"] = {"table": sel.table(), "best_k": int(sel.best_k)}
    src = "figures/em_bic.png"
    plot_bic(sel, ctx.path(src))
    ctx.write_csv(
        "em_bic.csv", ["k", "loglik_per_sample", "bic", "aic", "n_iter", "converged"], rows
    )
    return join(
        [
            tag("h3", "BIC vs K"),
            figure(
                src,
                "BIC and AIC against the number of components",
                f"BIC = −2·log-likelihood + (K − 1 + K·D)·log n and AIC for each K (best of "
                f"{s.bic_n_init} restart(s) each, emnet.mixture.select_n_components); BIC is "
                f"lowest at K = {int(sel.best_k)}.",
                width=640,
            ),
            table(
                ["K", "log-likelihood per sample", "BIC", "AIC", "EM iterations", "converged"],
                rows,
                caption="Model selection",
                class_="data compact",
            ),
        ]
    )


def _plot_means(means: np.ndarray, weights: np.ndarray, majority: np.ndarray, purity: np.ndarray):
    from matplotlib.figure import Figure

    from emnet.mixture.plots.common import plot_means

    k = means.shape[0]
    cols = min(k, 5)
    rows = int(np.ceil(k / cols))
    fig = Figure(figsize=(1.9 * cols, 2.35 * rows))
    side = int(round(np.sqrt(means.shape[1])))
    labels = [f"π = {weights[i]:.3f}\ndigit {majority[i]} ({purity[i]:.0%})" for i in range(k)]
    plot_means(
        means, ax=fig.subplots(rows, cols, squeeze=False).ravel(), image_shape=(side, side),
        labels=labels,
    )  # fmt: skip
    fig.tight_layout(h_pad=1.2)
    return fig


def _plot_history(history: np.ndarray):
    from matplotlib.figure import Figure

    from emnet.mixture.plots.common import plot_history

    fig = Figure(figsize=(6.4, 3.6))
    plot_history(history, ax=fig.add_subplot(), title="EM log-likelihood (never decreases)")
    fig.tight_layout()
    return fig


def _plot_trace(trace: Trace):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.8))
    ax1, ax2 = fig.subplots(1, 2)
    t = np.arange(trace.loglik.size)
    ax1.plot(t, trace.loglik, marker="o", ms=2.5, label="L(θₜ)  log-likelihood", color="tab:blue")
    ax1.plot(t, trace.q, marker="s", ms=2.5, label="Q(θₜ₊₁ | θₜ)  eq. 7", color="tab:orange")
    if t.size > 2:
        # the random start sits far below; zoom on the climb and say where it is
        rest = np.concatenate([trace.loglik[1:], trace.q])
        span = float(rest.max() - rest.min()) or 1.0
        bottom = float(rest.min()) - 0.1 * span
        if trace.loglik[0] < bottom:
            ax1.set_ylim(bottom, float(rest.max()) + 0.1 * span)
            ax1.annotate(
                f"L(θ₀) = {trace.loglik[0]:.2f} (below the axis)",
                xy=(0, bottom),
                xytext=(0.25 * t[-1], bottom + 0.35 * span),
                arrowprops={"arrowstyle": "->", "color": "tab:blue"},
                fontsize=8,
            )
    ax1.set_xlabel("iteration t")
    ax1.set_ylabel("nats per sample")
    ax1.set_title("log-likelihood and Q")
    ax1.grid(alpha=0.3)
    ax1.legend()
    gain = np.diff(trace.loglik)
    ax2.semilogy(t[1:], np.maximum(gain, 1e-16), marker="o", ms=2.5, label="L(θₜ₊₁) − L(θₜ)")
    ax2.plot(t, trace.entropy, marker="s", ms=2.5, label="H(ηₜ) = L − Q(θₜ|θₜ)")
    ax2.set_xlabel("iteration t")
    ax2.set_ylabel("nats per sample")
    ax2.set_title("improvement per step and entropy term")
    ax2.grid(alpha=0.3, which="both")
    ax2.legend()
    fig.tight_layout()
    return fig
