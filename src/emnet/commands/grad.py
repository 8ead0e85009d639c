"""`emnet grad`: forward and backward pass of the write-up's f(x) = w3·σ(w2·σ(w1·x)).

Prints the forward values and the adjoints node by node, the three gradients by every
method side by side, the sigmoid-evaluation counts, and draws the computation graph.
"""

from __future__ import annotations

import argparse
import math
import unicodedata

from emnet.commands._types import finite_float

EXAMPLE = {"x": 1.5, "w1": 0.3, "w2": -1.2, "w3": 2.0}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "grad",
        help="forward/backward pass of f(x) = w3·σ(w2·σ(w1·x)), gradients by five methods",
        description="Evaluate the write-up's network f(x) = w3·σ(w2·σ(w1·x)): forward values "
        "and adjoints node by node, ∂f/∂w1, ∂f/∂w2, ∂f/∂w3 by the closed forms (eq. 22, 24), "
        "emnet's backprop, finite differences, torch.autograd and sympy, the number of sigmoid "
        "evaluations with and without the forward cache, and a picture of the graph.",
        epilog="example: emnet grad --x 1.5 --w1 0.3 --w2 -1.2 --w3 2.0 --out figures",
    )
    for name, value in EXAMPLE.items():
        p.add_argument(f"--{name}", type=finite_float, default=value, help=f"(default {value})")
    p.add_argument(
        "--out",
        metavar="DIR",
        default=".",
        help="directory for the graph picture grad_graph.<format> (default: current directory)",
    )
    p.add_argument("--format", choices=("png", "svg"), default="png", help="picture format")
    p.add_argument("--no-picture", action="store_true", help="do not draw the graph")
    p.add_argument(
        "--force", action="store_true", help="replace an existing grad_graph.<format> in --out"
    )
    p.set_defaults(func=run)


def _num(value: float) -> str:
    return f"{value:.12g}"


def _width(text: str) -> int:
    """Display width: combining marks (the bar of f̄) take no column."""
    return sum(1 for ch in text if not unicodedata.combining(ch))


def _table(header: list[str], rows: list[list[str]], right: set[int]) -> str:
    widths = [max(_width(r[j]) for r in [header, *rows]) for j in range(len(header))]

    def pad(cell: str, j: int) -> str:
        fill = " " * (widths[j] - _width(cell))
        return fill + cell if j in right else cell + fill

    def fmt(row: list[str]) -> str:
        return "  ".join(pad(c, j) for j, c in enumerate(row)).rstrip()

    return "\n".join(
        ["  " + fmt(header), "  " + "  ".join("-" * w for w in widths)]
        + ["  " + fmt(r) for r in rows]
    )


def run(args: argparse.Namespace) -> int:
    import warnings

    import numpy as np

    # Near the ends of the float range a method may overflow: its result is shown as
    # ±inf or nan and named in a note below the table, never as a numpy warning.
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return _run(args)


def _deviation(values: tuple[float, ...], reference: tuple[float, ...]) -> str:
    worst = 0.0
    for g, r in zip(values, reference):
        if g == r:  # also inf == inf
            continue
        if not (math.isfinite(g) and math.isfinite(r)):
            return "n/a"
        worst = max(worst, abs(g - r))
    return f"{worst:.1e}"


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from emnet._io import check_writable_dir
    from emnet.deepnet import adjoints, forward, gradients_by_method, graph, sigmoid_counts

    x, w1, w2, w3 = args.x, args.w1, args.w2, args.w3
    out_dir = None if args.no_picture else check_writable_dir(args.out, "--out")
    if out_dir is not None:
        from emnet._io import check_new_files

        check_new_files([Path(out_dir) / f"grad_graph.{args.format}"], force=args.force)

    cache = forward(x, w1, w2, w3)
    print(f"f(x) = w3·σ(w2·σ(w1·x)) at x = {x:g}, w1 = {w1:g}, w2 = {w2:g}, w3 = {w3:g}\n")

    print("forward pass (each value cached for the backward pass)")
    fwd = [
        ["a", "w1·x", _num(cache.a)],
        ["h1", "σ(a)", _num(cache.h1)],
        ["b", "w2·h1", _num(cache.b)],
        ["h2", "σ(b)", _num(cache.h2)],
        ["f", "w3·h2", _num(cache.f)],
    ]
    print(_table(["node", "computes", "value"], fwd, {2}))

    print("\nbackward pass (adjoint ∂f/∂node, output to input; σ' = h(1 − h) from the cache)")
    bwd = [[a.node, a.rule, _num(a.value)] for a in adjoints(cache)]
    print(_table(["node", "local chain rule", "adjoint"], bwd, {2}))

    print("\ngradients by method")
    results = gradients_by_method(x, w1, w2, w3)
    reference = results["closed form"]
    rows = []
    not_finite = []
    for name, grads in results.items():
        label = "closed form (eq. 22, 24)" if name == "closed form" else name
        rows.append([label, *(_num(g) for g in grads), _deviation(grads, reference)])
        not_finite += [
            f"{name} ∂f/∂w{i} = {g}" for i, g in enumerate(grads, start=1) if not math.isfinite(g)
        ]
    print(
        _table(
            ["method", "∂f/∂w1", "∂f/∂w2", "∂f/∂w3", "max |Δ| vs closed form"], rows, {1, 2, 3, 4}
        )
    )
    if not_finite:
        print(
            "note: not finite (the value is beyond float64's range, about ±1.8e308): "
            + "; ".join(not_finite)
        )
    values = [cache.a, cache.h1, cache.b, cache.h2, cache.f, *(a.value for a in adjoints(cache))]
    if not all(math.isfinite(v) for v in values):
        print("note: some forward values or adjoints above are not finite (float64 overflow)")

    counts = sigmoid_counts(x, w1, w2, w3)
    print("\nsigmoid evaluations for all three gradients")
    count_rows = [
        [
            "forward pass + backward pass from the cache",
            f"{counts.forward} + {counts.backward_cached}",
            str(counts.cached_total),
        ],
        [
            "closed forms from scratch: ∂f/∂w1 (eq. 24) + ∂f/∂w2 (eq. 22) + ∂f/∂w3 (d)",
            f"{counts.from_scratch_w1} + {counts.from_scratch_w2} + {counts.from_scratch_w3}",
            str(counts.from_scratch_total),
        ],
    ]
    print(_table(["computation", "σ calls", "total"], count_rows, {1, 2}))

    if out_dir is not None:
        from emnet.autodiff import render

        path = Path(out_dir) / f"grad_graph.{args.format}"
        render(graph(x, w1, w2, w3), path)  # render writes atomically
        print(f"\ncomputation graph (values and adjoints): {path}")
    return 0
