"""Answers of categorical items as integer codes (the input side of latent class analysis).

:func:`learn_encoding` reads each item's categories from the data: numbers and bools in
sorted order, strings sorted (if they cannot be ordered, in order of appearance), pandas
categoricals in their declared order, always only the answers that occur. Answers equal as
numbers are one answer (1, 1.0 and np.int8(1) are the answer 1), and whole-number floats
are labelled as integers (1.0, 2.0 → 1, 2). A column that mixes numbers with text (1 and
"1") or with True/False is a ValueError naming it: those would silently become different
answers (or, for True and 1, the same one). Missing values
are NaN, None, pd.NA and NaT (``pandas.isna``). :func:`encode` turns data into an (n, J)
int16 array of codes 0..R_j − 1, with −1 for missing; an answer that is not among the
learned categories is a ValueError naming the item and the value.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from sklearn.utils import check_array

MAX_CATEGORIES = 32_000


class Encoding(NamedTuple):
    categories: list[np.ndarray]
    feature_names: list[str] | None


def _columns(X: Any) -> tuple[list[Any], list[str] | None]:
    """The items of X as a list of 1-D columns (Series for DataFrames), and their names."""
    if isinstance(X, pd.DataFrame):
        return [X.iloc[:, j] for j in range(X.shape[1])], [str(c) for c in X.columns]
    if hasattr(X, "tocsr") and hasattr(X, "nnz"):
        raise TypeError(
            "X: sparse matrices are not supported for categorical items (pass a dense array)"
        )
    if not isinstance(X, np.ndarray):
        try:
            X = np.asarray(X)
        except ValueError:
            raise ValueError("X: expected a 2-D table of answers (rows of equal length)") from None
    # scikit-learn's checks and messages for 1-D, empty and complex input; dtype kept
    arr = check_array(X, dtype=None, ensure_all_finite=False, ensure_2d=True)
    return [arr[:, j] for j in range(arr.shape[1])], None


def _name(names: list[str] | None, j: int) -> str:
    return f"item {j}" if names is None else f"item {names[j]!r}"


def _missing(col: Any) -> np.ndarray:
    return np.asarray(pd.isna(col), dtype=bool)


def _learn_column(col: Any, label: str) -> np.ndarray:
    if isinstance(col, pd.Series) and isinstance(col.dtype, pd.CategoricalDtype):
        present = set(col.dropna().unique().tolist())
        cats = [c for c in col.cat.categories.tolist() if c in present]
        return np.asarray(cats)
    values = np.asarray(col.to_numpy() if isinstance(col, pd.Series) else col)
    missing = _missing(values)
    seen = values[~missing]
    if len(seen) == 0:
        raise ValueError(f"X: {label} has no observed answer (every value is missing)")
    if seen.dtype.kind in "biuf":
        if seen.dtype.kind == "f" and not np.all(np.isfinite(seen)):
            raise ValueError(f"X: {label} holds an infinite value")
        return _integral(np.unique(seen))
    items = seen.tolist()
    kinds = [_kind(v) for v in items]
    present = set(kinds)
    if "number" in present and "text" in present:
        num, txt = items[kinds.index("number")], items[kinds.index("text")]
        raise ValueError(
            f"X: {label} mixes numbers and text (e.g. {num!r} and {txt!r}), which would be "
            "different answers; make the column all numbers or all text"
        )
    if "number" in present and "bool" in present:
        num, flag = items[kinds.index("number")], items[kinds.index("bool")]
        raise ValueError(
            f"X: {label} mixes True/False with numbers (e.g. {flag!r} and {num!r}); make the "
            "column all numbers or all True/False"
        )
    if present == {"bool"}:
        return np.unique(np.asarray(items, dtype=bool))
    if present == {"text"}:
        return np.unique(np.asarray(items, dtype=str))
    if present == {"number"}:  # 1 and 1.0 are one answer, labelled 1
        arr = np.asarray([float(v) if isinstance(v, float | np.floating) else v for v in items])
        if arr.dtype.kind == "O":
            arr = arr.astype(np.float64)
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise ValueError(f"X: {label} holds an infinite value")
        return _integral(np.unique(arr))
    try:
        cats = sorted(set(items))
    except TypeError:
        cats = list(dict.fromkeys(items))
    out = np.empty(len(cats), dtype=object)
    out[:] = cats
    return out


def _kind(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "bool"
    if isinstance(value, int | float | np.number):
        return "number"
    if isinstance(value, str):
        return "text"
    return "other"


def _integral(cats: np.ndarray) -> np.ndarray:
    """Float categories that are all whole numbers (1.0, 2.0) as integers (1, 2), so they
    print as the codes they are; others unchanged."""
    if cats.dtype.kind != "f" or not len(cats):
        return cats
    if np.all(cats == np.round(cats)) and np.all(np.abs(cats) < 2.0**53):
        return cats.astype(np.int64)
    return cats


def learn_encoding(X: Any) -> Encoding:
    """Each item's categories (see the module docstring)."""
    columns, names = _columns(X)
    cats = []
    for j, col in enumerate(columns):
        c = _learn_column(col, _name(names, j))
        if len(c) > MAX_CATEGORIES:
            raise ValueError(
                f"X: {_name(names, j)} has {len(c)} categories (at most {MAX_CATEGORIES})"
            )
        cats.append(c)
    return Encoding(cats, names)


