"""Small public latent-class data sets shipped with emnet (sources in ``README.md`` here).

Each loader returns a pandas DataFrame with the items as named columns, read from the
package (no download): :func:`lsat6`, :func:`lsat7` (1000 × 5, 0/1) and :func:`values`
(the Stouffer–Toby role-conflict items, 216 × 4, coded 1/2). ``VALUES_POLCA_LOGLIK`` holds
poLCA's documented maxima for ``values``.
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

__all__ = ["VALUES_POLCA_LOGLIK", "load", "lsat6", "lsat7", "values"]

NAMES = ("lsat6", "lsat7", "values")
VALUES_POLCA_LOGLIK = {1: -543.6498, 2: -504.4677, 3: -503.3011}
"""Maximum log-likelihood of the latent class model on ``values`` by K (poLCA's docs)."""


def load(name: str) -> pd.DataFrame:
    """The data set ``name`` (one of ``NAMES``) as a DataFrame of integer answers."""
    if name not in NAMES:
        raise ValueError(f"name: expected one of {NAMES}, got {name!r}")
    with resources.files(__package__).joinpath(f"{name}.csv").open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh)


def lsat6() -> pd.DataFrame:
    """LSAT section 6: 1000 examinees × 5 items (Q1–Q5), 1 = right (Bock & Lieberman 1970)."""
    return load("lsat6")


def lsat7() -> pd.DataFrame:
    """LSAT section 7: 1000 examinees × 5 items (Q1–Q5), 1 = right."""
    return load("lsat7")


def values() -> pd.DataFrame:
    """Stouffer & Toby (1951) role-conflict items A–D for 216 respondents, coded 1/2."""
    return load("values")
