"""The measurement contract: what one block of items of one type supplies (SPEC §1c).

A latent class model is P(x_i) = Σ_k π_k(z_i) Π_b f_b(x_ib | θ_kb): a product over item
blocks b, each of one measurement type (Gaussian, Poisson, ...). Everything about the
*type* of an item lives behind :class:`Measurement`; everything about the *latent
structure* (class shares, covariates, occasions, groups) lives outside it and only ever
adds per-class log-likelihoods of blocks. Shapes below: ``n`` rows of a chunk, ``K``
classes, ``D`` columns of the block. Missing entries are NaN and are marginalised inside
the block (they drop out of its factor).

The pieces, each small and pure (no state but the hyperparameters and the data-dependent
constants learned once by :meth:`Measurement.setup`):

- ``setup(X, sample_weight)``: learn the block's data constants (e.g. the column
  variances that the Gaussian covariance floor is relative to). Called once per fit.
- ``prepare(X) -> chunk``: the rows in the form the block computes on (e.g. grouped by
  missingness pattern). Every method below that takes ``X`` accepts a raw (n, D) float
  array with NaN or a prepared chunk.
- ``log_likelihood(params, X) -> (n, K)``: log f_b(x_ib | θ_kb), missing marginalised.
- ``sufficient_stats(params, X, resp (n, K), sample_weight (n,) | None) -> stats``: the
  block's expected complete-data statistics of one E-step; *additive over chunks*
  (``add_stats``), so a chunked or distributed backend sums them. ``params`` is the
  current parameter value: for a Gaussian with missing entries the exact E-step needs
  the conditional moments E[x_mis | x_obs, k] and Cov[x_mis | x_obs, k] under it.
- ``m_step(stats) -> params``: the maximiser of the expected complete-data log-likelihood
  plus :meth:`log_prior` (so EM never decreases the penalised log-likelihood).
- ``log_prior(params) -> float``; ``n_parameters(K) -> int`` (free parameters of the
  block; the K − 1 class shares are the model's).
- ``to_unconstrained(params) -> 1-D array`` and ``from_unconstrained(vector, like)``: a
  parametrisation in which every point is a valid model (log variances, Cholesky factors
  with log diagonal, log rates). SQUAREM extrapolates there; later Newton steps and
  standard errors differentiate there. ``unconstrained_size(params)``: the vector's
  length (default: computes the vector; a block overrides it with its closed form).
- ``initialize(X, resp, sample_weight)``: parameters from a (hard or soft) partition;
  ``given_params(K, given)``: the start itself when the model's ``*_init`` options fix
  all of the block (default None: the model summarises a partition).
- ``sample(params, z (n,), rng) -> (n, D)``; ``permute(params, perm)`` (new class i = old
  class perm[i]).
- ``to_arrays(params) -> dict[str, ndarray]`` / ``from_arrays(dict) -> params``: npz-ready
  float arrays for save/load (never pickle).
- ``degenerate(params, class_sizes (K,)) -> (K,) bool``: the classes whose parameters
  are a spurious (degenerate) maximum of this block — a Gaussian class collapsed onto a
  few points. The model sets such starts aside (the proper-maxima rule).

The backends' pieces (``emnet.mixture.backends.family_dask`` / ``family_torch`` /
``family_online``; each has a default, so a new type works in memory without them):

- ``setup_summary(X, sample_weight) -> summary``, ``merge_setup(a, b)`` and
  ``setup_from_summary(summary)``: :meth:`setup` split over chunks of rows (a Dask fit
  learns the constants where the chunks live: column moments merged by Chan's formula,
  a categorical block's distinct answers); ``setup_from_summary(merge of every chunk's
  summary)`` must leave the block as ``setup`` on all rows does (to rounding).
  Default: no constants (the base ``setup`` learns none).
- ``scale_stats(stats, factor)``: the statistics times a number (stepwise EM's running
  average). Default: every array of a tuple / NamedTuple of arrays scaled.
- The exponential-family form, for matrix-product backends (torch, CPU or GPU):
  ``features(chunk) -> (Phi (n, P), base (n,) | None)`` or None (not available for this
  chunk: the backend runs the block's own numpy methods instead);
  ``natural_params(params) -> (W (P, K), c (K,))`` with
  log f(x_i | k) = Phi_i · W[:, k] + c_k + base_i (a missing entry contributes zero
  features); ``stats_from_moments(params, moments (K, P), nk (K,))`` -> the block's
  statistics from Σ_i w_i η_ik Phi_i (and N_k = Σ_i w_i η_ik), equal to
  ``sufficient_stats`` (to rounding).

How what comes next uses the contract (its future methods, named here so that no
statistic needs a branch on the measurement type):

- **Latent transition analysis** (latent Markov, T occasions): the same block is measured
  at every occasion; ``log_likelihood(params, X_t)`` gives f(x_it | k) per occasion for
  the forward–backward pass (a missing occasion is a row of NaN: log f = 0), and
  ``sufficient_stats`` is called with the occasion posteriors γ_t in place of η and
  summed over t (time-homogeneous measurement) — nothing in the block changes.
- **Multiple groups** (Clogg & Goodman 1985): class shares per group; measurement equal
  across groups uses one parameter set, measurement per group one per group, both through
  the same ``sufficient_stats`` / ``m_step`` over the rows of each group.
- **Bivariate residuals** (Oberski 2014): ``expected_pair_table(params, a, b)`` — the
  per-class two-way table of a pair of items (categorical/binned) — future method.
- **LMR, OPG and design-based standard errors** (Vuong 1989; Binder 1983):
  ``row_scores(params, X, resp) -> (n, p)``, the per-row gradient of log P(x_i) in the
  unconstrained parametrisation (by Fisher's identity, Σ_k η_ik ∂ log f_b(x_ib|k)) —
  future method; until then the scores can be taken by differencing ``log_likelihood``
  through ``from_unconstrained``.
- **Newton / quasi-Newton steps** near the maximum: ``to_unconstrained`` gives the
  coordinates; the gradient and Hessian of Σ_i w_i log P(x_i) + log prior follow from
  ``row_scores`` (and a future ``hessian``) or by differences.
- **Summaries and profiles**: ``summary_rows(params, se, names)`` (the rows of
  ``LatentClassModel.summary``; default: every (K, D) array per column and class) and
  ``describe()``; a profile panel per type — future method.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, NamedTuple

import numpy as np

FUTURE_METHODS = ("expected_pair_table", "row_scores", "hessian")
"""The contract's methods still to come (see the module docstring)."""


