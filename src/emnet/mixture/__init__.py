"""Mixtures of multivariate Bernoullis fitted by EM (SPEC §1).

Pure log-domain functions (:func:`log_bernoulli`, :func:`e_step`, :func:`m_step`,
:func:`expected_complete_loglik`), the sufficient-statistics interface the EM loop runs on
(:class:`SuffStats`, :func:`chunk_stats`, :func:`add_stats`, :func:`m_step_from_stats`), and
the scikit-learn style estimator :class:`BernoulliMixture`.
"""

from emnet.mixture._backend import NumpyBackend
from emnet.mixture._bernoulli import BernoulliMixture
from emnet.mixture._categorical import CategoricalMixture
from emnet.mixture._latent import LatentClassModel as LatentClassModel
from emnet.mixture._math import (
    MEAN_CLAMP,
    SuffStats,
    add_stats,
    chunk_stats,
    e_step,
    expected_complete_loglik,
    log_bernoulli,
    log_prior,
    m_step,
    m_step_from_stats,
)
from emnet.mixture.covariate_plot import plot_covariate_effect
from emnet.mixture.profile import plot_profile
from emnet.mixture.selection import SelectionResult, plot_bic, select_n_components

__all__ = [
    "MEAN_CLAMP",
    "BernoulliMixture",
    "CategoricalMixture",
    "NumpyBackend",
    "SuffStats",
    "add_stats",
    "chunk_stats",
    "e_step",
    "expected_complete_loglik",
    "log_bernoulli",
    "log_prior",
    "m_step",
    "m_step_from_stats",
    "SelectionResult",
    "plot_bic",
    "plot_covariate_effect",
    "plot_profile",
    "select_n_components",
]
