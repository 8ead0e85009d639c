"""Loading saved mixtures: npz + JSON, never pickle, and nothing taken on trust.

A file written by ``save`` is an ``.npz`` archive with one JSON string ``meta`` (format,
class, constructor parameters, fitted scalars, distribution state) and float/str arrays.
:func:`load_model` checks all of it before a model exists: the archive opens without
pickle, ``meta`` is a JSON object of the right class and format, every parameter name is
one of the estimator's (and the constructor accepts the values), every array name is one
the class writes (an unknown key is an error, so no file can set an arbitrary attribute
such as ``predict``), the scalars have their types and ranges, and the distribution checks
its arrays (shapes, probabilities in [0, 1] summing to 1, the number of components).
Every failure is a ValueError that names the file.
"""

from __future__ import annotations

import json
import zipfile
from numbers import Integral, Real
from typing import Any

import numpy as np

FORMAT_VERSION = 1
_BASE_ARRAYS = ("history_", "init_lower_bounds_", "feature_names_in_")
_COVARIATE_ARRAYS = ("coef_", "coef_se_", "coef_cov_", "classification_error_")


class _Bad(ValueError):
    """A problem inside the file (re-raised with the file's name)."""


def _open(path: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    try:
        loaded = np.load(path, allow_pickle=False)
    except IsADirectoryError:
        raise _Bad("is a directory, not a saved model") from None
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise _Bad(f"cannot be read as an npz archive ({type(exc).__name__}: {exc})") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise _Bad("holds a single array (.npy), not a saved model (.npz)")
    try:
        with loaded as npz:
            if "meta" not in npz.files:
                raise _Bad("has no 'meta' entry (not written by save())")
            meta_text = npz["meta"]
            arrays = {k: npz[k] for k in npz.files if k != "meta"}
    except _Bad:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise _Bad(f"is damaged ({type(exc).__name__}: {exc})") from None
    try:
        meta = json.loads(str(meta_text))
    except (TypeError, ValueError):
        raise _Bad("has a 'meta' entry that is not JSON") from None
    if not isinstance(meta, dict):
        raise _Bad("has a 'meta' entry that is not a JSON object")
    return meta, arrays


def _check_scalars(model: Any, meta: dict[str, Any]) -> None:
    checks = {
        "converged_": lambda v: isinstance(v, bool),
        "n_iter_": lambda v: isinstance(v, Integral) and not isinstance(v, bool) and v >= 0,
        "lower_bound_": lambda v: isinstance(v, Real) and not isinstance(v, bool),
        "n_features_in_": lambda v: isinstance(v, Integral) and not isinstance(v, bool) and v >= 1,
    }
    for name in model._fitted_scalars:
        if name not in meta:
            raise _Bad(f"has no {name!r} in its metadata")
        value = meta[name]
        check = checks.get(name)
        if check is not None and not check(value):
            raise _Bad(f"has an invalid {name!r}: {value!r}")
        setattr(model, name, value)


def load_model(cls: type, path: Any) -> Any:
    """Read and check a model written by ``cls.save`` (see the module docstring)."""
    try:
        return _load(cls, path)
    except _Bad as exc:
        raise ValueError(f"path: {path} is not a saved {cls.__name__}: it {exc}") from None


def _load(cls: type, path: Any) -> Any:
    meta, arrays = _open(path)
    if meta.get("class") != cls.__name__:
        raise _Bad(f"holds {meta.get('class')!r}, not a {cls.__name__}")
    if meta.get("format") != FORMAT_VERSION:
        raise _Bad(f"has format {meta.get('format')!r}; this emnet reads {FORMAT_VERSION}")
    params = meta.get("params")
    if not isinstance(params, dict):
        raise _Bad("has no parameter table in its metadata")
    allowed = set(cls().get_params(deep=False))
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise _Bad(f"names unknown parameters {unknown}")
    params = dict(params)
    state_arrays = set(cls._saved_array_names) | set(_BASE_ARRAYS)
    if "covariates" in meta:
        state_arrays |= set(_COVARIATE_ARRAYS)
    for key in list(arrays):
        if key.startswith("param_"):
            name = key[len("param_") :]
            if name not in allowed:
                raise _Bad(f"holds an array for an unknown parameter {name!r}")
            params[name] = arrays.pop(key)
        elif key not in state_arrays:
            raise _Bad(f"holds an unknown entry {key!r}")
        elif arrays[key].dtype == object:
            raise _Bad(f"holds an object array {key!r}")
    if "dtype" in params:
        try:
            params["dtype"] = np.dtype(params["dtype"]).type
        except TypeError:
            raise _Bad(f"has an invalid dtype {params['dtype']!r}") from None
    try:
        model = cls(**params)
        model._check_parameters()
    except (TypeError, ValueError) as exc:
        raise _Bad(f"has invalid parameters ({exc})") from None
    _check_scalars(model, meta)
    history = arrays.pop("history_", None)
    if history is None or history.ndim != 1 or history.dtype.kind != "f":
        raise _Bad("has no valid 'history_' array")
    model.history_ = history
    if "init_lower_bounds_" in arrays:
        model.init_lower_bounds_ = arrays.pop("init_lower_bounds_").astype(np.float64)
    if "feature_names_in_" in arrays:
        names = arrays.pop("feature_names_in_")
        if names.ndim != 1 or len(names) != model.n_features_in_ or names.dtype.kind != "U":
            raise _Bad("has feature_names_in_ that do not match n_features_in_")
        model.feature_names_in_ = names.astype(object)
    state = meta.get("state", {})
    if not isinstance(state, dict):
        raise _Bad("has a 'state' entry that is not a JSON object")
    try:
        model._restore_state(arrays, state)
        if "covariates" in meta:
            _restore_covariates(model, meta["covariates"], arrays)
    except (TypeError, ValueError, KeyError, IndexError) as exc:
        raise _Bad(f"has invalid fitted arrays ({exc})") from None
    return model


def design_to_json(design: Any) -> dict[str, Any]:
    """A covariate design as JSON (levels must be numbers, bools or strings)."""
    levels = []
    for name, lv in zip(design.columns, design.levels, strict=True):
        if lv is None:
            levels.append(None)
            continue
        values = [v.item() if isinstance(v, np.generic) else v for v in lv]
        if not all(isinstance(v, str | int | float | bool) for v in values):
            raise ValueError(
                f"save: covariate {name!r} has levels that are not numbers, bools or "
                "strings; recode them to save the model"
            )
        levels.append(values)
    return {"columns": list(design.columns), "kinds": list(design.kinds), "levels": levels,
            "names": list(design.names)}  # fmt: skip


def _restore_covariates(model: Any, meta: Any, arrays: dict[str, np.ndarray]) -> None:
    from emnet.mixture.covariates.logit import Design

    if not isinstance(meta, dict) or not isinstance(meta.get("design"), dict):
        raise ValueError("the covariate metadata is malformed")
    d = meta["design"]
    keys = ("columns", "kinds", "levels", "names")
    if not all(isinstance(d.get(k), list) for k in keys):
        raise ValueError("the covariate design is malformed")
    if not set(d["kinds"]) <= {"numeric", "categorical"} or len(d["kinds"]) != len(d["columns"]):
        raise ValueError("the covariate design is malformed")
    design = Design(*(list(d[k]) for k in keys))
    K, p = model.n_components, len(design.names)
    coef, se, cov = (arrays.pop(k, None) for k in ("coef_", "coef_se_", "coef_cov_"))
    for name, a, shape in (("coef_", coef, (K - 1, p)), ("coef_se_", se, (K - 1, p)),
                           ("coef_cov_", cov, ((K - 1) * p, (K - 1) * p))):  # fmt: skip
        if a is None or a.dtype.kind != "f" or a.shape != shape:
            raise ValueError(f"{name} must be a float array of shape {shape}")
    if not np.all(np.isfinite(coef)):
        raise ValueError("coef_ must be finite")
    if meta.get("method") not in ("one-step", "bch", "ml", "naive"):
        raise ValueError(f"unknown covariate method {meta.get('method')!r}")
    model.coef_, model.coef_se_, model.coef_cov_ = coef, se, cov
    model.covariate_design_ = design
    model.covariate_method_ = meta["method"]
    if "classification_error_" in arrays:
        model.classification_error_ = arrays.pop("classification_error_")


def check_weights_array(weights: Any, n_components: int) -> np.ndarray:
    """Fitted mixing weights: (K,) finite, >= 0, summing to 1."""
    if weights is None:
        raise ValueError("weights_ is missing")
    w = np.asarray(weights)
    if w.dtype.kind != "f" or w.shape != (n_components,):
        raise ValueError(f"weights_ must be {n_components} floats, got shape {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or abs(w.sum() - 1.0) > 1e-6:
        raise ValueError("weights_ must be non-negative and sum to 1")
    return w.astype(np.float64)


def check_probability_table(name: str, table: Any, n_rows: int) -> np.ndarray:
    """A fitted (K, ·) float table with every entry in [0, 1]."""
    if table is None:
        raise ValueError(f"{name} is missing")
    t = np.asarray(table)
    if t.dtype.kind != "f" or t.ndim != 2 or t.shape[0] != n_rows:
        raise ValueError(f"{name} must be a ({n_rows}, ·) float table, got shape {t.shape}")
    if not np.all(np.isfinite(t)) or np.any((t < 0) | (t > 1)):
        raise ValueError(f"{name} must hold probabilities in [0, 1]")
    return t.astype(np.float64)