def encode(X: Any, encoding: Encoding) -> np.ndarray:
    """(n, J) int16 codes of X under ``encoding`` (−1 = missing); checks every value."""
    columns, names = _columns(X)
    J = len(encoding.categories)
    if len(columns) != J:
        raise ValueError(
            f"X has {len(columns)} features, but CategoricalMixture is expecting {J} "
            "features as input (one per item)"
        )
    if (
        names is not None
        and encoding.feature_names is not None
        and names != list(encoding.feature_names)
    ):
        raise ValueError(
            f"X: the item names {names} differ from those seen in fit {list(encoding.feature_names)}"
        )
    label_names = names if names is not None else encoding.feature_names
    n = len(columns[0])
    codes = np.empty((n, J), dtype=np.int16)
    for j, (col, cats) in enumerate(zip(columns, encoding.categories, strict=True)):
        values = col.to_numpy(dtype=object) if isinstance(col, pd.Series) else np.asarray(col)
        missing = _missing(values)
        if values.dtype.kind == "O" and np.asarray(cats).dtype.kind in "iuf":
            flags = [i for i, v in enumerate(values) if isinstance(v, bool | np.bool_)]
            if flags:  # pandas would take True for the answer 1
                i = flags[0]
                raise ValueError(
                    f"X: {_name(label_names, j)} has the answer {values[i]!r} (row {i}); its "
                    f"answers are numbers: {np.asarray(cats)[:10].tolist()}"
                )
        idx = pd.Index(cats).get_indexer(pd.Index(values)) if len(values) else np.zeros(0, int)
        unseen = (idx < 0) & ~missing
        if unseen.any():
            i = int(np.flatnonzero(unseen)[0])
            raise ValueError(
                f"X: {_name(label_names, j)} has the answer {values[i]!r} (row {i}) that was "
                f"not seen in fit; its categories are {np.asarray(cats)[:10].tolist()}"
            )
        codes[:, j] = np.where(missing, -1, idx)
    empty = (codes < 0).all(axis=1)
    if empty.any():
        i = int(np.flatnonzero(empty)[0])
        raise ValueError(f"X: row {i} has no observed answer (every item is missing)")
    return codes


def categories_to_json(categories: list[np.ndarray]) -> list[dict[str, Any]]:
    """The categories as JSON (kind + values); only numbers, bools and strings."""
    out = []
    for j, cats in enumerate(categories):
        arr = np.asarray(cats)
        kind = arr.dtype.kind
        if kind == "O":
            raise ValueError(
                f"save: item {j} has categories that are not numbers, bools or strings; "
                "recode them (e.g. as strings) to save the model"
            )
        out.append({"kind": kind, "values": arr.tolist()})
    return out


