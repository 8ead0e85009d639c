"""§2 of the report: the write-up's network f(x) = w₃σ(w₂σ(w₁x)) and the LeNet shapes.

The computation graph as a picture, the forward values and backward adjoints node by node,
the three gradients by every method side by side, σ and σ' plotted (eq. 20 and 21), the
sigmoid evaluations of a cached backward pass, and the shape table of 2(g)–(h).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from emnet.report.html import (
    Markup,
    check,
    checks,
    code,
    figure,
    fmt,
    guarded,
    join,
    p,
    table,
    tag,
)

if TYPE_CHECKING:
    from emnet.report.context import Context

#: The point at which the network is evaluated (the same as ``emnet grad``'s example).
POINT = {"x": 1.5, "w1": 0.3, "w2": -1.2, "w3": 2.0}

#: The course's LeNet on 28×28 MNIST (write-up 2(g)–(h)), in ``emnet shapes`` syntax.
LENET = "1x28x28 conv20k5 pool2 conv50k5 pool2 flatten fc500 fc10"

GRADIENT_TOL = 1e-6


def build(ctx: Context) -> str:
    ctx.devices["§2 deep net"] = "CPU (numpy autodiff; torch.autograd as a reference)"
    res = ctx.results.setdefault("deepnet", {"point": dict(POINT)})
    parts: list[str] = [
        p(
            "Evaluated at "
            + ", ".join(f"{k} = {v}" for k, v in POINT.items())
            + ". With a = w₁x, h₁ = σ(a), b = w₂h₁, h₂ = σ(b), f = w₃h₂."
        )
    ]
    parts += [
        guarded("The computation graph", lambda: _graph_part(ctx)),
        guarded("The forward/backward table", lambda: _forward_backward_part(ctx, res)),
        guarded("The gradients by method", lambda: _gradients_part(ctx, res)),
        guarded("The symbolic checks", lambda: _sympy_part(res)),
        guarded("σ and σ′", lambda: _sigmoid_part(ctx, res)),
        guarded("The second derivatives", lambda: _curvature_part(ctx, res)),
        guarded("Training with the engine", lambda: _training_part(ctx, res)),
        guarded("The LeNet shapes", lambda: _shapes_part(ctx, res)),
    ]
    return join(parts)


def _graph_part(ctx: Context) -> Markup:
    from emnet.autodiff import render
    from emnet.deepnet import graph

    out = graph(**POINT, run_backward=True)
    src = "figures/deepnet_graph.svg"
    render(out, ctx.path(src))
    return join(
        [
            tag("h3", "Computation graph"),
            figure(
                src,
                "computation graph of f(x) = w3 sigma(w2 sigma(w1 x))",
                "The graph emnet.autodiff builds for f, drawn by emnet.autodiff.render "
                "(Graphviz) after backward(): each node shows its value and its gradient.",
                width=1000,
            ),
        ]
    )


#: Node names of emnet.deepnet (and of the autodiff graph) → how the write-up writes them.
NODE_LABELS = {
    "f": "f = w₃·h₂",
    "h2": "h₂ = σ(b)",
    "w3": "w₃",
    "b": "b = w₂·h₁",
    "h1": "h₁ = σ(a)",
    "w2": "w₂",
    "a": "a = w₁·x",
    "w1": "w₁",
    "x": "x",
}


def forward_backward_rows(x: float, w1: float, w2: float, w3: float) -> list[dict[str, Any]]:
    """Every node of f: its forward value (emnet.deepnet.forward's cache), the local rule
    and adjoint ∂f/∂node of the reverse sweep (emnet.deepnet.adjoints), and the gradient
    emnet.autodiff's backward() left on the same node of the graph."""
    from emnet.autodiff import graph_nodes
    from emnet.deepnet import adjoints, forward, graph

    cache = forward(x, w1, w2, w3)
    values = {"x": x, "w1": w1, "w2": w2, "w3": w3}
    values.update({k: float(getattr(cache, k)) for k in ("a", "h1", "b", "h2", "f")})
    engine = {
        node.name: float(np.asarray(node.grad))
        for node in graph_nodes(graph(x, w1, w2, w3, run_backward=True))
        if node.name and node.grad is not None
    }
    return [
        {
            "node": adj.node,
            "label": NODE_LABELS.get(adj.node, adj.node),
            "value": float(values[adj.node]),
            "rule": adj.rule,
            "adjoint": float(adj.value),
            "engine": engine.get(adj.node, float("nan")),
        }
        for adj in adjoints(cache)
    ]


def _forward_backward_part(ctx: Context, res: dict[str, Any]) -> Markup:
    rows = forward_backward_rows(**POINT)
    res["forward_backward"] = rows
    diff = max(abs(r["adjoint"] - r["engine"]) for r in rows)
    ctx.write_csv(
        "deepnet_forward_backward.csv",
        ["node", "value", "rule", "adjoint", "autodiff_grad"],
        [(r["node"], r["value"], r["rule"], r["adjoint"], r["engine"]) for r in rows],
    )
    return join(
        [
            tag("h3", "Forward and backward pass, node by node"),
            p(
                "Forward: values from input to output, cached. Backward (reverse mode): each "
                "node's adjoint ∂f/∂node (written with a bar) is the adjoint of the node it "
                "feeds times one local derivative, from output to input, reusing the cache."
            ),
            table(
                [
                    "node",
                    "forward value",
                    "backward rule",
                    "adjoint ∂f/∂node",
                    "emnet.autodiff .grad",
                ],
                [(r["label"], r["value"], r["rule"], r["adjoint"], r["engine"]) for r in rows],
                class_="data compact",
            ),
            checks(
                [
                    check(
                        diff < 1e-12,
                        f"The hand-written reverse sweep and the autodiff engine's backward() "
                        f"agree on every node (largest difference {fmt(diff)}).",
                    )
                ]
            ),
        ]
    )


def _gradients_part(ctx: Context, res: dict[str, Any]) -> Markup:
    from emnet.deepnet import gradients_by_method

    by_method = {k: tuple(float(g) for g in v) for k, v in gradients_by_method(**POINT).items()}
    reference_key = "closed form"
    ref = np.array(by_method[reference_key])
    rows = []
    worst_exact, worst_fd = 0.0, 0.0
    for method, grads in by_method.items():
        diff = float(np.max(np.abs(np.array(grads) - ref)))
        if method == "finite differences":
            worst_fd = max(worst_fd, diff)
        else:
            worst_exact = max(worst_exact, diff)
        rows.append((method, *grads, diff))
    res["gradients"] = {k: list(v) for k, v in by_method.items()}
    res["gradients_max_abs_diff_exact"] = worst_exact
    res["gradients_max_abs_diff_finite_differences"] = worst_fd
    fb = {r["node"]: r["adjoint"] for r in forward_backward_rows(**POINT)}
    table_adjoints = np.array([fb["w1"], fb["w2"], fb["w3"]])
    adj_diff = float(np.max(np.abs(table_adjoints - ref)))
    ctx.write_csv(
        "deepnet_gradients.csv",
        ["method", "df_dw1", "df_dw2", "df_dw3", "max_abs_diff_vs_closed_form"],
        rows,
    )
    return join(
        [
            tag("h3", "The three gradients, every method side by side"),
            table(
                [
                    "method",
                    "∂f/∂w₁ (eq. 24)",
                    "∂f/∂w₂ (eq. 22)",
                    "∂f/∂w₃ (d)",
                    "max |Δ| vs closed form",
                ],
                rows,
                class_="data compact",
            ),
            checks(
                [
                    check(
                        worst_exact < 1e-12,
                        "Backprop, torch.autograd and sympy agree with the closed forms to "
                        f"{fmt(worst_exact)} (rounding only).",
                    ),
                    check(
                        worst_fd < GRADIENT_TOL,
                        f"Central finite differences agree to {fmt(worst_fd)} (tolerance "
                        f"{fmt(GRADIENT_TOL)}: truncation and rounding error of the difference "
                        "quotient).",
                    ),
                    check(
                        adj_diff < 1e-12,
                        f"The adjoints of w₁, w₂, w₃ in the node table equal the closed forms "
                        f"(largest difference {fmt(adj_diff)}).",
                    ),
                ]
            ),
        ]
    )


def _sigmoid_part(ctx: Context, res: dict[str, Any]) -> Markup:
    from emnet import deepnet

    u = np.linspace(-8.0, 8.0, 801)
    s = np.asarray(deepnet.sigmoid(u), dtype=float)
    eq21 = s * (1.0 - s)
    eq20 = np.exp(-u) / (1.0 + np.exp(-u)) ** 2
    h = 1e-5
    central = (np.asarray(deepnet.sigmoid(u + h)) - np.asarray(deepnet.sigmoid(u - h))) / (2 * h)
    d_20_21 = float(np.max(np.abs(eq20 - eq21)))
    d_fd = float(np.max(np.abs(central - eq21)))
    counts = _sigmoid_counts()
    res["sigmoid"] = {
        "max_abs_eq20_minus_eq21": d_20_21,
        "max_abs_central_difference_minus_eq21": d_fd,
        "evaluations": counts,
    }
    src = ctx.savefig(_plot_sigmoid(u, s, eq21, eq20), "deepnet_sigmoid.png")
    items = [
        check(
            d_20_21 < 1e-12,
            f"eq. 20 e⁻ᵘ/(1 + e⁻ᵘ)² equals eq. 21 σ(u)(1 − σ(u)) on [−8, 8]: largest "
            f"difference {fmt(d_20_21)}.",
        ),
        check(
            d_fd < 1e-8,
            f"Central differences of σ (h = 10⁻⁵) match σ(1 − σ) to {fmt(d_fd)}.",
        ),
    ]
    parts = [tag("h3", "σ and σ′")]
    parts.append(
        figure(src, "sigmoid and its derivative", "σ(u) and σ′(u) by eq. 20 and eq. 21.", 640)
    )
    parts.append(checks(items))
    parts.append(
        table(
            ["how the three gradients are computed", "σ evaluations"],
            list(counts.items()),
            caption="Sigmoid evaluations, counted by emnet.deepnet: the cached backward pass "
            "reuses the forward pass's σ values",
            class_="data compact",
        )
    )
    return join(parts)


#: The curvature of f in each weight, in the write-up's notation (σ′′ = σ′(1 − 2σ)).
CURVATURE_FORMULAS = {
    "w1": "w₃[σ′′(b)(w₂σ′(a)x)² + σ′(b)w₂σ′′(a)x²]",
    "w2": "w₃σ′′(b)h₁²",
    "w3": "0 (f is linear in w₃)",
}


def curvature_rows(x: float, w1: float, w2: float, w3: float) -> list[dict[str, Any]]:
    """∂f/∂wᵢ and ∂²f/∂wᵢ² by the engine: one backward(create_graph=True) pass leaves
    each ∂f/∂wᵢ as a Tensor in a graph, a second pass differentiates it in wᵢ; the
    same by sympy; and the full 3×3 Hessian both ways."""
    import sympy

    from emnet.autodiff import Tensor, gradients, hessian

    weights = [Tensor(v, requires_grad=True, name=f"w{i + 1}") for i, v in enumerate((w1, w2, w3))]
    f = weights[2] * (weights[1] * (weights[0] * x).sigmoid()).sigmoid()
    f.backward(create_graph=True)
    firsts = [w.grad for w in weights]
    seconds = [float(gradients(g, [w])[0]) for g, w in zip(firsts, weights)]

    def f_of(w: Any) -> Any:
        return w[2] * (w[1] * (w[0] * x).sigmoid()).sigmoid()

    engine_hessian = hessian(f_of, np.array([w1, w2, w3]))
    xs, *ws = sympy.symbols("x w1 w2 w3")
    sig = lambda u: 1 / (1 + sympy.exp(-u))  # noqa: E731
    expr = ws[2] * sig(ws[1] * sig(ws[0] * xs))
    at = {xs: x, ws[0]: w1, ws[1]: w2, ws[2]: w3}
    sym_hessian = np.array(
        [[float(sympy.diff(expr, a, b).evalf(30, subs=at)) for b in ws] for a in ws]
    )
    sig_n = lambda u: 1.0 / (1.0 + np.exp(-u))  # noqa: E731
    a = w1 * x
    h1 = sig_n(a)
    b = w2 * h1
    d1 = lambda u: sig_n(u) * (1 - sig_n(u))  # noqa: E731
    d2 = lambda u: d1(u) * (1 - 2 * sig_n(u))  # noqa: E731
    closed = [
        w3 * (d2(b) * (w2 * d1(a) * x) ** 2 + d1(b) * w2 * d2(a) * x**2),
        w3 * d2(b) * h1**2,
        0.0,
    ]
    rows = []
    for i, name in enumerate(("w1", "w2", "w3")):
        rows.append(
            {
                "weight": name,
                "first": float(np.asarray(firsts[i].data)),
                "engine": seconds[i],
                "sympy": float(sym_hessian[i, i]),
                "closed_form": float(closed[i]),
                "formula": CURVATURE_FORMULAS[name],
            }
        )
    return rows + [
        {
            "hessian_engine": engine_hessian.tolist(),
            "hessian_sympy": sym_hessian.tolist(),
        }
    ]


def _curvature_part(ctx: Context, res: dict[str, Any]) -> Markup:
    *rows, full = curvature_rows(**POINT)
    diffs = [abs(r["engine"] - r["sympy"]) for r in rows]
    closed_diff = max(abs(r["closed_form"] - r["sympy"]) for r in rows)
    hess_diff = float(
        np.max(np.abs(np.array(full["hessian_engine"]) - np.array(full["hessian_sympy"])))
    )
    res["curvature"] = {"rows": rows, **full, "max_abs_diff_hessian": hess_diff}
    ctx.write_csv(
        "deepnet_curvature.csv",
        ["weight", "df_dw", "d2f_dw2_engine", "d2f_dw2_sympy", "abs_diff"],
        [(r["weight"], r["first"], r["engine"], r["sympy"], d) for r, d in zip(rows, diffs)],
    )
    label = {"w1": "w₁", "w2": "w₂", "w3": "w₃"}
    return join(
        [
            tag("h3", "Second derivatives: the curvature of f in each weight"),
            p(
                "backward(create_graph=True) records the backward pass itself as Tensor ops, "
                "so each ∂f/∂wᵢ is a node of a new graph; differentiating it again gives "
                "∂²f/∂wᵢ². sympy differentiates f symbolically twice (30 digits)."
            ),
            table(
                [
                    "weight",
                    "∂f/∂wᵢ",
                    "∂²f/∂wᵢ² (engine, create_graph)",
                    "∂²f/∂wᵢ² (sympy)",
                    "|Δ|",
                    "closed form",
                ],
                [
                    (label[r["weight"]], r["first"], r["engine"], r["sympy"], d, r["formula"])
                    for r, d in zip(rows, diffs)
                ],
                class_="data compact",
            ),
            checks(
                [
                    check(
                        max(diffs) < 1e-12,
                        f"The engine's second derivatives equal sympy's to {fmt(max(diffs))}.",
                    ),
                    check(
                        closed_diff < 1e-12,
                        "The closed forms in the last column agree with sympy to "
                        f"{fmt(closed_diff)} (σ′ = σ(1 − σ), σ′′ = σ′(1 − 2σ)).",
                    ),
                    check(
                        hess_diff < 1e-12,
                        "The full 3×3 Hessian by emnet.autodiff.hessian (Hessian-vector "
                        f"products) equals sympy's to {fmt(hess_diff)}.",
                    ),
                    check(
                        rows[2]["engine"] == 0.0,
                        "∂²f/∂w₃² is exactly 0: f is linear in w₃.",
                    ),
                ]
            ),
        ]
    )


def _training_part(ctx: Context, res: dict[str, Any]) -> Markup:
    from emnet.autodiff import demo

    moons = demo.train_moons(steps=200)
    moons_src = ctx.savefig(demo.plot_moons(moons), "autodiff_moons.png")
    epochs = 4 if ctx.quick else 8
    curves = demo.train_cnn(epochs=epochs)
    cnn_src = ctx.savefig(demo.plot_cnn_curves(curves), "autodiff_cnn_vs_torch.png")
    diff = curves.max_abs_difference
    res["training"] = {
        "moons_accuracy": moons.accuracy,
        "moons_losses": moons.losses,
        "cnn_epochs": epochs,
        "cnn_losses": curves.losses,
        "cnn_torch_losses": curves.torch_losses,
        "cnn_test_accuracy": curves.test_accuracy,
        "cnn_torch_test_accuracy": curves.torch_test_accuracy,
        "cnn_max_abs_loss_difference": diff,
    }
    ctx.seeds["§2 two-moons demo (make_moons, MLP initialisation)"] = 1
    ctx.seeds["§2 digits CNN demo (initialisation, minibatches)"] = 0
    ctx.write_csv(
        "autodiff_cnn_losses.csv",
        ["step", "emnet_loss", "torch_loss"],
        [(k + 1, a, b) for k, (a, b) in enumerate(zip(curves.losses, curves.torch_losses or []))],
    )
    return join(
        [
            tag("h3", "Training networks with the engine"),
            p(
                Markup(
                    f"{code('emnet.autodiff.nn')} (modules, torch's initialisation) and "
                    f"{code('emnet.autodiff.optim')} (SGD, Adam) on the same engine. First, "
                    "micrograd's demo, an MLP 2 → 16 → 16 → 1 trained on scikit-learn's "
                    "make_moons with the hinge loss; then a LeNet-style CNN trained on the "
                    "8×8 digits with the engine and, from the same initial weights and "
                    "minibatches, with torch."
                )
            ),
            figure(
                moons_src,
                "decision boundary of an MLP trained on two moons",
                f"Decision boundary after {len(moons.losses)} full-batch SGD steps "
                f"(accuracy {moons.accuracy:.0%}) and the loss per step.",
                900,
            ),
            figure(
                cnn_src,
                "loss curves of the CNN trained by emnet.autodiff and by torch",
                f"{epochs} epochs of SGD with momentum on the 1,617 training digits: the two "
                f"loss curves coincide (largest difference {fmt(diff)}; test accuracy "
                f"{curves.test_accuracy:.1%} both).",
                720,
            ),
            checks(
                [
                    check(
                        moons.accuracy >= 0.95,
                        f"The MLP separates the two moons: training accuracy {moons.accuracy:.0%}.",
                    ),
                    check(
                        diff < 1e-9,
                        f"The engine's CNN losses equal torch's at every one of "
                        f"{len(curves.losses)} steps to {fmt(diff)}.",
                    ),
                    check(
                        curves.test_accuracy == curves.torch_test_accuracy
                        and curves.test_accuracy > 0.5,
                        f"Same test accuracy after training: {curves.test_accuracy:.1%} "
                        f"(torch {curves.torch_test_accuracy:.1%}).",
                    ),
                ]
            ),
        ]
    )


def _sigmoid_counts() -> dict[str, int]:
    """σ evaluations (counted by emnet.deepnet) for one set of the three gradients."""
    from emnet.deepnet import sigmoid_counts

    c = sigmoid_counts(**POINT)
    return {
        "forward pass (caches a, h₁, b, h₂)": c.forward,
        "backward pass from the cache": c.backward_cached,
        "backprop in total": c.cached_total,
        "∂f/∂w₁ by eq. 24 as written, from scratch": c.from_scratch_w1,
        "∂f/∂w₂ by eq. 22 as written, from scratch": c.from_scratch_w2,
        "∂f/∂w₃ by (d) as written, from scratch": c.from_scratch_w3,
        "closed forms from scratch in total": c.from_scratch_total,
    }


def _sympy_part(res: dict[str, Any]) -> Markup:
    from emnet.deepnet import sympy_identities

    identities = sympy_identities()
    res["sympy_identities"] = [{"claim": i.claim, "holds": bool(i.holds)} for i in identities]
    return join(
        [
            tag("h3", "The write-up's derivatives, checked symbolically"),
            checks(check(bool(i.holds), f"sympy: {i.claim}") for i in identities),
        ]
    )


def _shapes_part(ctx: Context, res: dict[str, Any]) -> Markup:
    from emnet.shapes import (
        LENET_SPEC,
        conv_out,
        format_shape,
        solve,
        total_macs,
        total_params,
        trace,
    )

    rows = trace(None, LENET_SPEC)
    table_rows = [
        (r.name, r.description, format_shape(r.out_shape), int(r.params), int(r.macs)) for r in rows
    ]
    res["lenet"] = [
        {"layer": n, "type": t, "out_shape": s, "params": pr, "macs": m}
        for n, t, s, pr, m in table_rows
    ]
    ctx.write_csv("lenet_shapes.csv", ["layer", "type", "out_shape", "params", "macs"], table_rows)
    kernel = int(solve(12, 8, stride=1, padding=0))
    res["lenet_solve_kernel"] = kernel
    first = conv_out(28, 5)
    shapes = [format_shape(r.out_shape) for r in rows[1:5]]
    expected = ["20×24×24", "20×12×12", "50×8×8", "50×4×4"]
    shapes_ok = [s.replace("x", "×") for s in shapes] == expected
    return join(
        [
            tag("h3", "LeNet shapes (write-up 2(g)–(h))"),
            p(Markup(f"{code(LENET_SPEC)} traced by emnet.shapes (PyTorch's formulas).")),
            table(
                ["layer", "type", "output shape", "parameters", "multiply-accumulates"],
                [*table_rows, ("total", "", "", total_params(rows), total_macs(rows))],
                class_="data compact",
            ),
            checks(
                [
                    check(first == 24, f"2(g): conv_out(28, kernel 5) = {first}, so 20×24×24."),
                    check(
                        shapes_ok,
                        "Conv and pool outputs: "
                        + ", ".join(shapes)
                        + " (write-up: "
                        + ", ".join(expected)
                        + ").",
                    ),
                    check(
                        kernel == 5,
                        f"2(h): solve(12 → 8, stride 1, padding 0) gives a {kernel}×{kernel} kernel.",
                    ),
                ]
            ),
        ]
    )


def _plot_sigmoid(u: np.ndarray, s: np.ndarray, eq21: np.ndarray, eq20: np.ndarray):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 3.6))
    ax = fig.add_subplot()
    ax.plot(u, s, color="tab:blue", lw=2, label="σ(u) = 1/(1 + e⁻ᵘ)")
    ax.plot(u, eq21, color="tab:orange", lw=2, label="σ′(u) = σ(u)(1 − σ(u))  (eq. 21)")
    ax.plot(u[::40], eq20[::40], "k.", ms=6, label="e⁻ᵘ/(1 + e⁻ᵘ)²  (eq. 20)")
    ax.set_xlabel("u")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=9)
    ax.set_title("the logistic sigmoid and its derivative")
    fig.tight_layout()
    return fig
