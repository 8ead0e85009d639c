"""Latent class models by EM (SPEC §1, §1b, §1c): the public names.

Estimators: :class:`BernoulliMixture` (binary items), :class:`CategoricalMixture`
(polytomous items) and :class:`LatentClassModel` (any declared measurement: binary,
categorical, Gaussian — latent profile analysis — Poisson, or a mix). Choosing K:
:func:`select_n_components` (:class:`SelectionResult`, :func:`plot_bic`). Results:
:class:`LCASummary`. Figures: :func:`plot_profile`, :func:`plot_covariate_effect`,
:func:`plot_means`, :func:`plot_history`.

The layout by role (docs/ARCHITECTURE.md): ``core/`` the one EM loop, ``measurement/``
the contract and one module per item type, ``estimators/``, ``kernels/`` (compiled and
pure log-domain math), ``backends/`` (numpy, torch, Dask, online), ``inference/``
(statistics, selection, summary), ``covariates/``, ``plots/``, ``persistence.py``.
"""

from emnet.mixture.estimators.bernoulli import BernoulliMixture
from emnet.mixture.estimators.categorical import CategoricalMixture
from emnet.mixture.estimators.latent import LatentClassModel
from emnet.mixture.inference.selection import SelectionResult, plot_bic, select_n_components
from emnet.mixture.inference.summary import LCASummary
from emnet.mixture.plots.common import plot_history, plot_means
from emnet.mixture.plots.covariate_effect import plot_covariate_effect
from emnet.mixture.plots.profile import plot_profile

__all__ = [
    "BernoulliMixture",
    "CategoricalMixture",
    "LCASummary",
    "LatentClassModel",
    "SelectionResult",
    "plot_bic",
    "plot_covariate_effect",
    "plot_history",
    "plot_means",
    "plot_profile",
    "select_n_components",
]
