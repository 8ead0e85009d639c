"""`emnet lca`: latent class analysis of a survey table, K chosen by an information criterion.

Reads ``--data`` as it was exported (:func:`emnet.data.load_survey`): CSV/TSV (delimiter
sniffed, or ``--sep``; header optional), SPSS ``.sav``, Stata ``.dta``, Excel ``.xlsx``
(``--sheet``), ``.parquet`` or a numeric ``.npy``. Every column is an item, except the
``--weights`` column (survey weights, >= 0) and the ``--covariates``. Text answers and
SPSS/Stata value labels are categories (labels in the order of their codes; user-missing
codes are missing); number columns hold whole-number answer codes (``--categorical`` takes
any number as a label). Items are binary when every item's answers are exactly 0 and 1 (a
:class:`~emnet.mixture.BernoulliMixture`), otherwise categorical (a
:class:`~emnet.mixture.CategoricalMixture`); ``--binary`` / ``--categorical`` override.
An empty cell is a missing answer; rows with no answer at all are left out (a note on
stderr gives their count). Notes and warnings go to stderr, results to stdout.

Fits every K of ``--k`` with ``--n-init`` random starts
(:func:`emnet.mixture.select_n_components`, optionally with ``--blrt B`` bootstrap
likelihood-ratio tests), prints the model-selection table and the summary of the K that
minimises ``--criterion`` (classes ordered by size; a K that is not identified is left
out of the choice; a K whose best start did not converge is warned about), and writes
into ``--out``: ``report.html`` (the run on one self-contained page), ``selection.json``,
``selection.csv``, ``summary.txt``, ``probabilities.csv``, ``classes.csv``, ``fit.csv``,
``classification.csv``, ``profile.png``, ``bic.png`` and ``model.npz``. ``--out`` follows
emnet's ownership rule (:func:`emnet._io.owned_output`); a second run into the same
``--out`` while one is running is refused.

``--covariates NAME [NAME ...]`` (latent class regression): the named columns (names, or
1-based numbers) are taken out of the items and predict class membership (a multinomial
logit, ``--covariate-method`` one-step, bch or ml). Number columns are numeric
covariates; text columns are categorical, with the first level as the reference. Rows
with a missing covariate are left out (as poLCA does). Each K is fitted with the
covariates and the same table, summary (G², X², df as poLCA reports them, class shares
with standard errors) and files are written, plus the Wald table (``coefficients.csv``)
and ``covariate_effect_<name>.png`` for the first numeric covariate.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path
from typing import Any, NamedTuple

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
MAX_WEIGHT_TOTAL = 1e15  # beyond this, weighted sums lose their digits and overflow
MAX_CODE = 2**31 - 1  # the largest whole number taken as an answer code
MIN_CONTINUOUS_VALUES = 10  # a number column with more distinct values is continuous
COVARIANCES = ("EEI", "VVI", "EEE", "VVV")
DEFAULT_SEARCH_BUDGET = 0.5  # binary and categorical items, without --search-budget


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
        help="the survey table: .csv/.tsv (header optional), .sav (SPSS), .dta (Stata), "
        ".xlsx, .parquet or .npy; one row per respondent",
    )
    add_header_option(p, "default: decided from the first line")
    p.add_argument(
        "--sep",
        type=_separator,
        default=None,
        metavar="CHAR",
        help="the delimiter of a text file (default: sniffed among , ; tab |; 'tab' for a tab)",
    )
    p.add_argument(
        "--sheet",
        default=None,
        metavar="NAME",
        help="the sheet of an Excel file (a name, or a 0-based number; default: the first)",
    )
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
        "--continuous",
        nargs="+",
        metavar="COLUMN",
        help="continuous items (Gaussian: latent profile analysis), by name or 1-based "
        "number (default: a number column with more than "
        f"{MIN_CONTINUOUS_VALUES} distinct values, said in a note)",
    )
    p.add_argument(
        "--counts",
        nargs="+",
        metavar="COLUMN",
        help="count items (Poisson: non-negative whole numbers), by name or 1-based number",
    )
    p.add_argument(
        "--covariance",
        choices=COVARIANCES,
        default="VVI",
        help="the continuous items' covariance structure, mclust's names: EEI equal "
        "variances, VVI class-varying variances, EEE equal full covariance, VVV "
        "class-varying full covariance (VVI)",
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
        "--missing",
        nargs="+",
        metavar="CODE",
        help="answers that mean missing in every item and covariate (e.g. -99 -9, or a "
        "text such as refused), as Mplus's MISSING ARE",
    )
    p.add_argument(
        "--exclude",
        nargs="+",
        metavar="COLUMN",
        help="columns (names, or 1-based numbers) to leave out: IDs, names, free text",
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
        default=None,
        help="after the starts, screen more random starts at a loose tolerance and finish "
        "those that can reach the best, spending up to this share of the starts' EM steps "
        "(scaled by the share of starts that missed the best; 0: off; default: the "
        "model's, 0.5 for binary and categorical items, 4 with continuous or count columns)",
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


def _separator(text: str) -> str:
    sep = {"tab": "\t", "\\t": "\t"}.get(text, text)
    if len(sep) != 1:
        raise argparse.ArgumentTypeError(f"expected one character or 'tab', got {text!r}")
    return sep


# ------------------------------------------------------------------------------ input
class Prepared(NamedTuple):
    """The data of a run, ready to fit: items, weights, covariates, and what was decided."""

    X: Any  # DataFrame of the items (numbers, Int64 codes or categories)
    weights: Any  # (n,) float64 or None
    covariates: Any  # DataFrame or None
    items: str  # "binary", "categorical" or "mixed" (continuous or count items among them)
    notes: list[str]  # said on stderr, and in summary.txt / report.html
    n_read: int  # rows in the file
    n_dropped_empty: int  # rows with no answers, left out
    n_dropped_covariate: int  # rows with a missing covariate, left out
    measurement: dict[str, list[str]] | None = None  # {type: items} of a mixed model
    rows: Any = None  # (n,) the 1-based data row of each row fitted
    ids: Any = None  # DataFrame of the --exclude columns of those rows, or None


def note(text: str) -> None:
    """A note for the user: one line on stderr (results stay on stdout)."""
    print(f"emnet lca: note: {text}", file=sys.stderr)


def read_survey(args: argparse.Namespace) -> tuple[Any, bool, list[str]]:
    """(the table as a DataFrame, whether it has column names, the reader's notes)."""
    from emnet.data import load_survey

    sheet = getattr(args, "sheet", None)
    if sheet is not None and sheet.isdigit():
        sheet = int(sheet)
    try:
        survey = load_survey(
            args.data, sep=getattr(args, "sep", None), header=args.header, sheet=sheet
        )
    except (ValueError, TypeError) as exc:
        raise ValueError(f"--data: {exc}") from None
    return survey.frame, survey.has_header, list(survey.notes)


def _column_index(spec: str, columns: list[str], has_header: bool, option: str) -> int:
    """The 0-based column of ``spec`` (a name, or a 1-based number) in the full table."""
    D = len(columns)
    if has_header and spec in columns:
        return columns.index(spec)
    try:
        j = int(spec) - 1
    except ValueError:
        j = -1
    if not 0 <= j < D:
        have = (
            f"the columns are {', '.join(columns)}"
            if has_header
            else f"the data has no header; give a column number 1..{D}"
        )
        raise ValueError(f"{option}: no column {spec!r} ({have})")
    return j


def _weights_of(col: Any, label: str) -> Any:
    """A column of survey weights as float64, checked (finite, >= 0, not all 0, no overflow)."""
    import numpy as np
    import pandas as pd

    if isinstance(col.dtype, pd.CategoricalDtype):
        i = int(np.flatnonzero(col.notna().to_numpy())[0])
        raise ValueError(
            f"--weights: {label} holds text ({col.iloc[i]!r} in data row {i + 1}), not weights"
        )
    w = col.to_numpy(dtype=np.float64, na_value=np.nan)
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
    with np.errstate(over="ignore"):
        total = float(np.sum(w))
    if not total <= MAX_WEIGHT_TOTAL:
        i = int(np.argmax(w))
        raise ValueError(
            f"--weights: {label} sums to {total:.3g} (largest {w[i]:.3g}, data row {i + 1}); "
            f"weights must total at most {MAX_WEIGHT_TOTAL:.0e} (divide them by their mean)"
        )
    return w


def split_columns(
    frame: Any,
    has_header: bool,
    weights: str | None,
    covariates: list[str] | None,
    exclude: list[str] | None = None,
) -> tuple[Any, Any, Any, Any]:
    """(items DataFrame, weights or None, covariates DataFrame or None, the ``exclude``
    columns as a DataFrame or None) of the table; the ``exclude`` columns are in none of
    the first three (they stand beside each row's classes in posteriors.csv; whole-number
    IDs as integers, 1001 rather than 1001.0).

    Without a header, items are named ``item j`` and the other columns ``column j`` (j the
    1-based column of the file)."""
    import pandas as pd

    columns = [str(c) for c in frame.columns]
    D = len(columns)
    names = columns if has_header else [f"item {j + 1}" for j in range(D)]
    other = columns if has_header else [f"column {j + 1}" for j in range(D)]
    idx: list[int] = []
    for spec in covariates or []:
        j = _column_index(spec, columns, has_header, "--covariates")
        if j in idx:
            raise ValueError(f"--covariates: {spec!r} is named twice")
        idx.append(j)
    w = None
    taken = list(idx)
    if weights is not None:
        jw = _column_index(weights, columns, has_header, "--weights")
        if jw in idx:
            raise ValueError(
                f"--covariates: {weights!r} is the --weights column; a column is either "
                "a weight or a covariate"
            )
        w = _weights_of(frame.iloc[:, jw], other[jw])
        taken.append(jw)
    left_out: list[int] = []
    for spec in exclude or []:
        j = _column_index(spec, columns, has_header, "--exclude")
        if j in left_out:
            raise ValueError(f"--exclude: {spec!r} is named twice")
        if j in taken:
            what = "--weights" if weights is not None and j == taken[-1] else "--covariates"
            raise ValueError(f"--exclude: {spec!r} is a {what} column; leave it out of one")
        left_out.append(j)
    rest = [j for j in range(D) if j not in taken and j not in left_out]
    if not rest:
        what = "--exclude" if left_out else "--weights" if not idx else "--covariates"
        raise ValueError(
            f"{what}: no items are left (every column is a weight, a covariate or excluded)"
        )
    X = frame.iloc[:, rest].copy()
    X.columns = [names[j] for j in rest]
    ids = None
    if left_out:
        ids = frame.iloc[:, left_out].copy()
        ids.columns = [other[j] for j in left_out]
        for name in ids.columns:
            col = ids[name]
            if col.dtype.kind == "f" and bool((col.dropna() == col.dropna().round()).all()):
                ids[name] = col.astype("Int64")
    Z = None
    if idx:
        Z = frame.iloc[:, idx].copy()
        Z.columns = [other[j] for j in idx]
        for name in Z.columns:
            if Z[name].isna().all():
                raise ValueError(
                    f"--covariates: column {name!r} has no value (every entry is missing)"
                )
            if isinstance(Z[name].dtype, pd.CategoricalDtype):
                Z[name] = Z[name].astype(object).where(Z[name].notna(), None)
    return X, w, Z, ids


def _item_label(name: str) -> str:
    return name if name.startswith("item ") else f"item {name}"


ID_MIN_ANSWERS = 20
"""An item with at least this many answers, each in one row only, gets a note (an ID?)."""


def prepare_items(X: Any, kind: str | None) -> tuple[Any, str, list[str]]:
    """(the items as the estimator takes them, 'binary' or 'categorical', notes).

    Number columns must hold whole-number answer codes (an error names the item and the
    row of the first that is not), unless ``kind`` is 'categorical': then any number is a
    label (and a note says so). Text columns are categories. Binary when every item is
    numeric with the answers 0 and 1 (or ``kind`` says so)."""
    import numpy as np
    import pandas as pd

    notes: list[str] = []
    out = {}
    for name in X.columns:
        col = X[name]
        label = _item_label(str(name))
        if isinstance(col.dtype, pd.CategoricalDtype):
            if kind == "binary":
                i = int(np.flatnonzero(col.notna().to_numpy())[0])
                raise ValueError(
                    f"--binary: {label} has the answer {col.iloc[i]!r} (data row {i + 1}); "
                    "binary items are 0/1 (use --categorical)"
                )
            out[name] = col
            seen = col.dropna().unique().tolist()
        else:
            v = col.to_numpy(dtype=np.float64, na_value=np.nan)
            present = ~np.isnan(v)
            with np.errstate(invalid="ignore"):
                code = np.isfinite(v) & (np.abs(v) <= MAX_CODE) & (v == np.round(v))
            bad = np.flatnonzero(present & ~code)
            wild = np.flatnonzero(present & ~np.isfinite(v))  # named first, when refused
            if bad.size and kind != "categorical":
                i = int(wild[0] if wild.size else bad[0])
                hint = (
                    "not a finite number; an empty cell or NA marks a missing answer"
                    if wild.size
                    else f"answers are whole numbers or text; say --continuous {name} for a "
                    "measurement, or --categorical to take every number as a label"
                )
                raise ValueError(
                    f"--data: {label}, data row {i + 1}: {float(v[i])!r} is not an answer code "
                    f"({hint})"
                )
            seen = np.unique(v[present]).tolist()
            if bad.size:
                labels = [_number_text(x) for x in seen]
                text = [None if np.isnan(x) else _number_text(x) for x in v]
                out[name] = pd.Categorical(text, categories=labels, ordered=True)
                notes.append(
                    f"{label}: answers that are not whole numbers ({_number_text(v[bad[0]])}) "
                    "are taken as labels (--categorical)"
                )
            else:
                out[name] = pd.array([pd.NA if np.isnan(x) else int(x) for x in v], dtype="Int64")
        if not seen:
            raise ValueError(f"--data: {label} has no answers (every row is missing); leave it out")
        if len(seen) >= ID_MIN_ANSWERS and len(seen) == int(col.notna().sum()):
            notes.append(
                f"{label} has a different answer in every row ({len(seen)} answers): an ID or "
                f"free text? say --exclude {name} to leave it out"
            )
        if len(seen) == 1:
            notes.append(
                f"{label} has a single answer ({_number_text(seen[0]) if not isinstance(seen[0], str) else seen[0]}); "
                "it carries no information about the classes"
            )
    items = kind or ("binary" if all(_zero_one(col) for col in out.values()) else "categorical")
    if items == "binary":
        for name in X.columns:
            v = X[name].to_numpy(dtype=np.float64, na_value=np.nan)
            odd = np.flatnonzero(~np.isnan(v) & (v != 0) & (v != 1))
            if odd.size:
                raise ValueError(
                    f"--binary: {_item_label(str(name))} has the answer {v[odd[0]]:g}; binary "
                    "items are 0/1 (use --categorical)"
                )
        frame = pd.DataFrame(
            {name: X[name].to_numpy(dtype=np.float64, na_value=np.nan) for name in X.columns}
        )
        return frame, items, notes
    return pd.DataFrame(out), items, notes


def level_items(
    X: Any, frame: Any, has_header: bool, args: argparse.Namespace
) -> tuple[dict[str, str], list[str]]:
    """{item: "continuous" | "counts"} from --continuous/--counts (names or 1-based
    numbers of the file's columns), else inferred: a number column with more than
    MIN_CONTINUOUS_VALUES distinct values is continuous (one note says which; not with
    --categorical or --binary). Counts are never inferred: say --counts."""
    import numpy as np
    import pandas as pd

    columns = [str(c) for c in frame.columns]
    names = columns if has_header else [f"item {j + 1}" for j in range(len(columns))]
    out: dict[str, str] = {}
    for option, kind in (("--continuous", "continuous"), ("--counts", "counts")):
        for spec in getattr(args, kind, None) or []:
            name = names[_column_index(spec, columns, has_header, option)]
            if name not in X.columns:
                raise ValueError(
                    f"{option}: column {spec!r} is not an item (a weight, a covariate or excluded)"
                )
            if name in out:
                raise ValueError(
                    f"{option}: column {spec!r} is named twice or in both --continuous and --counts"
                )
            out[name] = kind
    notes = []
    if args.items is None:
        found = []
        for name in X.columns:
            col = X[name]
            if name in out or isinstance(col.dtype, pd.CategoricalDtype):
                continue
            v = col.to_numpy(dtype=np.float64, na_value=np.nan)
            seen = v[~np.isnan(v)]
            if not np.all(np.isfinite(seen)):
                continue  # an error naming the cell follows
            if len(np.unique(seen)) > MIN_CONTINUOUS_VALUES:
                out[name] = "continuous"
                found.append(str(name))
        if found:
            notes.append(
                f"{len(found)} item{'s are' if len(found) > 1 else ' is'} continuous (more "
                f"than {MIN_CONTINUOUS_VALUES} distinct numbers): {', '.join(found)}; fitted "
                "as Gaussian items (say --continuous, --counts or --categorical to choose)"
            )
    return out, notes


def _level_values(col: Any, name: str, kind: str) -> Any:
    """A continuous or count item as float64, checked cell by cell."""
    import numpy as np
    import pandas as pd

    label = _item_label(str(name))
    option = "--continuous" if kind == "continuous" else "--counts"
    if isinstance(col.dtype, pd.CategoricalDtype):
        i = int(np.flatnonzero(col.notna().to_numpy())[0])
        raise ValueError(
            f"{option}: {label} holds text ({col.iloc[i]!r} in data row {i + 1}), not numbers"
        )
    v = col.to_numpy(dtype=np.float64, na_value=np.nan)
    present = ~np.isnan(v)
    bad = present & ~np.isfinite(v)
    what = "a finite number"
    if kind == "counts":
        with np.errstate(invalid="ignore"):
            bad |= present & ((v < 0) | (v != np.round(v)) | (np.abs(v) > MAX_CODE))
        what = "a count (a non-negative whole number)"
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{option}: {label}, data row {i + 1}: {float(v[i])!r} is not {what}")
    if not present.any():
        raise ValueError(f"--data: {label} has no answers (every row is missing); leave it out")
    return v


def _zero_one(col: Any) -> bool:
    """Whether a prepared item is a 0/1 item (:func:`detect_items`' rule)."""
    import numpy as np
    import pandas as pd

    if isinstance(col.dtype, pd.CategoricalDtype):
        return False
    return detect_items(col.to_numpy(dtype=np.float64, na_value=np.nan)[:, None]) == "binary"


def _mixed_measurement(levels: dict[str, str], coded: Any) -> dict[str, list[str]]:
    """LatentClassModel's {type: items}: the continuous and count items, then the coded
    ones (0/1 items binary, the others categorical)."""
    out: dict[str, list[str]] = {}
    for kind, block in (("continuous", "gaussian"), ("counts", "poisson")):
        cols = [c for c, k in levels.items() if k == kind]
        if cols:
            out[block] = cols
    binary = [c for c in coded.columns if _zero_one(coded[c])]
    other = [c for c in coded.columns if c not in binary]
    if binary:
        out["binary"] = binary
    if other:
        out["categorical"] = other
    return out


def _number_text(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 2**53 else repr(float(x))


def detect_items(values: Any) -> str:
    """'binary' when every item's non-missing answers are exactly {0, 1}, else 'categorical'."""
    import numpy as np

    for j in range(values.shape[1]):
        col = values[:, j]
        seen = np.unique(col[~np.isnan(col)])
        if seen.size != 2 or seen[0] != 0 or seen[1] != 1:
            return "categorical"
    return "binary"


def prepare(args: argparse.Namespace) -> Prepared:
    """Read ``--data`` and make it ready to fit: every check on the user's table, before
    any fitting (a user error costs nothing)."""
    import numpy as np
    import pandas as pd

    frame, has_header, notes = read_survey(args)
    n_read = len(frame)
    X, weights, Z, ids = split_columns(
        frame, has_header, args.weights, args.covariates, getattr(args, "exclude", None)
    )
    codes = getattr(args, "missing", None)
    if codes:
        X, said = _missing_codes(X, codes)
        if Z is not None:
            Z, more = _missing_codes(Z, codes)
            said += more
        if said:
            notes.append(f"answers taken as missing (--missing): {'; '.join(said)}")
        else:
            notes.append(f"--missing: no answer equals {', '.join(map(repr, codes))}")
    if Z is not None:
        _check_design(Z)
    empty = X.isna().all(axis=1).to_numpy()
    n_empty = int(empty.sum())
    if n_empty == n_read:
        raise ValueError("--data: no row has an answer (every item is missing in every row)")
    levels, level_notes = level_items(X, frame, has_header, args)
    notes += level_notes
    coded = X.drop(columns=[c for c in X.columns if c in levels])
    measurement = None
    if coded.shape[1]:
        coded, items, item_notes = prepare_items(coded, args.items)
        notes += item_notes
    if levels:
        measurement = _mixed_measurement(levels, coded)
        parts = {c: coded[c] if c in coded.columns else _level_values(X[c], c, levels[c])
                 for c in X.columns}  # fmt: skip
        X = pd.DataFrame(parts)
        items = "mixed"
    else:
        X = coded
    if n_empty:
        rows = ", ".join(str(i + 1) for i in np.flatnonzero(empty)[:5])
        more = ", ..." if n_empty > 5 else ""
        one = n_empty == 1
        notes.append(
            f"{n_empty} of {n_read} rows {'has' if one else 'have'} no answers (data "
            f"row{'' if one else 's'} {rows}{more}) and {'is' if one else 'are'} left out: "
            "such rows carry no information (n counts the rows with answers, as poLCA's does)"
        )
    keep = ~empty
    n_cov = 0
    if Z is not None:
        missing = Z.isna().any(axis=1).to_numpy() & keep
        n_cov = int(missing.sum())
        if n_cov == int(keep.sum()):
            raise ValueError("--covariates: every row has a missing covariate")
        if n_cov:
            notes.append(
                f"{n_cov} of {n_read} rows have a missing covariate and are left out "
                "(as poLCA does)"
            )
        keep &= ~missing
    if not keep.all():
        X = X[keep].reset_index(drop=True)
        weights = None if weights is None else weights[keep]
        Z = None if Z is None else Z[keep].reset_index(drop=True)
    if weights is not None and abs(float(weights.sum()) - len(weights)) > 0.01 * len(weights):
        notes.append(
            f"the --weights sum to {float(weights.sum()):.6g} over {len(weights)} rows: they "
            "count as frequency weights (n is their sum in the criteria and the standard "
            "errors); for sampling weights, rescale them to sum to the number of rows"
        )
    rows = np.flatnonzero(keep) + 1
    if ids is not None:
        ids = ids[keep].reset_index(drop=True)
    return Prepared(X, weights, Z, items, notes, n_read, n_empty, n_cov, measurement, rows, ids)


def _missing_codes(frame: Any, codes: list[str]) -> tuple[Any, list[str]]:
    """``frame`` with the --missing codes missing: a number column's values equal to a
    code that is a number, a text column's answers equal to a code; and what was done,
    per column ('sl: 2 × -99')."""
    import numpy as np
    import pandas as pd

    numbers = []
    for c in codes:
        try:
            numbers.append(float(c))
        except ValueError:
            continue
    texts = [str(c) for c in codes]
    frame = frame.copy()
    said = []
    for name in frame.columns:
        col = frame[name]
        if isinstance(col.dtype, pd.CategoricalDtype):
            hit = col.isin(texts).to_numpy()
            if hit.any():  # a removed category's answers become missing
                gone = [c for c in col.cat.categories if str(c) in texts]
                frame[name] = col.cat.remove_categories(gone)
        elif not pd.api.types.is_numeric_dtype(col.dtype):  # text (a covariate's)
            hit = (col.notna() & col.astype(str).isin(texts)).to_numpy()
            if hit.any():
                frame[name] = col.where(~hit)
        else:
            v = col.to_numpy(dtype=np.float64, na_value=np.nan)
            hit = np.isin(v, numbers)
            if hit.any():
                frame[name] = np.where(hit, np.nan, v)
        if hit.any():
            found = sorted({x if isinstance(x, str) else _number_text(float(x)) for x in col[hit]})
            said.append(f"{name}: {int(hit.sum())} × {', '.join(found)}")
    return frame, said


def _check_design(Z: Any) -> None:
    """The covariates checked as the fit will check them (text mixed with numbers, a
    constant or collinear column), so that the error comes before any fitting."""

    from emnet.mixture.covariates.logit import learn_design

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            learn_design(Z, len(Z))
    except ValueError as exc:
        msg = str(exc)
        raise ValueError(
            "--" + msg if msg.startswith("covariates:") else f"--covariates: {msg}"
        ) from None


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
    if getattr(args, "sep", None) is not None:
        config["sep"] = args.sep
    for key in ("continuous", "counts", "exclude", "missing"):
        if getattr(args, key, None):
            config[key] = list(getattr(args, key))
    if getattr(args, "covariance", "VVI") != "VVI":
        config["covariance"] = args.covariance
    if getattr(args, "sheet", None) is not None:
        config["sheet"] = args.sheet
    if getattr(args, "covariates", None):
        config["covariates"] = list(args.covariates)
        config["covariate_method"] = args.covariate_method
    return config


def run(args: argparse.Namespace) -> int:
    from emnet._io import check_output_dir, owned_output, run_lock

    # One run at a time per --out (a second is refused up front), and ownership and the
    # data are checked before any fitting: a user error costs nothing.
    with run_lock(args.out):
        check_output_dir(args.out, "lca", run_config(args), force=args.force)
        if args.covariates and args.blrt:
            raise ValueError("--blrt: not available with --covariates (fit K by BIC instead)")
        data = prepare(args)
        n = len(data.X)
        if max(args.k) > n:
            raise ValueError(
                f"--k: {max(args.k)} classes need at least {max(args.k)} rows; the data has {n}"
            )
        for text in data.notes:  # once every check has passed
            note(text)
        progress = bool(args.progress or sys.stderr.isatty())
        out = Path(args.out)
        with owned_output(args.out, "lca", run_config(args), force=args.force) as stage:
            if data.covariates is None:
                written = _fit_and_write(args, data, progress, stage)
            else:
                written = _fit_covariates_and_write(args, data, stage)
    print("wrote " + ", ".join(str(out / Path(p).relative_to(stage)) for p in written))
    return 0


def _run_record(args: argparse.Namespace, data: Prepared) -> dict[str, Any]:
    """What every ``selection.json`` says first: the data, the items and the starts."""
    n, D = data.X.shape
    return {
        "data": args.data,
        "items": data.items,
        "estimator": _estimator_name(data),
        "measurement": data.measurement,
        "weights": args.weights,
        "excluded": getattr(args, "exclude", None),
        "n_samples": int(n),
        "n_rows_read": int(data.n_read),
        "n_rows_without_answers": int(data.n_dropped_empty),
        "n_items": int(D),
        "item_names": list(map(str, data.X.columns)),
        "seed": args.seed,
        "n_init": args.n_init,
        "notes": list(data.notes),
    }


def _estimator_name(data: Prepared) -> str:
    return {"binary": "bernoulli", "categorical": "categorical"}.get(data.items, "latent")


def _what(data: Prepared, covariance: str) -> str:
    """The items in words: 'binary items (Bernoulli mixture)', 'categorical items' or
    'items: 2 continuous (Gaussian, VVI), 1 count (Poisson), 2 categorical'."""
    if data.measurement is None:
        return "binary items (Bernoulli mixture)" if data.items == "binary" else "categorical items"
    words = {"gaussian": f"continuous (Gaussian, {covariance})", "poisson": "count (Poisson)",
             "binary": "binary", "categorical": "categorical"}  # fmt: skip
    return "items: " + ", ".join(
        f"{len(cols)} {words[kind]}" for kind, cols in data.measurement.items()
    )


def _headline(args: argparse.Namespace, data: Prepared, extra: str = "") -> str:
    n, D = data.X.shape
    what = _what(data, args.covariance)
    weighted = f", weights from {args.weights}" if data.weights is not None else ""
    ks = args.k
    shown = ", ".join(map(str, ks)) if len(ks) < 4 else f"{ks[0]}..{ks[-1]}"
    return (
        f"emnet lca: {args.data}: {n} rows x {D} {what}{weighted}{extra}; K = {shown}, "
        f"{args.n_init} starts each"
        + (f", BLRT with {args.blrt} bootstrap samples" if args.blrt else "")
    )


def run_warnings(args: argparse.Namespace, result: Any) -> list[str]:
    """What the user must know about the fits: a K whose best start did not converge, a
    K that is not identified (more free parameters than the pattern table has cells, or
    than rows), a K whose every start ended in a collapsed class."""
    out = []
    rows = result.table()
    none = all(row.get("identified") is False for row in rows)
    no_proper = all(row.get("all_set_aside") for row in rows)
    chosen = (
        "it is left out of the choice of K"
        if not none
        else "no K is identified, so K is chosen among them all: its estimates are not unique"
    )
    for row in rows:
        k = row["k"]
        stopped = row.get("n_unconverged") or 0
        if not row.get("converged", True) or stopped:
            best = "" if row.get("converged", True) else ", the best among them"
            model = (result.models or {}).get(k)  # every start: n_init and the search's
            total = max(len(getattr(model, "init_lower_bounds_", ())), stopped, 1)
            out.append(
                f"K = {k}: {stopped} of {total} starts did not converge within "
                f"--max-iter {args.max_iter} EM iterations (tol {args.tol:g}){best}; "
                + ("its numbers are not a maximum: " if best else "")
                + "raise --max-iter"
            )
        df = row.get("df")
        if df is None and row.get("identified") is False:
            out.append(
                f"K = {k} is not identified: {row['n_params']} free parameters, more than the "
                f"rows; {chosen}"
            )
        elif row.get("identified") is False or (df is not None and df < 0):
            out.append(
                f"K = {k} is not identified: {row['n_params']} free parameters and df = {df} "
                f"(fewer response patterns than parameters); {chosen}"
            )
        if row.get("all_set_aside"):
            out.append(
                f"K = {k}: every start ended in a collapsed class (a class on a few rows or "
                "without variance in some direction): no proper maximum, so "
                + (
                    "it is left out of the choice of K"
                    if not no_proper
                    else "no K has one and K is chosen among them all: its solution is collapsed"
                )
                + " (fewer classes, --covariance EEE or EEI, or check the data for wild "
                "values and missing-value codes: --missing)"
            )
    return out


SEPARATION_PROBABILITY = 1e-6
"""A fitted P(class | covariates) this close to 0 or 1 for some row: (quasi-)separation."""


def separation_warnings(model: Any, Z: Any) -> list[str]:
    """A latent class regression whose fitted class probabilities reach 0 or 1 for some
    rows: the covariates separate the classes, the coefficients run off toward infinity
    and their Wald tests mean nothing (R's glm warns the same way)."""

    p = model.class_probabilities(Z)
    edge = (p < SEPARATION_PROBABILITY) | (p > 1.0 - SEPARATION_PROBABILITY)
    rows = int(edge.any(axis=1).sum())
    if not rows:
        return []
    return [
        f"the covariates separate the classes: fitted class probabilities are 0 or 1 "
        f"(within {SEPARATION_PROBABILITY:g}) for {rows} of {len(p)} rows, so their "
        "coefficients are not finite and their standard errors and Wald tests mean nothing "
        "(fewer covariates, merged categories, or a distal-outcome analysis instead)"
    ]


def _warn(lines: list[str]) -> None:
    for line in lines:
        print(f"emnet lca: warning: {line}", file=sys.stderr)


def _fit_and_write(
    args: argparse.Namespace, data: Prepared, progress: bool, out: Path
) -> list[Path]:
    from emnet.mixture import select_n_components
    from emnet.mixture.inference.selection import format_selection_table

    estimator = _estimator_name(data)
    X, weights = data.X, data.weights
    family = {}
    if data.measurement is not None:
        family = {"measurement": data.measurement, "covariance": args.covariance}
    try:
        with warnings.catch_warnings():  # said per K by run_warnings
            warnings.filterwarnings("ignore", "every start ended in a degenerate", UserWarning)
            warnings.filterwarnings("ignore", "no K in .* is identified", UserWarning)
            warnings.filterwarnings("ignore", "every start of every K in", UserWarning)
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
                **_search_budget(args, family),
                **family,
            )
    except ValueError as exc:
        raise ValueError(f"--data {args.data}: {exc}") from None
    model = result.best_model.reorder("weight")
    summary = model.summary(X, sample_weight=weights)
    se = _summary_errors(summary)  # the summary's (model.standard_errors' numbers)
    warned = run_warnings(args, result)
    _warn(warned)
    print(_headline(args, data))
    table_text = format_selection_table(result)
    print(table_text)
    print()
    summary_text = str(summary)
    print(summary_text)
    record = {
        **_run_record(args, data),
        "blrt": args.blrt,
        "criterion": result.criterion,
        "best_k": int(result.best_k),
        "table": result.table(),
        "warnings": warned,
    }
    return _write_outputs(
        args, data, out, record, result, model, summary, se, table_text, summary_text, warned
    )


def _write_outputs(
    args: argparse.Namespace,
    data: Prepared,
    out: Path,
    record: dict[str, Any],
    result: Any,
    model: Any,
    summary: Any,
    se: Any,
    table_text: str,
    summary_text: str,
    warned: list[str],
    extra_text: str = "",
    extra_tables: dict[str, Any] | None = None,
    extra_figures: dict[str, Path] | None = None,
) -> list[Path]:
    """Every file of a run: the tables, summary.txt, the plots, model.npz, report.html."""
    from emnet._io import write_json, write_text
    from emnet.mixture import plot_bic, plot_profile

    written: list[Path] = [write_json(out / "selection.json", record)]
    written.append(write_text(out / "selection.csv", result.to_frame().to_csv(index=False)))
    said = "".join(f"note: {t}\n" for t in data.notes) + "".join(f"warning: {t}\n" for t in warned)
    written.append(
        write_text(
            out / "summary.txt",
            (said + "\n" if said else "") + table_text + "\n\n" + summary_text + "\n"
            + extra_text,
        )
    )  # fmt: skip
    tables = dict(summary.tables())
    tables.update(extra_tables or {})
    for name, frame in tables.items():
        written.append(write_text(out / f"{name}.csv", frame.to_csv(index=False)))
    written.append(plot_profile(model, standard_errors=se, path=out / "profile.png"))
    written.append(Path(plot_bic(result, out / "bic.png")))
    figures = {"bic": out / "bic.png", "profile": out / "profile.png"}
    for name, path in (extra_figures or {}).items():
        written.append(path)
        figures[name] = path
    written.append(write_text(out / "posteriors.csv", _posteriors(data, model).to_csv(index=False)))
    model.save(out / "model.npz")
    written.append(out / "model.npz")
    written.append(
        _write_page(args, data, out, result, table_text, summary_text, tables, figures, warned)
    )
    return written


def _posteriors(data: Prepared, model: Any) -> Any:
    """Each fitted row's posterior class probabilities and modal class under the chosen
    model, classes as printed (Mplus's CPROB and MLCLASS, poLCA's posterior and
    predclass): its data row, the --exclude columns (IDs), modal_class, p_class_1..K."""
    import numpy as np
    import pandas as pd

    Z = data.covariates
    proba = model.predict_proba(data.X) if Z is None else model.predict_proba(data.X, Z)
    frame = pd.DataFrame({"data_row": data.rows})
    if data.ids is not None:
        for name in data.ids.columns:
            frame[name] = data.ids[name].to_numpy()
    frame["modal_class"] = np.argmax(proba, axis=1) + 1
    for k in range(proba.shape[1]):
        frame[f"p_class_{k + 1}"] = proba[:, k]
    return frame


def _write_page(
    args: argparse.Namespace,
    data: Prepared,
    out: Path,
    result: Any,
    table_text: str,
    summary_text: str,
    tables: dict[str, Any],
    figures: dict[str, Path],
    warned: list[str],
) -> Path:
    """``report.html``: the run on one self-contained page."""
    from emnet._io import write_text
    from emnet.report.lca_page import render_lca_page

    n, D = data.X.shape
    facts = [
        ("file", str(args.data)),
        ("rows read", str(data.n_read)),
        ("rows fitted", str(n)),
        ("items", f"{D} ({_what(data, args.covariance)}): " + ", ".join(map(str, data.X.columns))),
        ("weights", args.weights or "none"),
    ]  # fmt: skip
    if data.covariates is not None:
        facts.append(("covariates", ", ".join(map(str, data.covariates.columns))))
    if data.n_dropped_empty:
        facts.append(("rows without answers (left out)", str(data.n_dropped_empty)))
    if data.n_dropped_covariate:
        facts.append(("rows with a missing covariate (left out)", str(data.n_dropped_covariate)))
    facts.append(("K fitted", ", ".join(map(str, args.k))))
    facts.append(("starts per K", str(args.n_init)))
    facts.append(("chosen K", f"{result.best_k} (lowest {result.criterion.upper()})"))
    html = render_lca_page(
        title=f"emnet lca: {Path(args.data).name}",
        data_summary=facts,
        selection_table=table_text,
        figures={name: Path(p).read_bytes() for name, p in figures.items()},
        summary_text=summary_text,
        classification=tables.get("classification"),
        warnings=[f"note: {t}" for t in data.notes] + [f"warning: {t}" for t in warned],
        extra_tables={"Coefficients": tables["coefficients"]} if "coefficients" in tables else None,
    )
    return write_text(out / "report.html", html)


def _safe_name(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("._") or "covariate"


def _fit_covariates_and_write(args: argparse.Namespace, data: Prepared, out: Path) -> list[Path]:
    """Each K of --k fitted with the covariates (latent class regression); the chosen one's
    summary (with G², X², df, class shares with SEs, entropy), Wald table and plots."""
    import time

    import numpy as np
    from sklearn.exceptions import ConvergenceWarning

    from emnet.mixture import BernoulliMixture, CategoricalMixture, plot_covariate_effect
    from emnet.mixture.inference.selection import (
        SelectionResult,
        admissible_ks,
        all_starts_set_aside,
        format_selection_table,
    )

    X, weights, Z = data.X, data.weights, data.covariates
    from emnet.mixture import LatentClassModel

    cls = {"binary": BernoulliMixture, "categorical": CategoricalMixture}.get(
        data.items, LatentClassModel
    )
    family = {}
    if data.measurement is not None:
        family = {"measurement": data.measurement, "covariance": args.covariance}
    method = args.covariate_method
    models, summaries, seconds = {}, {}, {}
    for k in args.k:
        t0 = time.perf_counter()
        model = cls(
            k, n_init=args.n_init, random_state=args.seed, max_iter=args.max_iter, tol=args.tol,
            **_search_budget(args, family), **family,
        )  # fmt: skip
        with warnings.catch_warnings():  # said per K by run_warnings
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.filterwarnings("ignore", "every start ended in a degenerate", UserWarning)
            try:
                model.fit(X, sample_weight=weights, covariates=Z, covariate_method=method)
            except ValueError as exc:
                raise ValueError(f"--data {args.data}: {exc}") from None
        seconds[int(k)] = time.perf_counter() - t0
        models[int(k)] = model.reorder("weight")  # classes by size, as printed
        summaries[int(k)] = model.summary(X, sample_weight=weights, covariates=Z)
    ks = [int(k) for k in args.k]
    col = lambda attr: np.array(
        [getattr(summaries[k], attr, np.nan) for k in ks], dtype=np.float64
    )  # fmt: skip
    crit = {c: col(c) for c in ("aic", "bic", "sabic", "caic")}
    df = np.array([np.nan if getattr(summaries[k], "df", None) is None else summaries[k].df
                   for k in ks])  # fmt: skip
    coded = data.measurement is None  # G², X², df need a table of response patterns
    n_obs = summaries[ks[0]].n_observations
    n_par = np.array([summaries[k].n_parameters for k in ks])
    identified = (df >= 0) | np.isnan(df) if coded else n_par <= n_obs
    collapsed = np.array([not coded and all_starts_set_aside(models[k]) for k in ks])
    scores = np.where(admissible_ks(identified, collapsed), crit[args.criterion], np.inf)
    best_k = ks[int(np.argmin(scores))]
    loglik = col("loglik")
    result = SelectionResult(
        ks=np.array(ks), loglik=loglik, loglik_per_sample=loglik / n_obs, bic=crit["bic"],
        aic=crit["aic"], n_params=np.array([summaries[k].n_parameters for k in ks]),
        n_iter=np.array([models[k].n_iter_ for k in ks]),
        converged=np.array([bool(models[k].converged_) for k in ks]),
        seconds=np.array([seconds[k] for k in ks]), criterion=args.criterion, best_k=best_k,
        best_model=models[best_k], models=models, sabic=crit["sabic"], caic=crit["caic"],
        entropy=col("entropy"), g2=col("g2") if coded else None,
        x2=col("x2") if coded else None, df=df if coded else None,
        n_at_best=np.array([models[k].n_starts_at_best() for k in ks]),
        n_set_aside=None if coded else np.array([models[k].n_degenerate_starts_ for k in ks]),
        identified=None if coded else identified, all_set_aside=None if coded else collapsed,
    )  # fmt: skip
    model, summary = models[best_k], summaries[best_k]
    regression = hasattr(model, "coef_")  # a one-class LatentClassModel has none
    warned = run_warnings(args, result)
    if regression:
        warned += separation_warnings(model, Z)
    _warn(warned)
    from emnet.mixture.covariates.logit import learn_design

    design = model.covariate_design_ if regression else learn_design(Z, len(Z))[0]
    kinds = dict(zip(design.columns, design.kinds, strict=True))
    print(
        _headline(
            args, data,
            "; covariates " + ", ".join(f"{c} ({kinds[c]})" for c in Z.columns) + f", {method}",
        )
    )  # fmt: skip
    table_text = format_selection_table(result) + " (with the covariates)"
    print(table_text)
    print()
    summary_text = str(summary)
    print(summary_text)
    figures = {}
    numeric = [c for c in Z.columns if kinds[c] == "numeric"]
    if numeric and regression:
        name = f"covariate_effect_{_safe_name(numeric[0])}.png"
        figures[name] = plot_covariate_effect(model, numeric[0], data=Z, path=out / name)
    record = {
        **_run_record(args, data),
        "covariates": list(map(str, Z.columns)),
        "covariate_method": method,
        "criterion": args.criterion,
        "best_k": int(best_k),
        "table": result.table(),
        "warnings": warned,
    }
    se = _summary_errors(summary)
    return _write_outputs(
        args, data, out, record, result, model, summary, se, table_text, summary_text, warned,
        extra_figures=figures,
    )  # fmt: skip


def _summary_errors(summary: Any) -> Any:
    """The standard errors a summary computed, in the shape plot_profile takes (a
    LatentClassModel's summary keeps its own; the others' are the shares and item
    probabilities), so that they are not computed a second time."""
    from types import SimpleNamespace

    kept = summary.extra.get("standard_errors")
    if kept is not None:
        return kept
    return SimpleNamespace(weights=summary.weights_se, probs=summary.probs_se)


def _search_budget(args: argparse.Namespace, family: dict[str, Any]) -> dict[str, float]:
    """``search_budget``: ``--search-budget`` when given; else 0.5 for binary and
    categorical items (BernoulliMixture's own default is 0) and the model's default for a
    measurement with continuous or count columns (``family``: LatentClassModel's)."""
    if args.search_budget is not None:
        return {"search_budget": args.search_budget}
    return {} if family else {"search_budget": DEFAULT_SEARCH_BUDGET}
