"""`emnet lca`: latent class analysis of a survey table, K chosen by an information criterion.

Reads ``--data`` (a ``.csv`` with or without a header line and a UTF-8 byte-order mark,
read by :func:`emnet.data.load_table`; a ``.npy`` array; or a ``.parquet`` file when
pandas can read one). Every column is an item, except the ``--weights`` column (survey
weights, >= 0). Items are binary when every item's answers are exactly 0 and 1 (a
:class:`~emnet.mixture.BernoulliMixture`), otherwise categorical (a
:class:`~emnet.mixture.CategoricalMixture`); ``--binary`` / ``--categorical`` override.
A NaN or empty cell is a missing answer.

Fits every K of ``--k`` with ``--n-init`` random starts
(:func:`emnet.mixture.select_n_components`, optionally with ``--blrt B`` bootstrap
likelihood-ratio tests), prints the model-selection table and the summary of the K that
minimises ``--criterion`` (classes ordered by size), and writes into ``--out``:
``selection.json``, ``selection.csv``, ``summary.txt``, ``probabilities.csv``,
``classes.csv``, ``fit.csv``, ``classification.csv``, ``profile.png``, ``bic.png`` and
``model.npz``. ``--out`` follows emnet's ownership rule (:func:`emnet._io.owned_output`).

``--covariates NAME [NAME ...]`` (latent class regression): the named columns (names, or
1-based numbers) are taken out of the items and predict class membership (a multinomial
logit, ``--covariate-method`` one-step, bch or ml). Number columns are numeric
covariates; text columns (a CSV or parquet column of words) are categorical, with the
first level (sorted) as the reference. Rows with a missing covariate are left out (as
poLCA does). Each K is fitted with the covariates; the selection table uses
``model.bic(X, covariates=Z)``. For the chosen K it prints and writes the Wald table
(``coefficients.csv``) and draws ``covariate_effect_<name>.png`` for the first numeric
covariate, besides ``selection.json``/``.csv``, ``summary.txt`` (the summary with the
coefficient table), ``probabilities.csv``, ``classes.csv``, ``profile.png`` and
``model.npz``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from emnet.commands._types import (
    add_header_option,
    k_list,
    n_jobs,
    non_negative_float,
    non_negative_int,
    positive_int,
    seed,
)

DEFAULT_OUT = "emnet-lca"
COVARIATE_METHODS = ("one-step", "bch", "ml")
CRITERIA = ("bic", "aic", "sabic", "caic")
SUFFIXES = (".csv", ".npy", ".parquet")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "lca",
        help="latent class analysis of a survey table (binary or categorical items)",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument(
        "--data",
        metavar="FILE",
        required=True,
        help="a .csv (header optional), .npy or .parquet table: one row per respondent",
    )
    add_header_option(p, "default: decided from the first line")
    p.add_argument(
        "--k",
        type=k_list,
        default=[1, 2, 3, 4, 5, 6],
        help="numbers of classes to fit: K, a range A:B (or A:B:STEP) or a list a,b,c (1:6)",
    )
    p.add_argument(
        "--n-init", type=positive_int, default=20, help="random starts per K; the best is kept (20)"
    )
    kind = p.add_mutually_exclusive_group()
    kind.add_argument(
        "--categorical",
        dest="items",
        action="store_const",
        const="categorical",
        help="treat every item as categorical (default: binary only when all answers are 0/1)",
    )
    kind.add_argument(
        "--binary",
        dest="items",
        action="store_const",
        const="binary",
        help="treat every item as binary 0/1 (a Bernoulli mixture)",
    )
    p.add_argument(
        "--weights",
        metavar="COLUMN",
        help="the column (name, or 1-based number) of survey weights (>= 0); not an item",
    )
    p.add_argument(
        "--covariates",
        nargs="+",
        metavar="NAME",
        help="columns (names, or 1-based numbers) that predict class membership (latent "
        "class regression); not items. Text columns are categorical",
    )
    p.add_argument(
        "--covariate-method",
        choices=COVARIATE_METHODS,
        default="one-step",
        help="one-step (joint EM, default) or the bias-corrected three-step bch / ml",
    )
    p.add_argument(
        "--blrt",
        type=non_negative_int,
        default=0,
        metavar="B",
        help="bootstrap samples of the likelihood-ratio test of K vs K-1 (0: none)",
    )
    p.add_argument(
        "--criterion", choices=CRITERIA, default="bic", help="choose K by this criterion (bic)"
    )
    p.add_argument("--seed", type=seed, default=0, help="random seed (0)")
    p.add_argument(
        "--max-iter", type=positive_int, default=5000, help="EM iterations per start (5000)"
    )
    p.add_argument(
        "--tol",
        type=non_negative_float,
        default=1e-10,
        help="stop when the log-likelihood per row changes by less (1e-10, poLCA's and "
        "stepmix's tolerance, for binary and categorical items alike)",
    )
    p.add_argument(
        "--search-budget",
        type=non_negative_float,
        default=0.5,
        help="after the starts, screen more random starts at a loose tolerance and finish "
        "those that can reach the best, spending up to this share of the starts' EM steps "
        "(scaled by the share of starts that missed the best; 0: off; default 0.5)",
    )
    p.add_argument("--n-jobs", type=n_jobs, default=1, help="parallel fits (1; -1: all cores)")
    p.add_argument(
        "--progress",
        action="store_true",
        help="show progress bars even when stderr is not a terminal",
    )
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"output ({DEFAULT_OUT})")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace emnet's earlier output of another configuration in --out",
    )
    p.set_defaults(func=run, items=None)


# ------------------------------------------------------------------------------ input
def read_data(path: str, header: bool | None) -> tuple[Any, list[str] | None]:
    """The (n, D) float array of ``--data`` and its column names (None without a header)."""
    import numpy as np

    p = Path(path)
    if p.suffix.lower() == ".parquet":
        import pandas as pd

        frame = _read_parquet(p, header)
        try:
            values = frame.apply(pd.to_numeric).to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError):
            raise ValueError(
                f"--data: {p}: expected numeric answers in every column (code them as numbers)"
            ) from None
        if values.size == 0:
            raise ValueError(f"--data: {p} holds no data")
        return values, [str(c) for c in frame.columns]
    if p.suffix.lower() not in SUFFIXES:
        raise ValueError(f"--data: expected a .csv, .npy or .parquet file, got {p.name}")
    from emnet.data import load_table

    try:
        table = load_table(path, header=header)
    except ValueError as exc:
        msg = str(exc)
        prefix = f"{p}: "
        raise ValueError(
            f"--data: cannot read {msg}" if msg.startswith(prefix) else f"--data: {msg}"
        ) from None
    values = np.asarray(table.values, dtype=np.float64)
    return values, table.columns


def _read_parquet(p: Path, header: bool | None) -> Any:
    """A .parquet file as a DataFrame (one-line errors)."""
    if header is not None:
        raise ValueError("--header: applies to CSV files only (this is a .parquet file)")
    if not p.is_file():
        what = "is a directory" if p.is_dir() else "does not exist or is not a file"
        raise ValueError(f"--data: {p} {what}")
    import pandas as pd

    try:
        return pd.read_parquet(p)
    except ImportError:
        raise ValueError(
            f"--data: {p}: reading .parquet needs pyarrow or fastparquet; "
            "save the table as .csv instead"
        ) from None
    except Exception as exc:  # a corrupt file: pyarrow's own error types
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"--data: cannot read {p} ({reason})") from None


def split_weights(
    values: Any, columns: list[str] | None, spec: str | None
) -> tuple[Any, list[str], Any]:
    """(items, item names, sample weights or None): the ``--weights`` column taken out."""
    import numpy as np

    D = values.shape[1]
    names = list(columns) if columns is not None else [f"item {j + 1}" for j in range(D)]
    if spec is None:
        return values, names, None
    j = _column_index(spec, columns, D, "--weights")
    label = names[j] if columns is not None else f"column {j + 1}"
    w = values[:, j]
    bad = np.flatnonzero(~np.isfinite(w))
    if bad.size:
        raise ValueError(
            f"--weights: {label} has a missing or non-finite weight in data row {bad[0] + 1}"
        )
    neg = np.flatnonzero(w < 0)
    if neg.size:
        raise ValueError(
            f"--weights: {label} has a negative weight ({w[neg[0]]:g}) in data row {neg[0] + 1}"
        )
    if not np.any(w > 0):
        raise ValueError(f"--weights: every weight in {label} is 0")
    if D == 1:
        raise ValueError(f"--weights: {label} is the only column; no items are left")
    keep = [i for i in range(D) if i != j]
    return values[:, keep], [names[i] for i in keep], w


def _column_index(spec: str, columns: list[str] | None, D: int, option: str) -> int:
    """The 0-based column of ``spec`` (a name, or a 1-based number) in the full table."""
    if columns is not None and spec in columns:
        return columns.index(spec)
    try:
        j = int(spec) - 1
    except ValueError:
        j = -1
    if not 0 <= j < D:
        have = (
            f"the columns are {', '.join(columns)}"
            if columns is not None
            else f"the data has no header; give a column number 1..{D}"
        )
        raise ValueError(f"{option}: no column {spec!r} ({have})")
    return j


def _read_csv_text(p: Path, header: bool | None) -> tuple[Any, bool]:
    """A CSV with text cells (categorical covariates) as a DataFrame, and whether its first
    line is a header (``None``: when every cell of line 1 is a name, as load_table)."""
    import csv

    import pandas as pd

    with open(p, encoding="utf-8-sig", newline="") as fh:
        first = next(csv.reader(fh), [])
    if header is None:

        def is_name(cell: str) -> bool:
            try:
                float(cell)
            except ValueError:
                return cell.strip() != ""
            return False

        header = bool(first) and all(is_name(c) for c in first)
    frame = pd.read_csv(p, encoding="utf-8-sig", header=0 if header else None)
    if not header:
        frame.columns = [str(j + 1) for j in range(frame.shape[1])]
    frame.columns = [str(c) for c in frame.columns]
    if frame.size == 0:
        raise ValueError(f"--data: {p} holds no data")
    return frame, header


def read_with_covariates(
    path: str, header: bool | None, specs: list[str], weights: str | None
) -> tuple[Any, list[str] | None, Any, str | None]:
    """(numeric (n, D) items and weights, their names or None, the covariates as a
    DataFrame, the ``--weights`` spec for the table without the covariates).

    Number columns stay numbers; text columns (CSV or parquet) are categorical."""
    import numpy as np
    import pandas as pd

    p = Path(path)
    if p.suffix.lower() == ".parquet":
        frame, has_header = _read_parquet(p, header), True
    else:
        try:
            values, columns = read_data(path, header)
            frame = pd.DataFrame(values, columns=columns)
            has_header = columns is not None
        except ValueError as exc:
            if p.suffix.lower() != ".csv" or not p.is_file():
                raise
            try:
                frame, has_header = _read_csv_text(p, header)
            except Exception:
                raise exc from None
    D = frame.shape[1]
    columns = [str(c) for c in frame.columns] if has_header else None
    idx: list[int] = []
    for spec in specs:
        j = _column_index(spec, columns, D, "--covariates")
        if j in idx:
            raise ValueError(f"--covariates: {spec!r} is named twice")
        idx.append(j)
    if weights is not None:
        jw = _column_index(weights, columns, D, "--weights")
        if jw in idx:
            raise ValueError(
                f"--covariates: {weights!r} is the --weights column; a column is either "
                "a weight or a covariate"
            )
        if columns is None:  # a number: renumber it in the table without the covariates
            weights = str(jw + 1 - sum(j < jw for j in idx))
    rest = [j for j in range(D) if j not in idx]
    if not rest or (weights is not None and len(rest) == 1):
        raise ValueError("--covariates: no items are left (every column is a covariate)")
    names = [columns[j] if columns is not None else f"column {j + 1}" for j in range(D)]
    Z = frame.iloc[:, idx].copy()
    Z.columns = [names[j] for j in idx]
    for name in Z.columns:
        if Z[name].isna().all():
            raise ValueError(f"--covariates: column {name!r} has no value (every entry is missing)")
    numeric = {}
    for j in rest:
        col = frame.iloc[:, j]
        conv = pd.to_numeric(col, errors="coerce")
        bad = np.flatnonzero(conv.isna().to_numpy() & col.notna().to_numpy())
        if bad.size:
            raise ValueError(
                f"--data: column {names[j]!r} holds {col.iloc[bad[0]]!r} (data row "
                f"{bad[0] + 1}), not a number; name it in --covariates if it is a covariate"
            )
        numeric[names[j]] = conv.to_numpy(dtype=np.float64, na_value=np.nan)
    values = np.column_stack([numeric[names[j]] for j in rest])
    return values, [names[j] for j in rest] if columns is not None else None, Z, weights


def drop_missing_covariates(items: Any, weights: Any, covariates: Any) -> tuple[Any, Any, Any]:
    """The rows with every covariate present (a note says how many were left out), after
    checking the covariates as the fit will (mixed text, collinear columns)."""
    import warnings

    import numpy as np

    from emnet.mixture._covariates import learn_design

    n = len(covariates)
    missing = covariates.isna().any(axis=1).to_numpy()
    if missing.all():
        raise ValueError("--covariates: every row has a missing covariate")
    keep = ~missing
    Z = covariates.loc[keep].reset_index(drop=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            learn_design(Z, len(Z))
    except ValueError as exc:
        msg = str(exc)
        raise ValueError(
            "--" + msg if msg.startswith("covariates:") else f"--covariates: {msg}"
        ) from None
    if missing.any():
        print(
            f"emnet lca: note: {int(missing.sum())} of {n} rows have a missing covariate and "
            "are left out (as poLCA does)"
        )
    items = np.asarray(items)[keep]
    return items, (None if weights is None else np.asarray(weights)[keep]), Z


def detect_items(values: Any) -> str:
    """'binary' when every item's non-missing answers are exactly {0, 1}, else 'categorical'."""
    import numpy as np

    for j in range(values.shape[1]):
        col = values[:, j]
        seen = np.unique(col[~np.isnan(col)])
        if seen.size != 2 or seen[0] != 0 or seen[1] != 1:
            return "categorical"
    return "binary"


