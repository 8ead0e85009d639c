"""The coded-item interface: what the latent class statistics, covariates, BLRT, summary
and profile ask of a latent class estimator whose items are answers (SPEC §1b).

``BernoulliMixture`` (two answers per item) and ``CategoricalMixture`` hold their item
parameters as one log θ table of shape (Σ_j R_j, K): the rows of item j are
``offsets[j]:offsets[j + 1]``, column k is class k, each item's rows sum to 1 in
probability. Data are coded once into 0-based answer codes (n, J) with −1 for missing.
Everything in ``inference/``, ``covariates/`` and ``plots/`` that works on these two
estimators goes through the methods declared here, never through the estimator's type.
(:class:`~emnet.mixture.estimators.latent.LatentClassModel` presents the same numbers
through its measurement blocks instead: ``emnet.mixture.measurement``.)
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from emnet.mixture.core.em import BaseEMMixture
from emnet.mixture.measurement.base import ProfileItem

__all__ = ["CodedLatentClassMixture", "checked_answer_errors"]


def checked_answer_errors(standard_errors: Any, probs: list[np.ndarray]) -> list[np.ndarray] | None:
    """``standard_errors`` (the result of ``model.standard_errors(X)``, or a list of
    (K, R_j) arrays) as a list shaped like ``probs``; NaN (boundary) stays NaN."""
    if standard_errors is None:
        return None
    se = getattr(standard_errors, "probs", standard_errors)
    try:
        arrays = [np.asarray(s, dtype=np.float64) for s in se]
    except (TypeError, ValueError):
        raise ValueError(
            "standard_errors: expected model.standard_errors(X) or a list of (K, R_j) arrays"
        ) from None
    if len(arrays) != len(probs) or any(a.shape != p.shape for a, p in zip(arrays, probs)):
        raise ValueError(
            "standard_errors: shapes do not match the model's item-response probabilities "
            f"({[p.shape for p in probs]})"
        )
    return arrays


class CodedLatentClassMixture(BaseEMMixture):
    """A latent class estimator over coded items (see the module docstring)."""

    #: (J + 1,) int64: item j's rows of the log θ table are offsets[j]:offsets[j+1]
    #: (set by the fit, or a property of the estimator)
    _item_offsets: np.ndarray

    @abstractmethod
    def _codes_for(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """(codes (n, J) int, 0-based, −1 missing; offsets) of X in the fitted coding."""

    @abstractmethod
    def _table_of(self, params: Any) -> np.ndarray:
        """The (Σ R_j, K) log θ table of a parameter object."""

    @abstractmethod
    def _table_m_step(self, stats: Any, prev_log_table: np.ndarray) -> np.ndarray:
        """The M-step of the log θ table from coded statistics (with the estimator's prior);
        an answer without data keeps its previous value."""

    @abstractmethod
    def _table_log_prior(self, log_table: np.ndarray) -> float:
        """The estimator's log prior on θ (0 for maximum likelihood)."""

    @abstractmethod
    def _from_table(self, weights: np.ndarray, log_table: np.ndarray) -> Any:
        """The estimator's parameter object from class shares (K,) and a log θ table."""

    @abstractmethod
    def _shares_of(self, params: Any) -> np.ndarray:
        """The (K,) class shares of a parameter object."""

    @abstractmethod
    def _answers(self) -> list[list[Any]]:
        """Per item its answers in code order (the labels users gave)."""

    def _answer_rows(self, full_offsets: np.ndarray) -> np.ndarray | None:
        """The rows of a log θ table over every answer (item j's rows from
        ``full_offsets[j]``) that this fit's coding keeps, in its order; None when it
        keeps them all (a bootstrap sample may miss an answer)."""
        return None

    def _profile_items(self, standard_errors: Any = None) -> list[ProfileItem]:
        """One "answers" panel per item: its (K, R_j) probabilities, their standard errors
        (``standard_errors``: ``model.standard_errors(X)`` or a list of (K, R_j) arrays) and
        its answers; the items are named by :func:`emnet.mixture.core.validation.item_names`."""
        from emnet.mixture.core.validation import item_names

        check_is_fitted(self, "weights_")
        table = np.exp(self._table_of(self._get_fitted())).T
        offsets = self._item_offsets
        answers = self._answers()
        names = item_names(self, None, len(answers))
        tables = [table[:, offsets[j] : offsets[j + 1]] for j in range(len(answers))]
        se = checked_answer_errors(standard_errors, tables)
        items = []
        for j, name in enumerate(names):
            s = None if se is None else se[j]
            items.append(ProfileItem(str(name), "answers", tables[j].copy(), s, answers=answers[j]))
        return items
