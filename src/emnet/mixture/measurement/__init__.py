"""Measurement types of the latent class family: one module per type behind one contract
(:mod:`emnet.mixture.measurement.base`), and :func:`make_measurement`, the registry that
builds a block from its type name."""

from __future__ import annotations

from typing import Any

from emnet.mixture.measurement.base import FUTURE_METHODS, Measurement
from emnet.mixture.measurement.gaussian import STRUCTURES, Gaussian, GaussianParams
from emnet.mixture.measurement.poisson import Poisson, PoissonParams

TYPES = ("gaussian", "poisson")


def make_measurement(name: str, **options: Any) -> Measurement:
    """A fresh block of type ``name`` ("gaussian": ``covariance``, ``reg_covar``)."""
    if name == "gaussian":
        return Gaussian(options.get("covariance", "VVI"), options.get("reg_covar", 1e-6))
    if name == "poisson":
        return Poisson()
    raise ValueError(f"measurement: expected one of {TYPES}, got {name!r}")


__all__ = [
    "FUTURE_METHODS",
    "STRUCTURES",
    "TYPES",
    "Gaussian",
    "GaussianParams",
    "Measurement",
    "Poisson",
    "PoissonParams",
    "make_measurement",
]
