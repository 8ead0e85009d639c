"""`emnet em`: fit a Bernoulli mixture by EM and draw its component means and learning curve.

By default on scikit-learn's bundled 8×8 digits, binarised (pixel >= 8 → 1); or on a
user's ``.npy`` / ``.csv`` file of 0/1 values (``--data``; NaN or an empty CSV cell marks a
missing entry). Writes ``means.png``, ``loglik.png``, ``model.npz`` and ``summary.json``
to ``--out``, every file atomically, and prints a summary table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from emnet.commands._em_selection import parse_k

DEFAULT_OUT = "emnet-em"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"expected a seed in [0, 2**32), got {text!r}")
    return value


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
    p.add_argument(
        "--k",
        type=parse_k,
        default=10,
        help="number of components (10), or a range A:B / list a,b,c: fit each K with "
        "--n-init restarts, print BIC/AIC per K, plot BIC vs K, keep the best",
    )
    p.add_argument("--seed", type=_seed, default=0, help="random seed (0)")
    p.add_argument(
        "--max-iter", type=_positive_int, default=200, help="EM iterations per start (200)"
    )
    p.add_argument(
        "--n-init", type=_positive_int, default=1, help="random restarts; the best is kept (1)"
    )
    p.add_argument(
        "--n-jobs", type=int, default=1, help="parallel fits for a range of K (-1: all cores)"
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="Dask scheduler (e.g. tcp://scheduler:8786) to run the fits of a range of K on",
    )
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"output ({DEFAULT_OUT})")
    p.set_defaults(func=run)


def load_data(path: str) -> Any:
    """A (n, D) array from a .npy or .csv file (CSV: optional header, empty cell = NaN)."""
    import numpy as np

    p = Path(path)
    if not p.is_file():
        raise ValueError(f"--data: {path} does not exist or is not a file")
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            X = np.load(p, allow_pickle=False)
        elif suffix == ".csv":
            X = _read_csv(p)
        else:
            raise ValueError(f"--data: expected a .npy or .csv file, got {p.name}")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"--data: cannot read {path} ({exc})") from None
    except ValueError as exc:
        if str(exc).startswith("--data"):
            raise
        raise ValueError(f"--data: cannot read {path} ({exc})") from None
    if X.ndim == 1 and X.size:
        X = X.reshape(-1, 1) if suffix == ".npy" else X.reshape(1, -1)
    if X.ndim != 2:
        raise ValueError(f"--data: expected a 2-D table of rows, got shape {X.shape}")
    if X.size == 0:
        raise ValueError(f"--data: {path} holds no data")
    return X


def _read_csv(p: Path) -> Any:
    """Comma-separated numbers, optional header line; an empty cell is NaN (missing).

    Any other non-numeric cell, or a row of the wrong length, is a ValueError naming its
    line and column (a space- or semicolon-separated file would otherwise read as NaN).
    """
    import csv

    import numpy as np

    with p.open(encoding="utf-8", newline="") as fh:
        lines = [(i, row) for i, row in enumerate(csv.reader(fh), start=1) if row]
    if lines and any(_is_text(field) for field in lines[0][1]):
        lines = lines[1:]  # header
    rows = []
    for line, row in lines:
        if rows and len(row) != len(rows[0]):
            raise ValueError(f"line {line} has {len(row)} columns, expected {len(rows[0])}")
        values = []
        for col, field in enumerate(row, start=1):
            field = field.strip()
            if _is_text(field):
                raise ValueError(
                    f"line {line} column {col}: expected a number or an "
                    f"empty cell, got {field!r} (is the file comma-separated?)"
                )
            values.append(float(field) if field else np.nan)
        rows.append(values)
    return np.array(rows, dtype=np.float64)


def _is_text(field: str) -> bool:
    field = field.strip().strip('"')
    if not field:
        return False
    try:
        float(field)
    except ValueError:
        return True
    return False


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


def run(args: argparse.Namespace) -> int:
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from emnet._io import check_writable_dir, write_json
    from emnet.data import binarized_digits
    from emnet.mixture import BernoulliMixture

    out = check_writable_dir(args.out)
    if args.data is None:
        X, _ = binarized_digits()
        source, image_shape = "binarised 8x8 digits (pixel >= 8)", (8, 8)
    else:
        X = load_data(args.data)
        source, image_shape = args.data, None
    k_max = max(args.k) if isinstance(args.k, list) else args.k
    if k_max > X.shape[0]:
        raise ValueError(
            f"--k: {k_max} components need at least {k_max} rows; the data has {X.shape[0]}"
        )
    if isinstance(args.k, list):  # a range of K: model selection
        from emnet.commands._em_selection import run_selection

        return run_selection(args, X, source, out)
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
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def write_model_files(
    model: Any, out: Path, image_shape: tuple[int, int] | None, title: str
) -> list[Path]:
    """The files every fit writes, atomically: means.png, loglik.png and model.npz."""
    from emnet.mixture.plotting import plot_history, plot_means

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
