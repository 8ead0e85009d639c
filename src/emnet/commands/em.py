"""`emnet em`: fit a Bernoulli mixture by EM and draw its component means and learning curve.

By default on scikit-learn's bundled 8×8 digits, binarised (pixel >= 8 → 1); or on a
user's ``.npy`` / ``.csv`` file of 0/1 values (``--data``, read by
:func:`emnet.data.load_table`; NaN or an empty CSV cell marks a missing entry). Writes
``means.png``, ``loglik.png``, ``model.npz`` and ``summary.json`` to ``--out`` and prints
a summary table. With a range of K (``--k 2:20``, ``2:20:2`` or ``3,5,8``) every K is
fitted with ``--n-init`` restarts, the BIC/AIC table is printed, and ``bic.png`` and
``selection.json`` are written too, with the files above for the best K.

``--out`` follows emnet's ownership rule (:func:`emnet._io.owned_output`): a new or empty
directory, or one an earlier ``emnet em`` wrote (its ``.emnet-run.json``); another
configuration there only with ``--force``; only emnet's own files are ever replaced, and
the directory switches from the old result to the new one as a whole.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from emnet.commands._types import (
    add_header_option,
    n_jobs,
    parse_k,
    positive_int,
    scheduler_address,
    seed,
)

DEFAULT_OUT = "emnet-em"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "em",
        help="fit a Bernoulli mixture by EM (binarised digits or your own 0/1 data)",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument(
        "--data",
        metavar="PATH",
        help="a .npy or .csv file of 0/1 rows (default: binarised 8x8 digits)",
    )
    add_header_option(p, "default: decided from the first line, an error when it is neither")
    p.add_argument(
        "--k",
        type=parse_k,
        default=10,
        help="number of components (10), or a range A:B / list a,b,c: fit each K with "
        "--n-init restarts, print BIC/AIC per K, plot BIC vs K, keep the best",
    )
    p.add_argument("--seed", type=seed, default=0, help="random seed (0)")
    p.add_argument(
        "--max-iter", type=positive_int, default=200, help="EM iterations per start (200)"
    )
    p.add_argument(
        "--n-init", type=positive_int, default=1, help="random restarts; the best is kept (1)"
    )
    p.add_argument(
        "--n-jobs",
        type=n_jobs,
        default=None,
        help="parallel fits for a range of K (default 1; -1: all cores)",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        type=scheduler_address,
        help="Dask scheduler (e.g. tcp://scheduler:8786) to run the fits of a range of K on",
    )
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"output ({DEFAULT_OUT})")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace emnet's earlier output of another configuration in --out",
    )
    p.set_defaults(func=run)


def load_data(path: str, header: bool | None = None) -> Any:
    """The (n, D) array of ``--data`` (see :func:`emnet.data.load_table`), errors naming
    ``--data``."""
    from emnet.data import load_table

    try:
        return load_table(path, header=header).values
    except ValueError as exc:
        msg = str(exc)
        if msg.startswith(f"{Path(path)}: "):
            raise ValueError(f"--data: cannot read {msg}") from None
        raise ValueError(f"--data: {msg}") from None


def summary_table(model: Any, X: Any) -> tuple[str, dict[str, Any]]:
    """The printed summary and the same numbers as a dict."""
    n = X.shape[0]
    mean_ll = model.score(X)
    info = {
        "n_samples": int(n),
        "n_features": int(X.shape[1]),
        "n_components": int(model.n_components),
        "iterations": int(model.n_iter_),
        "converged": bool(model.converged_),
        "loglik_per_sample": float(mean_ll),
        "loglik": float(mean_ll * n),
        "bic": float(model.bic(X)),
        "aic": float(model.aic(X)),
        "weights": [float(w) for w in model.weights_],
    }
    rows = [
        ("samples x features", f"{n} x {X.shape[1]}"),
        ("components K", str(info["n_components"])),
        (
            "iterations",
            f"{info['iterations']} ({'converged' if info['converged'] else 'NOT converged'})",
        ),
        ("log-likelihood", f"{info['loglik']:.2f}  ({mean_ll:.4f} per sample)"),
        ("BIC", f"{info['bic']:.2f}"),
        ("AIC", f"{info['aic']:.2f}"),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    lines.append("")
    lines.append("component  weight   mean of p")
    for k, (w, m) in enumerate(zip(model.weights_, model.means_.mean(axis=1))):
        lines.append(f"{k:>9}  {w:.4f}   {m:.4f}")
    return "\n".join(lines), info


def run_config(args: argparse.Namespace) -> dict[str, Any]:
    """What decides the numbers of an `emnet em` run (the ownership marker's config)."""
    import os

    return {
        "data": None if args.data is None else os.path.abspath(args.data),
        "header": args.header,
        "k": args.k,
        "seed": args.seed,
        "max_iter": args.max_iter,
        "n_init": args.n_init,
    }


def run(args: argparse.Namespace) -> int:
    from emnet._io import owned_output

    selection = isinstance(args.k, list)
    if not selection:
        for flag, value in (("--scheduler", args.scheduler), ("--n-jobs", args.n_jobs)):
            if value is not None:
                raise ValueError(
                    f"{flag}: only used to fit a range of K (e.g. --k 2:20); a single K is "
                    "one fit, run here"
                )
    out = Path(args.out)
    with owned_output(args.out, "em", run_config(args), force=args.force) as stage:
        if args.data is None:
            from emnet.data import binarized_digits

            X, _ = binarized_digits()
            source, image_shape = "binarised 8x8 digits (pixel >= 8)", (8, 8)
        else:
            X = load_data(args.data, args.header)
            source, image_shape = args.data, None
        k_max = max(args.k) if selection else args.k
        if k_max > X.shape[0]:
            raise ValueError(
                f"--k: {k_max} components need at least {k_max} rows; the data has {X.shape[0]}"
            )
        if selection:
            written = run_selection(args, X, source, stage)
        else:
            written = _run_single(args, X, source, image_shape, stage)
    print("wrote " + ", ".join(str(out / Path(p).relative_to(stage)) for p in written))
    return 0


def _run_single(
    args: argparse.Namespace, X: Any, source: str, image_shape: Any, out: Path
) -> list[Path]:
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from emnet._io import write_json
    from emnet.mixture import BernoulliMixture

    model = BernoulliMixture(
        args.k,
        max_iter=args.max_iter,
        n_init=args.n_init,
        random_state=args.seed,
        verbose=1 if sys.stderr.isatty() else 0,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        try:
            model.fit(X)
        except ValueError as exc:
            raise ValueError(f"--data {source}: {exc}") from None
    text, info = summary_table(model, X)
    print(f"emnet em: Bernoulli mixture on {source}")
    print(text)
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        print(f"note: EM stopped at --max-iter {args.max_iter} before converging")
    title = (
        f"Component means, K={args.k} ({Path(source).name if args.data else 'binarised digits'})"
    )
    written = write_model_files(model, out, image_shape, title)
    written.append(write_json(out / "summary.json", {"data": source, "seed": args.seed, **info}))
    return written


def run_selection(args: argparse.Namespace, X: Any, source: str, out: Path) -> list[Path]:
    """Model selection over ``args.k`` (a list) on X; files into ``out``; returns them."""
    from emnet._io import write_json
    from emnet.mixture import plot_bic, select_n_components
    from emnet.mixture.inference.selection import format_selection_table

    ks = args.k  # run() has checked that every K fits the number of rows
    client = None
    if args.scheduler is not None:
        from distributed import Client

        try:
            client = Client(args.scheduler, timeout="10s")
        except Exception as exc:  # OSError, TimeoutError, ValueError from the comm layer
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(
                f"--scheduler: cannot connect to {args.scheduler} ({reason})"
            ) from None
    try:
        result = select_n_components(
            X,
            ks,
            n_init=args.n_init,
            n_jobs=1 if args.n_jobs is None else args.n_jobs,
            client=client,
            random_state=args.seed,
            progress=sys.stderr.isatty(),
            max_iter=args.max_iter,
        )
    except ValueError as exc:
        raise ValueError(f"--data {source}: {exc}") from None
    finally:
        if client is not None:
            client.close()
    print(f"emnet em: model selection on {source}, K = {ks[0]}..{ks[-1]}, {args.n_init} restarts")
    print(format_selection_table(result))
    bic_png = plot_bic(result, out / "bic.png")
    image_shape = (8, 8) if args.data is None else None
    title = f"Component means, best K={result.best_k} by {result.criterion.upper()}"
    written = [Path(bic_png), *write_model_files(result.best_model, out, image_shape, title)]
    selection_json = write_json(
        out / "selection.json",
        {
            "data": source,
            "seed": args.seed,
            "n_init": args.n_init,
            "criterion": result.criterion,
            "best_k": result.best_k,
            "table": result.table(),
        },
    )
    return [*written, selection_json]


def write_model_files(
    model: Any, out: Path, image_shape: tuple[int, int] | None, title: str
) -> list[Path]:
    """The files every fit writes, atomically: means.png, loglik.png and model.npz."""
    from emnet.mixture.plots.common import plot_history, plot_means

    means_png = plot_means(
        model.means_,
        out / "means.png",
        weights=model.weights_,
        image_shape=image_shape,
        title=title,
    )
    loglik_png = plot_history(model.history_, out / "loglik.png")
    model.save(out / "model.npz")
    return [Path(means_png), Path(loglik_png), out / "model.npz"]
