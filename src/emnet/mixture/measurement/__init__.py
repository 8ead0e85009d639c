"""Measurement types of the latent class family: one module per type behind one contract
(:mod:`emnet.mixture.measurement.base`), and :func:`make_measurement`, the registry that
builds a block from its type name."""

from __future__ import annotations

from typing import Any

from emnet.mixture.measurement.base import FUTURE_METHODS, Measurement
from emnet.mixture.measurement.binary import Binary
from emnet.mixture.measurement.categorical import Categorical, CategoricalParams
from emnet.mixture.measurement.gaussian import STRUCTURES, Gaussian, GaussianParams
from emnet.mixture.measurement.poisson import Poisson, PoissonParams

TYPES = ("binary", "categorical", "gaussian", "poisson")


def make_measurement(name: str, **options: Any) -> Measurement:
    """A fresh block of type ``name`` ("gaussian": ``covariance``, ``reg_covar``;
    "categorical" and "binary": ``prob_concentration``)."""
    if name == "gaussian":
        return Gaussian(options.get("covariance", "VVI"), options.get("reg_covar", 1e-6))
    if name == "poisson":
        return Poisson()
    if name == "categorical":
        return Categorical(options.get("prob_concentration", 1.0))
    if name == "binary":
        return Binary(options.get("prob_concentration", 1.0))
    raise ValueError(f"measurement: expected one of {TYPES}, got {name!r}")


__all__ = [
    "FUTURE_METHODS",
    "STRUCTURES",
    "TYPES",
    "Binary",
    "Categorical",
    "CategoricalParams",
    "Gaussian",
    "GaussianParams",
    "Measurement",
    "Poisson",
    "PoissonParams",
    "make_measurement",
]
