"""Errata: each place where the write-up's algebra or answer is wrong (SPEC "Errata"),
with the corrected statement and a check computed in this run that shows it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from emnet.report._threads import single_threaded_blas
from emnet.report.em_trace import initial_parameters
from emnet.report.html import Markup, check, checks, esc, fmt, guarded, join, table, tag

if TYPE_CHECKING:
    from emnet.report.context import Context

#: Seed of the mixture parameters the EM errata are checked at.
SEED = 0


def build(ctx: Context) -> str:
    with single_threaded_blas():  # tiny matrices: see emnet.report._threads
        return _build(ctx)


def _build(ctx: Context) -> str:
    import functools

    from emnet.data import binarized_digits

    X, _ = binarized_digits()
    res = ctx.results.setdefault("errata", {})

    @functools.cache
    def params() -> tuple[np.ndarray, np.ndarray]:
        return _mixture_parameters(X, ctx)

    return join(
        [
            guarded("The eq. 6 check", lambda: _eq6_denominator(X, *params(), res)),
            guarded("The eq. 5 → 6 check", lambda: _eq5_numerator(X, *params(), res)),
            guarded("The eq. 12–14 check", lambda: _eq14_index(X, *params(), res)),
            guarded("The 2(g) check", lambda: _lenet_2g(res)),
            guarded("The 2(h) check", lambda: _lenet_2h(res)),
            guarded("The eq. 23 errata of emnet.deepnet", lambda: _deepnet_errata(res)),
        ]
    )


def _deepnet_errata(res: dict) -> Markup:
    """Further errata the deep-net system found and checked with sympy (eq. 23)."""
    from emnet.deepnet import errata

    found = errata()
    res["deepnet"] = [e._asdict() for e in found]
    parts = [
        tag("h3", "Also found by emnet.deepnet: eq. 23"),
        Markup(
            "<p>Beyond the list in the specification, the deep-net system checks every "
            "intermediate step of 2(e)–(f) symbolically. eq. 24, the final answer, is right "
            "(see §2); the step before it is not:</p>"
        ),
    ]
    for e in found:
        parts.append(
            _erratum(
                e.where,
                e.writeup,
                e.correct,
                Markup(f"<p><strong>Evidence:</strong> {esc(e.evidence)}</p>"),
                None,
            )
        )
    return join(parts)


def _mixture_parameters(X: np.ndarray, ctx: Context) -> tuple[np.ndarray, np.ndarray]:
    """K = 10 parameters after a few EM iterations from random rows (pure functions)."""
    from emnet.mixture.kernels.bernoulli_math import e_step, m_step

    ctx.seeds["Errata: EM parameters (random rows)"] = SEED
    weights, means = initial_parameters(X, 10, SEED)
    for _ in range(10):
        log_resp, _ = e_step(X, weights, means)
        weights, means = m_step(X, np.exp(log_resp))
    return np.asarray(weights, dtype=float), np.asarray(means, dtype=float)


def _erratum(title: str, wrong: str, right: str, body: Markup, ok: bool | None) -> Markup:
    """One erratum: the write-up's statement, the correction, and the evidence. ``ok``:
    whether this run's checks confirm the correction (None: the evidence is a computed
    value shown as is)."""
    if ok is None:
        badge = '<span class="badge ok">computed</span>'
    elif ok:
        badge = '<span class="badge ok">verified</span>'
    else:
        badge = '<span class="badge fail">check failed</span>'
    return Markup(
        f'<div class="erratum"><h3>{esc(title)} {badge}</h3>'
        f'<p class="wrong"><strong>Write-up:</strong> {esc(wrong)}</p>'
        f'<p class="right"><strong>Corrected:</strong> {esc(right)}</p>{body}</div>'
    )


def _log_joint(X: np.ndarray, weights: np.ndarray, means: np.ndarray) -> np.ndarray:
    """log π_k + log P(x⁽ⁱ⁾ | p⁽ᵏ⁾), n × K, from emnet.mixture.kernels.bernoulli_math.log_bernoulli."""
    from emnet.mixture.kernels.bernoulli_math import log_bernoulli

    return np.log(weights)[None, :] + np.asarray(log_bernoulli(X, means), dtype=float)


def _eq6_denominator(X: np.ndarray, weights: np.ndarray, means: np.ndarray, res: dict) -> Markup:
    from scipy.special import logsumexp

    from emnet.mixture.kernels.bernoulli_math import e_step

    log_joint = _log_joint(X, weights, means)
    # The write-up's eq. 6: the denominator sums over samples j = 1..n.
    wrong = np.exp(log_joint - logsumexp(log_joint, axis=0, keepdims=True))
    wrong_rows = wrong.sum(axis=1)
    log_resp, _ = e_step(X, weights, means)
    right_rows = np.exp(np.asarray(log_resp, dtype=float)).sum(axis=1)
    right_err = float(np.max(np.abs(right_rows - 1.0)))
    wrong_err = float(np.max(np.abs(wrong_rows - 1.0)))
    col_err = float(np.max(np.abs(wrong.sum(axis=0) - 1.0)))
    # Read literally, eq. 6's denominator does not depend on j (x carries no index j):
    # it is n times the numerator, so every η is 1/n.
    n, k = log_joint.shape
    literal = np.exp(log_joint - (np.log(n) + log_joint))
    literal_rows = literal.sum(axis=1)
    literal_err = float(np.max(np.abs(literal_rows - 1.0)))
    ok = right_err < 1e-12 and wrong_err > 0.5 and literal_err > 0.5
    res["eq6"] = {
        "writeup_row_sum_min": float(wrong_rows.min()),
        "writeup_row_sum_max": float(wrong_rows.max()),
        "writeup_column_sum_max_error": col_err,
        "corrected_row_sum_max_error": right_err,
        "literal_row_sum": float(literal_rows.max()),
    }
    body = join(
        [
            table(
                ["responsibilities η", "Σₖ ηᵢₖ, smallest", "Σₖ ηᵢₖ, largest", "max |Σₖ ηᵢₖ − 1|"],
                [
                    (
                        "write-up: denominator Σⱼ₌₁ⁿ (over samples)",
                        float(wrong_rows.min()),
                        float(wrong_rows.max()),
                        wrong_err,
                    ),
                    (
                        "write-up read literally: x without index j, so η = 1/n",
                        float(literal_rows.min()),
                        float(literal_rows.max()),
                        literal_err,
                    ),
                    (
                        "corrected: denominator Σₖ̂₌₁ᴷ (emnet.mixture.kernels.bernoulli_math.e_step)",
                        float(right_rows.min()),
                        float(right_rows.max()),
                        right_err,
                    ),
                ],
                caption=f"On all {X.shape[0]:,} digits with K = {weights.size} fitted parameters",
                class_="data compact",
            ),
            checks(
                [
                    check(
                        right_err < 1e-12,
                        "Corrected responsibilities are a distribution over "
                        f"components for every sample (error {fmt(right_err)}).",
                    ),
                    check(
                        wrong_err > 0.5 and literal_err > 0.5,
                        "The write-up's do not sum to 1 over k: with x⁽ʲ⁾ in the denominator "
                        f"they sum to 1 over the samples instead (column error {fmt(col_err)}); "
                        f"read literally every η is 1/n and Σₖ η = K/n = {fmt(k / n, 4)}.",
                    ),
                ]
            ),
        ]
    )
    return _erratum(
        "eq. 6: the denominator of the responsibility",
        "η(z⁽ⁱ⁾ₖ) = πₖ Πd (p⁽ᵏ⁾d)^xd (1 − p⁽ᵏ⁾d)^(1−xd) / Σⱼ₌₁ⁿ πₖ Πd (p⁽ᵏ⁾d)^xd (1 − p⁽ᵏ⁾d)^(1−xd) — "
        "a sum over samples j.",
        "η(z⁽ⁱ⁾ₖ) = πₖ P(x⁽ⁱ⁾ | p⁽ᵏ⁾) / Σₖ̂₌₁ᴷ πₖ̂ P(x⁽ⁱ⁾ | p⁽ᵏ̂⁾) — a sum over components.",
        body,
        ok,
    )


def _eq5_numerator(X: np.ndarray, weights: np.ndarray, means: np.ndarray, res: dict) -> Markup:
    from scipy.special import logsumexp

    from emnet.mixture.kernels.bernoulli_math import e_step

    log_joint = _log_joint(X, weights, means)
    log_px = logsumexp(log_joint, axis=1)
    i = 0
    gaps = log_px[i] - log_joint[i]
    # the claim, pair by pair: πₖ P(x⁽ⁱ⁾ | p⁽ᵏ⁾) = P(x⁽ⁱ⁾ | π, p) (within 1e-9 in log space)
    holds = np.isclose(log_joint, log_px[:, None], rtol=0.0, atol=1e-9)
    n_pairs, n_holds = holds.size, int(holds.sum())
    # Σₖ πₖ P(x | p⁽ᵏ⁾) from log_bernoulli against the mixture likelihood of e_step
    _, log_prob = e_step(X, weights, means)
    sum_err = float(np.max(np.abs(log_px - np.asarray(log_prob, dtype=float))))
    ok = n_holds < n_pairs and sum_err < 1e-9
    res["eq5"] = {
        "sample": i,
        "log_pi_k_P_x_given_pk": log_joint[i].tolist(),
        "log_P_x": float(log_px[i]),
        "pairs_where_claim_holds": n_holds,
        "pairs": n_pairs,
        "sum_over_k_max_abs_error": sum_err,
    }
    rows = [
        (k, float(log_joint[i, k]), float(log_px[i]), float(gaps[k])) for k in range(weights.size)
    ]
    body = join(
        [
            table(
                ["k", "log πₖ P(x | p⁽ᵏ⁾)", "log P(x | π, p)", "difference"],
                rows,
                caption=f"Sample i = {i} (a digit {int(_label(i))})",
                class_="data compact",
            ),
            checks(
                [
                    check(
                        n_holds < n_pairs,
                        f"πₖ P(x⁽ⁱ⁾ | p⁽ᵏ⁾) = P(x⁽ⁱ⁾ | π, p) fails for {n_pairs - n_holds:,} of the "
                        f"{n_pairs:,} pairs (i, k); it holds only where one component carries "
                        "all of a sample's probability.",
                    ),
                    check(
                        sum_err < 1e-9,
                        "Σₖ πₖ P(x⁽ⁱ⁾ | p⁽ᵏ⁾) equals the mixture likelihood P(x⁽ⁱ⁾ | π, p) of "
                        f"emnet.mixture.kernels.bernoulli_math.e_step on every sample (largest difference {fmt(sum_err)} "
                        "in log space).",
                    ),
                ]
            ),
        ]
    )
    return _erratum(
        "eq. 5 → 6: the numerator",
        "P(z⁽ⁱ⁾ₖ = 1 | π, p) P(x⁽ⁱ⁾ | z⁽ⁱ⁾ₖ = 1, p, π) = P(x⁽ⁱ⁾ | π, p).",
        "P(z⁽ⁱ⁾ₖ = 1 | π) P(x⁽ⁱ⁾ | z⁽ⁱ⁾ₖ = 1, p) = πₖ P(x⁽ⁱ⁾ | p⁽ᵏ⁾): one term of the mixture; "
        "summed over k it gives P(x⁽ⁱ⁾ | π, p).",
        body,
        ok,
    )


def _label(i: int) -> int:
    from emnet.data import binarized_digits

    return int(binarized_digits()[1][i])


def _eq14_index(X: np.ndarray, weights: np.ndarray, means: np.ndarray, res: dict) -> Markup:
    from emnet.mixture.kernels.bernoulli_math import MEAN_CLAMP, e_step, m_step

    log_resp, _ = e_step(X, weights, means)
    resp = np.exp(np.asarray(log_resp, dtype=float))
    new_weights, new_means = m_step(X, resp)
    new_means = np.asarray(new_means, dtype=float)
    n_k = resp.sum(axis=0)
    # eq. 14, with emnet's documented clamp of the means into [1e-10, 1 − 1e-10]
    by_hand = np.clip((resp.T @ X.astype(float)) / n_k[:, None], MEAN_CLAMP, 1 - MEAN_CLAMP)
    diff = float(np.max(np.abs(new_means - by_hand)))
    w_diff = float(np.max(np.abs(np.asarray(new_weights) - n_k / X.shape[0])))
    ok = new_means.shape == (weights.size, X.shape[1]) and diff < 1e-10 and w_diff < 1e-12
    res["eq14"] = {
        "m_step_means_shape": list(new_means.shape),
        "max_abs_diff_vs_by_hand": diff,
        "weights_max_abs_diff": w_diff,
    }
    body = checks(
        [
            check(
                new_means.shape == (weights.size, X.shape[1]),
                f"m_step returns one mean vector per component: shape {new_means.shape} "
                f"(K × D), not one per sample ({X.shape[0]:,} × {X.shape[1]}).",
            ),
            check(
                diff < 1e-10,
                f"p̂⁽ᵏ⁾ = Σᵢ ηᵢₖ x⁽ⁱ⁾ / Nₖ computed by hand matches m_step to {fmt(diff)}.",
            ),
            check(w_diff < 1e-12, f"π̂ₖ = Nₖ / n (eq. 19) matches m_step to {fmt(w_diff)}."),
        ]
    )
    return _erratum(
        "eq. 12–14: p̂⁽ᵏ⁾, not p⁽ⁱ⁾",
        "Σᵢ η(z⁽ⁱ⁾ₖ)(−p⁽ⁱ⁾ + x⁽ⁱ⁾) = 0 ⇒ p⁽ⁱ⁾ = Σᵢ η(z⁽ⁱ⁾ₖ) x⁽ⁱ⁾ / Σᵢ η(z⁽ⁱ⁾ₖ).",
        "Σᵢ η(z⁽ⁱ⁾ₖ)(x⁽ⁱ⁾ − p̂⁽ᵏ⁾) = 0 ⇒ p̂⁽ᵏ⁾ = Σᵢ η(z⁽ⁱ⁾ₖ) x⁽ⁱ⁾ / Nₖ: one mean per component k "
        "(i is the summation index and cannot appear on the left).",
        body,
        ok,
    )


def _torch_conv_size(size: int, kernel: int, stride: int, padding: int) -> int:
    import torch

    conv = torch.nn.Conv2d(1, 1, kernel, stride=stride, padding=padding, bias=False)
    with torch.no_grad():
        return int(conv(torch.zeros(1, 1, size, size)).shape[-1])


def _lenet_2g(res: dict) -> Markup:
    from emnet.shapes import conv_out

    cases = [
        ("write-up's layer", 5, 1, 0),
        ("even kernel", 4, 1, 0),
        ("stride 2", 5, 2, 0),
        ("padding 2 ('same')", 5, 1, 2),
        ("kernel 3", 3, 1, 0),
    ]
    rows: list[tuple[Any, ...]] = []
    ok = True
    for label, k, s, pad in cases:
        formula = 28 - 2 * (k // 2)
        ours = conv_out(28, k, stride=s, padding=pad)
        torch_size = _torch_conv_size(28, k, s, pad)
        ok &= ours == torch_size
        rows.append(
            (
                label,
                k,
                s,
                pad,
                28 - (k - 1) if (s, pad) == (1, 0) else "—",
                formula,
                ours,
                torch_size,
                "yes" if formula == ours else "no",
            )
        )
    breaks = [r for r in rows if r[-1] == "no"]
    ok &= rows[0][6] == 24 and len(breaks) >= 3
    res["2g"] = [
        {
            "case": r[0],
            "kernel": r[1],
            "stride": r[2],
            "padding": r[3],
            "writeup": r[5],
            "conv_out": r[6],
            "torch": r[7],
        }
        for r in rows
    ]
    body = join(
        [
            table(
                [
                    "case (28×28 input)",
                    "kernel",
                    "stride",
                    "padding",
                    "28 − (k − 1)",
                    "write-up 28 − 2·⌊k/2⌋",
                    "conv_out",
                    "torch Conv2d",
                    "write-up right?",
                ],
                rows,
                class_="data compact",
            ),
            checks(
                [
                    check(rows[0][6] == 24, "conv_out(28, 5) = 24, the write-up's 24×24 answer."),
                    check(
                        len(breaks) >= 3,
                        f"'28 − 2·2' breaks in {len(breaks)} of the "
                        f"{len(rows)} cases: {', '.join(r[0] for r in breaks)}.",
                    ),
                    check(
                        all(r[6] == r[7] for r in rows),
                        "emnet.shapes.conv_out equals torch.nn.Conv2d's output size in every case.",
                    ),
                ]
            ),
        ]
    )
    return _erratum(
        "2(g): the output size of a convolution",
        "New image size after convolution: (28 − 2·2) × (28 − 2·2) = 24 × 24.",
        "out = ⌊(28 + 2·pad − dil·(k − 1) − 1)/stride⌋ + 1 = 28 − (5 − 1) = 24 here; "
        "“28 − 2·2” holds only for odd kernels at stride 1 without padding.",
        body,
        ok,
    )


def _lenet_2h(res: dict) -> Markup:
    import torch

    from emnet.shapes import trace

    layers = trace((20, 12, 12), "conv50k5")[1:]
    params = int(layers[0].params)
    shape = tuple(int(v) for v in layers[0].out_shape)
    torch_params = sum(p.numel() for p in torch.nn.Conv2d(20, 50, 5).parameters())
    wrong = trace((20, 12, 12), "conv3k5")[1:]
    wrong_shape = tuple(int(v) for v in wrong[0].out_shape)
    ok = params == 25_050 == torch_params and shape == (50, 8, 8) and wrong_shape[0] != 50
    res["2h"] = {
        "params": params,
        "torch_params": int(torch_params),
        "out_shape": list(shape),
        "three_filters_out_shape": list(wrong_shape),
        "three_filters_params": int(wrong[0].params),
    }
    body = join(
        [
            table(
                ["second conv on 20×12×12", "output shape", "parameters"],
                [
                    ("50 filters, each 5×5×20", "×".join(map(str, shape)), params),
                    (
                        "write-up: 3 filters (“2.5 ≈ 3”)",
                        "×".join(map(str, wrong_shape)),
                        int(wrong[0].params),
                    ),
                ],
                class_="data compact",
            ),
            checks(
                [
                    check(
                        params == 25_050,
                        f"50·(5·5·20) + 50 biases = {params:,} parameters (emnet.shapes.trace).",
                    ),
                    check(
                        params == torch_params,
                        f"torch.nn.Conv2d(20, 50, 5) has {int(torch_params):,} parameters.",
                    ),
                    check(
                        wrong_shape[0] != 50,
                        f"3 filters give {wrong_shape[0]} output channels, "
                        "not 50: each filter makes one channel.",
                    ),
                ]
            ),
        ]
    )
    return _erratum(
        "2(h): how many filters",
        "“We need 2.5 ≈ 3 filters” to go from 20 to 50 channels.",
        "The layer needs 50 filters, each of size 5×5×20 (one filter spans all 20 input "
        "channels and makes one output channel): 25,050 parameters.",
        body,
        ok,
    )