class InvalidParameters(ValueError):
    """A parameter value outside the block's model (e.g. a covariance that is not
    positive definite). Raised by ``log_likelihood``/``sufficient_stats``; the EM loop
    rejects a SQUAREM extrapolation that lands on such a point and keeps the plain EM
    step (whose M-step output is always valid)."""


class ProfileItem(NamedTuple):
    """One column of the profile plot (:meth:`Measurement.profile_items`).

    ``kind``: "level" — ``values`` (K,) class means, ``variances`` (K,) within-class
    variances (to standardise by the total variance), ``se`` (K,) or None, ``scale`` what
    the column measures in the plot's title ("continuous", "count"); "answers" —
    ``values`` (K, R) answer probabilities, ``answers`` their labels, ``se`` (K, R) or
    None."""

    name: str
    kind: str
    values: np.ndarray
    se: np.ndarray | None = None
    answers: list[Any] | None = None
    variances: np.ndarray | None = None
    scale: str = ""


class Measurement(ABC):
    """One block of D columns of one measurement type (see the module docstring)."""

    #: the type's name in ``LatentClassModel(measurement=...)``
    name: str = ""

    #: True: the block receives its columns as they are (text answers, a DataFrame's
    #: pandas categoricals); False: as floats (text there is an error naming the column)
    takes_text: bool = False

    #: the block's column names (set by the model before :meth:`setup`; for messages)
    labels: list[str] | None = None

    def check_input(self, X: np.ndarray, names: list[Any]) -> None:  # noqa: B027
        """Raise ValueError naming the column if the block's data ``X`` (as the model
        passes it to :meth:`setup`) is not of its type (default: no check)."""

    def random_params(self, n_components: int, rng: np.random.RandomState) -> Any:
        """Parameters of a random start (``init_params="random"``) drawn without the
        partition, or None (the default): start from the random partition instead."""
        return None

    def seed_features(self, chunk: Any) -> np.ndarray | None:
        """(n, F) float matrix the k-means++ / random-row seed partition sees for this
        block (NaN: missing), or None (the default): the block's columns as numbers."""
        return None

    def fitted_attributes(self, params: Any, n_components: int, names: list[Any]) -> dict[str, Any]:
        """The model's fitted attributes from this block (``covariances_``, ``rates_``,
        ...); a dict value is merged into the model's dict of that name (per column,
        keyed by ``names``). Default: none."""
        return {}

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The data constants learned by :meth:`setup` to save with the parameters, as
        float arrays (the model prefixes the type's name). Default: none."""
        return {}

    def state_json(self) -> Any:
        """JSON-ready data constants to save (e.g. the answers' categories), or None
        (the default: nothing)."""
        return None

    def load_state(self, take: Any, n_components: int, n_columns: int, saved_json: Any) -> Any:
        """Restore the saved data constants and return the saved parameters.
        ``take(key, shape)`` gives the saved float array ``key`` (of :meth:`to_arrays`
        or :meth:`state_arrays`, unprefixed), checked finite and of that shape;
        ``saved_json`` is the dict {type name: :meth:`state_json`} (None if absent).
        Raise ValueError if they are not a valid state."""
        raise NotImplementedError(f"{type(self).__name__} cannot be restored")

    #: the model's ``*_init`` options this block takes (see :meth:`init_from`)
    init_options: tuple[str, ...] = ()

    def answer_counts(self) -> list[int] | None:
        """Per column, its number of answers (``probs_init`` gives a (K, R_j) array per
        column), or None (the default): the block has no answer probabilities."""
        return None

    def init_from(self, params: Any, given: dict[str, Any]) -> Any:
        """``params`` with the given starting values in place. ``given`` maps each of
        :attr:`init_options` to its value (None: not given; ``probs_init``: one checked
        (K, R_j) array per column). Raise ValueError naming the option if a value does
        not fit. Default: ``params`` unchanged."""
        return params

    def given_params(self, n_components: int, given: dict[str, Any]) -> Any:
        """The block's start when ``given`` (as for :meth:`init_from`) fixes all of it,
        checked as :meth:`init_from` checks it; None (the default): the start needs
        :meth:`initialize`."""
        return None

    def setup(self, X: np.ndarray, sample_weight: np.ndarray | None) -> None:  # noqa: B027
        """Learn the block's data constants from the fitting data (default: none)."""

    def prepare(self, X: np.ndarray) -> Any:
        """The rows in the form the block computes on (default: the array itself)."""
        return np.asarray(X, dtype=np.float64)

    @abstractmethod
    def log_likelihood(self, params: Any, X: Any) -> np.ndarray:
        """(n, K): log f(x_i | class k), missing entries marginalised."""

    def weighted_terms(self, params: Any, X: Any, weights: np.ndarray) -> np.ndarray:
        """Terms whose sum is Σ_ik weights_ik log f(x_i | k) (``weights`` (n, K), the same
        array object from call to call), each a smooth function of the parameters: the
        observed information's second differences are taken term by term and then summed
        (:func:`~emnet.mixture.inference.family_stats.segment_information`). Default: the
        (n, K) products; a block whose log-likelihood is linear in features of the rows
        returns the (K, F) products of their weighted sums and its feature weights, the
        same sum without the rows."""
        return self.log_likelihood(params, X) * weights

    @abstractmethod
    def sufficient_stats(
        self, params: Any, X: Any, resp: np.ndarray, sample_weight: np.ndarray | None
    ) -> Any:
        """The E-step's expected complete-data statistics of a chunk (additive)."""

    @abstractmethod
    def add_stats(self, a: Any, b: Any) -> Any:
        """The statistics of two chunks together."""

    @abstractmethod
    def m_step(self, stats: Any) -> Any:
        """The parameters maximising the expected complete-data log-likelihood + prior."""

    def log_prior(self, params: Any) -> float:
        """log p(params) up to a constant (default: a flat prior)."""
        return 0.0

    @abstractmethod
    def n_parameters(self, n_components: int) -> int:
        """Free parameters of the block for K classes."""

    @abstractmethod
    def to_unconstrained(self, params: Any) -> np.ndarray:
        """A 1-D vector in which every point is a valid parameter."""

    @abstractmethod
    def from_unconstrained(self, vector: np.ndarray, like: Any) -> Any:
        """The inverse of :meth:`to_unconstrained` (``like`` gives the shapes)."""

    def unconstrained_size(self, params: Any) -> int:
        """len(:meth:`to_unconstrained`(params)); override where it is known without
        computing the vector."""
        return len(self.to_unconstrained(params))

    @abstractmethod
    def initialize(self, X: Any, resp: np.ndarray, sample_weight: np.ndarray | None) -> Any:
        """Starting parameters from a (hard or soft) partition ``resp`` (n, K)."""

    @abstractmethod
    def sample(self, params: Any, z: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
        """(n, D) draws, row i from class z[i]."""

    @abstractmethod
    def permute(self, params: Any, perm: np.ndarray) -> Any:
        """The parameters with new class i = old class perm[i]."""

    @abstractmethod
    def to_arrays(self, params: Any) -> dict[str, np.ndarray]:
        """Float arrays to save (npz-ready)."""

    @abstractmethod
    def from_arrays(self, arrays: dict[str, np.ndarray]) -> Any:
        """The parameters back from :meth:`to_arrays`'s arrays."""

    def degenerate(self, params: Any, class_sizes: np.ndarray) -> np.ndarray:
        """(K,) bool: classes at a degenerate (spurious) maximum (default: none)."""
        return np.zeros(len(class_sizes), dtype=bool)

    def class_means(self, params: Any) -> np.ndarray:
        """(K, D): E[x | class k] (for ``means_`` and profiles)."""
        raise NotImplementedError

    def describe(self) -> str:
        """The block's name in a summary (default: the type's name)."""
        return self.name

    def profile_items(
        self, params: Any, se: dict[str, np.ndarray] | None, names: list[str]
    ) -> list[ProfileItem]:
        """The block's panels in the profile plot, one :class:`ProfileItem` per column:
        a "level" (class means of a continuous or count column, with the within-class
        variances for standardising) or "answers" (class answer probabilities).
        ``se`` as for :meth:`summary_rows`."""
        raise NotImplementedError(f"{type(self).__name__} has no profile panel")

    def summary_rows(
        self, params: Any, se: dict[str, np.ndarray] | None, names: list[str]
    ) -> list[dict[str, Any]]:
        """The summary's rows of this block: one dict per (parameter, item, class) with
        ``parameter``, ``item``, ``class`` (1-based), ``estimate`` and ``se``. ``se``
        holds standard errors keyed and shaped as :meth:`to_arrays` (None: NaN).
        Default: every (K, D) array of :meth:`to_arrays`, per column and class."""
        rows = []
        for key, value in self.to_arrays(params).items():
            a = np.asarray(value, dtype=np.float64)
            s = np.full(a.shape, np.nan) if se is None else np.asarray(se[key])
            if a.ndim != 2 or a.shape[1] != len(names):
                continue
            rows += table_rows(key, a, s, names)
        return rows

    # -- the backends' pieces (module docstring) ------------------------------------------
    def setup_summary(self, X: Any, sample_weight: np.ndarray | None) -> Any:
        """What :meth:`setup` needs from one chunk of rows (default: nothing)."""
        return None

    def merge_setup(self, a: Any, b: Any) -> Any:
        """The summaries of two chunks together (default: nothing)."""
        return None

    def setup_from_summary(self, summary: Any) -> None:  # noqa: B027
        """:meth:`setup` from the merged summary of every chunk (default: nothing)."""

    def scale_stats(self, stats: Any, factor: float) -> Any:
        """``stats`` times ``factor`` (default: each array of a tuple of arrays)."""
        parts = [None if a is None else np.asarray(a) * factor for a in stats]
        return type(stats)(*parts) if hasattr(stats, "_fields") else type(stats)(parts)

    def features(self, chunk: Any) -> tuple[np.ndarray, np.ndarray | None] | None:
        """(Phi (n, P), base (n,) or None) of the exponential-family form, or None
        (the default): not available for this chunk."""
        return None

    def natural_params(self, params: Any) -> tuple[np.ndarray, np.ndarray]:
        """(W (P, K), c (K,)) of the exponential-family form (see :meth:`features`)."""
        raise NotImplementedError(f"{type(self).__name__} has no exponential-family form")

    def stats_from_moments(self, params: Any, moments: np.ndarray, nk: np.ndarray) -> Any:
        """The statistics from moments (K, P) = Σ_i w_i η_ik Phi_i and nk (K,)."""
        raise NotImplementedError(f"{type(self).__name__} has no exponential-family form")


class ColumnMoments(NamedTuple):
    """Per column: Σ w over observed entries, their weighted mean, Σ w (x − mean)²."""

    weight: np.ndarray
    mean: np.ndarray
    m2: np.ndarray


def column_moments(X: np.ndarray, sample_weight: np.ndarray | None) -> ColumnMoments:
    """One chunk's :class:`ColumnMoments` (the setup summary of the numeric blocks)."""
    X = np.asarray(X, dtype=np.float64)
    X0, obs = nan_filled(X)
    w = np.ones(X.shape[0]) if sample_weight is None else sample_weight
    W = w @ obs
    safe = np.where(W > 0, W, 1.0)
    mean = (w @ X0) / safe
    m2 = w @ (obs * (X0 - mean) ** 2)
    return ColumnMoments(W, mean, m2)


def merge_moments(a: ColumnMoments, b: ColumnMoments) -> ColumnMoments:
    """Two chunks' moments together (Chan, Golub & LeVeque's pairwise update)."""
    W = a.weight + b.weight
    safe = np.where(W > 0, W, 1.0)
    delta = b.mean - a.mean
    mean = a.mean + delta * (b.weight / safe)
    m2 = a.m2 + b.m2 + delta**2 * (a.weight * b.weight / safe)
    return ColumnMoments(W, mean, m2)


def moments_mean_var(m: ColumnMoments) -> tuple[np.ndarray, np.ndarray]:
    """(mean, variance) per column, as :func:`weighted_column_moments` gives them."""
    safe = np.where(m.weight > 0, m.weight, 1.0)
    return m.mean, m.m2 / safe


def nan_filled(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(X with NaN set to 0, the observed mask as float) for masked matrix products."""
    observed = ~np.isnan(X)
    return np.where(observed, X, 0.0), observed.astype(np.float64)


def weighted_column_moments(
    X: np.ndarray, sample_weight: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Per column: the (weighted) mean and variance over its observed entries."""
    X0, obs = nan_filled(X)
    w = np.ones(X.shape[0]) if sample_weight is None else sample_weight
    W = w @ obs
    safe = np.where(W > 0, W, 1.0)
    mean = (w @ X0) / safe
    var = (w @ (obs * (X0 - mean) ** 2)) / safe
    return mean, var


def table_rows(
    parameter: str, values: np.ndarray, se: np.ndarray, names: list[str]
) -> list[dict[str, Any]]:
    """Summary rows of a (K, D) array: per column, one row per class (1-based)."""
    return [
        {"parameter": parameter, "item": name, "class": k + 1,
         "estimate": float(values[k, j]), "se": float(se[k, j])}
        for j, name in enumerate(names)
        for k in range(values.shape[0])
    ]  # fmt: skip


class MomentsMeasurement(Measurement):
    """A numeric block whose data constants come from its columns' weighted moments (the
    mean and variance over the observed entries): :meth:`setup` on all rows and the
    backends' split of it (each chunk's :class:`ColumnMoments`, merged by Chan's formula)
    both end in :meth:`use_moments`."""

    def setup(self, X: np.ndarray, sample_weight: np.ndarray | None) -> None:
        mean, var = weighted_column_moments(np.asarray(X, dtype=np.float64), sample_weight)
        self.use_moments(mean, var)

    def setup_summary(self, X: Any, sample_weight: np.ndarray | None) -> ColumnMoments:
        return column_moments(X, sample_weight)

    def merge_setup(self, a: ColumnMoments, b: ColumnMoments) -> ColumnMoments:
        return merge_moments(a, b)

    def setup_from_summary(self, summary: ColumnMoments) -> None:
        mean, var = moments_mean_var(summary)
        self.use_moments(mean, var)

    @abstractmethod
    def use_moments(self, mean: np.ndarray, var: np.ndarray) -> None:
        """Learn the block's constants from its columns' (mean, variance) (D,) each."""