def item_frame(values: Any, names: list[str], items: str) -> Any:
    """The items as a DataFrame (column names → feature names): floats for binary items,
    whole-number answers as integers (so that they print as 1, 2, not 1.0, 2.0)."""
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame(values, columns=names)
    if items == "binary":
        seen = values[~np.isnan(values)]
        if seen.size and not np.all((seen == 0) | (seen == 1)):
            j = int(np.flatnonzero(~np.all(np.isnan(values) | (values == 0) | (values == 1), 0))[0])
            bad = values[:, j][~np.isnan(values[:, j]) & (values[:, j] != 0) & (values[:, j] != 1)]
            raise ValueError(
                f"--binary: item {names[j]} has the answer {bad[0]:g}; binary items are 0/1 "
                "(use --categorical)"
            )
        return frame
    if np.all(np.isnan(values) | (values == np.round(values))):
        return frame.astype("Int64")
    return frame


# -------------------------------------------------------------------------------- run
def run_config(args: argparse.Namespace) -> dict[str, Any]:
    """What decides the numbers of an `emnet lca` run (the ownership marker's config)."""
    config = {
        "data": os.path.abspath(args.data),
        "header": args.header,
        "k": args.k,
        "n_init": args.n_init,
        "items": args.items,
        "weights": args.weights,
        "blrt": args.blrt,
        "criterion": args.criterion,
        "seed": args.seed,
        "max_iter": args.max_iter,
        "tol": args.tol,
        "search_budget": args.search_budget,
    }
    if getattr(args, "covariates", None):
        config["covariates"] = list(args.covariates)
        config["covariate_method"] = args.covariate_method
    return config


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from emnet._io import check_output_dir, owned_output

    # Ownership and the data are checked before any fitting: a user error costs nothing.
    check_output_dir(args.out, "lca", run_config(args), force=args.force)
    covariates = None
    if args.covariates:
        if args.blrt:
            raise ValueError("--blrt: not available with --covariates (fit K by BIC instead)")
        values, columns, covariates, weights_spec = read_with_covariates(
            args.data, args.header, args.covariates, args.weights
        )
    else:
        values, columns = read_data(args.data, args.header)
        weights_spec = args.weights
    items_values, names, weights = split_weights(values, columns, weights_spec)
    if covariates is not None:
        items_values, weights, covariates = drop_missing_covariates(
            items_values, weights, covariates
        )
    n = items_values.shape[0]
    if max(args.k) > n:
        raise ValueError(
            f"--k: {max(args.k)} classes need at least {max(args.k)} rows; the data has {n}"
        )
    empty = np.flatnonzero(np.all(np.isnan(items_values), axis=1))
    if empty.size:
        raise ValueError(
            f"--data: data row {empty[0] + 1} has no answers (every item is missing); "
            "remove such rows"
        )
    items = args.items or detect_items(items_values)
    X = item_frame(items_values, names, items)
    progress = bool(args.progress or sys.stderr.isatty())
    out = Path(args.out)
    with owned_output(args.out, "lca", run_config(args), force=args.force) as stage:
        if covariates is None:
            written = _fit_and_write(args, X, weights, items, progress, stage)
        else:
            written = _fit_covariates_and_write(args, X, weights, covariates, items, stage)
    print("wrote " + ", ".join(str(out / Path(p).relative_to(stage)) for p in written))
    return 0