def categories_from_json(data: Any) -> list[np.ndarray]:
    if not isinstance(data, list):
        raise ValueError("the categories are missing from the metadata")
    cats = []
    for entry in data:
        if not isinstance(entry, dict) or not isinstance(entry.get("values"), list):
            raise ValueError("the categories in the metadata are malformed")
        kind, values = entry.get("kind"), entry["values"]
        dtype = {"b": bool, "i": np.int64, "u": np.int64, "f": np.float64, "U": str}.get(kind)
        if dtype is None or not values:
            raise ValueError(f"the categories in the metadata are malformed (kind {kind!r})")
        arr = np.asarray(values, dtype=dtype)
        if arr.ndim != 1 or len(np.unique(arr)) != len(arr):
            raise ValueError("the categories in the metadata are malformed (repeated values)")
        cats.append(arr)
    return cats


# -- learning the encoding chunk by chunk (the Dask backends) --------------------------------
def _distinct_column(col: Any) -> Any:
    """A column's distinct observed answers (a pandas categorical keeps its dtype)."""
    if isinstance(col, pd.Series) and isinstance(col.dtype, pd.CategoricalDtype):
        return pd.Series(col.dropna().unique())
    values = np.asarray(col.to_numpy() if isinstance(col, pd.Series) else col)
    seen = values[~_missing(values)]
    if seen.dtype.kind in "biuf":
        return np.unique(seen)
    # by (type, value): True and 1, or 1 and "1", stay apart (learn_encoding's checks)
    kept = list(dict.fromkeys((type(v), v) for v in seen.tolist()))
    out = np.empty(len(kept), dtype=object)
    out[:] = [v for _, v in kept]
    return out


def _padded(parts: list[Any], missing: Any) -> list[Any]:
    """The columns brought to one length by repeating their first value (which changes
    no set of answers), or ``missing`` for an empty column."""
    n = max((len(p) for p in parts), default=0)
    out = []
    for p in parts:
        if len(p) == n:
            out.append(p)
        elif isinstance(p, pd.Series):
            fill = p.iloc[[0] * (n - len(p))] if len(p) else pd.Series([missing] * n)
            out.append(pd.concat([p, fill], ignore_index=True) if len(p) else fill)
        elif len(p):
            out.append(np.concatenate([p, np.repeat(p[:1], n - len(p))]))
        else:
            out.append(np.full(n, np.nan if p.dtype.kind == "f" else None, dtype=p.dtype))
    return out


def distinct_values(X: Any) -> Any:
    """Each item's distinct observed answers, as a small table of X's kind (an array of its
    dtype, or a DataFrame keeping its names and pandas categoricals): what
    :func:`learn_encoding` reads (which answers occur), so learning from the merged
    tables of every chunk (:func:`merge_distinct`) gives the categories of all rows. (The
    one difference: strings that cannot be sorted are kept in order of first appearance
    per chunk.)"""
    if isinstance(X, pd.DataFrame):
        parts = _padded([_distinct_column(X.iloc[:, j]) for j in range(X.shape[1])], None)
        frame = pd.concat([pd.Series(p).reset_index(drop=True) for p in parts], axis=1)
        frame.columns = X.columns
        return frame
    columns, _ = _columns(X)
    parts = _padded([_distinct_column(c) for c in columns], None)
    if not parts:
        return np.asarray(X)[:0]
    return np.column_stack(parts) if len(parts[0]) else np.asarray(X)[:0]


def merge_distinct(a: Any, b: Any) -> Any:
    """The distinct answers of two chunks together (:func:`distinct_values`)."""
    if isinstance(a, pd.DataFrame):
        both = pd.concat([a, b], ignore_index=True)
        for j in range(both.shape[1]):  # keep a pandas categorical's dtype
            if isinstance(a.dtypes.iloc[j], pd.CategoricalDtype):
                both[both.columns[j]] = both.iloc[:, j].astype(a.dtypes.iloc[j])
        return distinct_values(both)
    if len(a) == 0:
        return b
    if len(b) == 0:
        return a
    A, B = np.asarray(a), np.asarray(b)
    both = (
        np.concatenate([A, B])
        if A.dtype == B.dtype
        else np.concatenate([A.astype(object), B.astype(object)])
    )
    return distinct_values(both)