def _run_record(args: argparse.Namespace, items: str, X: Any) -> dict[str, Any]:
    """What every ``selection.json`` says first: the data, the items and the starts."""
    n, D = X.shape
    return {
        "data": args.data,
        "items": items,
        "estimator": "bernoulli" if items == "binary" else "categorical",
        "weights": args.weights,
        "n_samples": int(n),
        "n_items": int(D),
        "item_names": list(map(str, X.columns)),
        "seed": args.seed,
        "n_init": args.n_init,
    }


def _fit_and_write(
    args: argparse.Namespace, X: Any, weights: Any, items: str, progress: bool, out: Path
) -> list[Path]:
    from emnet._io import write_json, write_text
    from emnet.mixture import plot_bic, plot_profile, select_n_components
    from emnet.mixture.selection import format_selection_table

    estimator = "bernoulli" if items == "binary" else "categorical"
    try:
        result = select_n_components(
            X,
            args.k,
            n_init=args.n_init,
            estimator=estimator,
            criterion=args.criterion,
            sample_weight=weights,
            blrt=args.blrt,
            n_jobs=args.n_jobs,
            random_state=args.seed,
            progress=progress,
            max_iter=args.max_iter,
            tol=args.tol,
            search_budget=args.search_budget,
        )
    except ValueError as exc:
        raise ValueError(f"--data {args.data}: {exc}") from None
    model = result.best_model.reorder("weight")
    summary = model.summary(X, sample_weight=weights)
    n, D = X.shape
    what = "binary items (Bernoulli mixture)" if items == "binary" else "categorical items"
    weighted = f", weights from {args.weights}" if weights is not None else ""
    ks = args.k
    print(
        f"emnet lca: {args.data}: {n} rows x {D} {what}{weighted}; "
        f"K = {', '.join(map(str, ks)) if len(ks) < 4 else f'{ks[0]}..{ks[-1]}'}, "
        f"{args.n_init} starts each"
        + (f", BLRT with {args.blrt} bootstrap samples" if args.blrt else "")
    )
    table_text = format_selection_table(result)
    print(table_text)
    print()
    summary_text = str(summary)
    print(summary_text)

    written: list[Path] = []
    written.append(
        write_json(
            out / "selection.json",
            {
                **_run_record(args, items, X),
                "blrt": args.blrt,
                "criterion": result.criterion,
                "best_k": int(result.best_k),
                "table": result.table(),
            },
        )
    )
    written.append(write_text(out / "selection.csv", result.to_frame().to_csv(index=False)))
    written.append(write_text(out / "summary.txt", table_text + "\n\n" + summary_text + "\n"))
    for name, frame in summary.tables().items():
        written.append(write_text(out / f"{name}.csv", frame.to_csv(index=False)))
    se = model.standard_errors(X, sample_weight=weights)
    written.append(plot_profile(model, standard_errors=se, path=out / "profile.png"))
    written.append(Path(plot_bic(result, out / "bic.png")))
    model.save(out / "model.npz")
    written.append(out / "model.npz")
    return written


def _safe_name(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("._") or "covariate"


def _fit_covariates_and_write(
    args: argparse.Namespace, X: Any, weights: Any, Z: Any, items: str, out: Path
) -> list[Path]:
    """Each K of --k fitted with the covariates; the chosen one's Wald table and plots."""
    import warnings

    import numpy as np
    import pandas as pd

    from emnet._io import write_json, write_text
    from emnet.mixture import (
        BernoulliMixture,
        CategoricalMixture,
        plot_covariate_effect,
        plot_profile,
    )

    cls = BernoulliMixture if items == "binary" else CategoricalMixture
    method = args.covariate_method
    rows, models = [], {}
    for k in args.k:
        model = cls(
            k, n_init=args.n_init, random_state=args.seed, max_iter=args.max_iter, tol=args.tol,
            search_budget=args.search_budget,
        )  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                model.fit(X, sample_weight=weights, covariates=Z, covariate_method=method)
            except ValueError as exc:
                raise ValueError(f"--data {args.data}: {exc}") from None
        s = np.asarray(model.score_samples(X, covariates=Z), dtype=np.float64)
        ll = float(s.sum() if weights is None else s @ weights)
        crit = {
            c: getattr(model, c)(X, sample_weight=weights, covariates=Z)
            for c in ("aic", "bic", "sabic", "caic")
        }
        rows.append({"k": int(k), "loglik": ll, "n_params": int(model.n_parameters_), **crit})
        models[int(k)] = model
    best_k = min(rows, key=lambda r: r[args.criterion])["k"]
    model = models[best_k].reorder("weight")
    n, D = X.shape
    what = "binary items (Bernoulli mixture)" if items == "binary" else "categorical items"
    weighted = f", weights from {args.weights}" if weights is not None else ""
    ks = args.k
    kinds = dict(zip(model.covariate_design_.columns, model.covariate_design_.kinds, strict=True))
    print(
        f"emnet lca: {args.data}: {n} rows x {D} {what}{weighted}; covariates "
        + ", ".join(f"{c} ({kinds[c]})" for c in Z.columns)
        + f", {method}; K = {', '.join(map(str, ks)) if len(ks) < 4 else f'{ks[0]}..{ks[-1]}'}, "
        f"{args.n_init} starts each"
    )
    sel = pd.DataFrame(rows)
    shown = sel.rename(columns={"k": "K", "loglik": "LL", "n_params": "npar", "aic": "AIC",
                                "bic": "BIC", "sabic": "SABIC", "caic": "CAIC"})  # fmt: skip
    shown.insert(0, "", ["*" if k == best_k else "" for k in sel["k"]])
    table_text = shown.to_string(index=False, float_format=lambda v: f"{v:.4f}")
    table_text += f"\n* lowest {args.criterion.upper()} (with the covariates)"
    print(table_text)
    coef = model.coefficients().to_frame()
    shares = np.asarray(model.weights_, dtype=np.float64)
    lines = [
        "",
        f"{cls.__name__}: {best_k} latent classes, latent class regression ({method}); "
        "class 1 is the reference",
        "class shares (mean P(class | covariates)): "
        + ", ".join(f"{k + 1}: {w:.4f}" for k, w in enumerate(shares)),
    ]
    if len(coef):
        lines.append(coef.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    else:
        lines.append("K = 1: one class, no coefficients")
    coef_text = "\n".join(lines)
    print(coef_text)
    summary = model.summary(X, sample_weight=weights, covariates=Z)
    print()
    print(summary)

    written: list[Path] = []
    written.append(
        write_json(
            out / "selection.json",
            {
                **_run_record(args, items, X),
                "covariates": list(map(str, Z.columns)),
                "covariate_method": method,
                "criterion": args.criterion,
                "best_k": int(best_k),
                "table": rows,
            },
        )
    )
    written.append(write_text(out / "selection.csv", sel.to_csv(index=False)))
    written.append(
        write_text(
            out / "summary.txt", table_text + "\n" + coef_text + "\n\n" + str(summary) + "\n"
        )
    )
    written.append(write_text(out / "coefficients.csv", coef.to_csv(index=False)))
    written.append(
        write_text(out / "probabilities.csv", summary.tables()["probabilities"].to_csv(index=False))
    )
    classes = pd.DataFrame({"class": np.arange(1, best_k + 1), "share": shares})
    written.append(write_text(out / "classes.csv", classes.to_csv(index=False)))
    written.append(plot_profile(model, path=out / "profile.png"))
    numeric = [c for c in Z.columns if kinds[c] == "numeric"]
    if numeric:
        name = f"covariate_effect_{_safe_name(numeric[0])}.png"
        written.append(plot_covariate_effect(model, numeric[0], data=Z, path=out / name))
    model.save(out / "model.npz")
    written.append(out / "model.npz")
    return written
