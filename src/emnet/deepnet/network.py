"""The write-up's network f(x) = w₃·σ(w₂·σ(w₁·x)), its forward pass and closed-form gradients.

With a = w₁x, h₁ = σ(a), b = w₂h₁, h₂ = σ(b), f = w₃h₂ (SPEC §2):

    ∂f/∂w₃ = h₂                                         (write-up (d))
    ∂f/∂w₂ = w₃ · h₂(1 − h₂) · h₁                        (eq. 22)
    ∂f/∂w₁ = w₃ · w₂ · h₂(1 − h₂) · h₁(1 − h₁) · x       (eq. 24)

:func:`forward` caches a, h₁, b, h₂, f; :func:`backward` evaluates the closed forms from
that cache without a single further sigmoid; :func:`adjoints` is the same computation
written as a reverse sweep, node by node. :func:`gradients_from_scratch` evaluates eq. 22
and 24 literally as the write-up prints them, recomputing every σ they contain; the
sigmoid counter (:func:`sigmoid_calls`, :func:`count_sigmoid`) shows the difference.

The weights are scalars (the write-up's case). ``x`` may be a scalar or an array of
inputs; everything then works element-wise and gives per-input values.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from scipy.special import expit

from emnet._checks import check_number

Value = float | np.ndarray


# ---------------------------------------------------------------------------- sigmoid


class SigmoidCounter:
    """Counts calls of :func:`sigmoid` (one call = one σ evaluation of a scalar or array)."""

    def __init__(self) -> None:
        self.calls = 0


_COUNTER = SigmoidCounter()  # process-wide; use count_sigmoid() to count a block of code


def sigmoid(u: Any) -> Value:
    """σ(u) = 1 / (1 + e^(−u)), overflow-free for any real u; counts one evaluation."""
    _COUNTER.calls += 1
    out = expit(np.asarray(u, dtype=np.float64))  # 1/(1 + e^(−u)) without overflow
    return float(out) if out.ndim == 0 else out


def sigmoid_calls() -> int:
    """σ evaluations since the start (or the last :func:`reset_sigmoid_calls`)."""
    return _COUNTER.calls


def reset_sigmoid_calls() -> None:
    _COUNTER.calls = 0


class SigmoidWindow:
    """σ evaluations since this window opened (frozen once its ``with`` block ends)."""

    def __init__(self) -> None:
        self._start = _COUNTER.calls
        self._final: int | None = None

    @property
    def calls(self) -> int:
        return _COUNTER.calls - self._start if self._final is None else self._final

    def close(self) -> None:
        self._final = _COUNTER.calls - self._start


@contextlib.contextmanager
def count_sigmoid() -> Iterator[SigmoidWindow]:
    """Count the σ evaluations inside a ``with`` block as ``window.calls`` (nesting-safe)."""
    window = SigmoidWindow()
    try:
        yield window
    finally:
        window.close()


# ---------------------------------------------------------------------------- inputs


def _scalar(value: Any, name: str) -> float:
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
        value = value.item()
    return check_number(value, name)


def check_inputs(x: Any, w1: Any, w2: Any, w3: Any) -> tuple[Value, float, float, float]:
    """Validate the network's inputs: scalar weights, a real scalar or array ``x``."""
    if isinstance(x, np.ndarray | list | tuple):
        arr = np.asarray(x)
        if arr.dtype.kind not in "iuf" or arr.size == 0:
            raise TypeError(
                f"x must be a real number or a non-empty array of them, got {arr.dtype}"
            )
        arr = arr.astype(np.float64)
        if not np.all(np.isfinite(arr)):
            raise ValueError("x must contain finite numbers only")
        xv: Value = float(arr) if arr.ndim == 0 else arr
    else:
        xv = _scalar(x, "x")
    return xv, _scalar(w1, "w1"), _scalar(w2, "w2"), _scalar(w3, "w3")


# ---------------------------------------------------------------------------- forward / backward


@dataclass(frozen=True)
class Cache:
    """The forward pass's intermediate values (and its inputs, for the backward pass)."""

    a: Value
    h1: Value
    b: Value
    h2: Value
    f: Value
    x: Value
    w1: float
    w2: float
    w3: float


def forward(x: Any, w1: Any, w2: Any, w3: Any) -> Cache:
    """Evaluate f(x) = w₃·σ(w₂·σ(w₁·x)) and keep every intermediate (two σ evaluations)."""
    x, w1, w2, w3 = check_inputs(x, w1, w2, w3)
    a = w1 * x
    h1 = sigmoid(a)
    b = w2 * h1
    h2 = sigmoid(b)
    f = w3 * h2
    return Cache(a=a, h1=h1, b=b, h2=h2, f=f, x=x, w1=w1, w2=w2, w3=w3)


class Gradients(NamedTuple):
    """(∂f/∂w₁, ∂f/∂w₂, ∂f/∂w₃)."""

    df_dw1: Value
    df_dw2: Value
    df_dw3: Value


def backward(cache: Cache) -> Gradients:
    """(∂f/∂w₁, ∂f/∂w₂, ∂f/∂w₃) from the closed forms (d), eq. 22 and eq. 24.

    Uses only cached values and σ' = σ(1 − σ) (eq. 21), so it evaluates no sigmoid.
    """
    if not isinstance(cache, Cache):
        raise TypeError(
            f"cache must be the Cache returned by forward(), got {type(cache).__name__}"
        )
    c = cache
    df_dw3 = c.h2  # (d)
    df_dw2 = product(c.w3, c.h2, 1 - c.h2, c.h1)  # eq. 22
    df_dw1 = product(c.w3, c.w2, c.h2, 1 - c.h2, c.h1, 1 - c.h1, c.x)  # eq. 24
    return Gradients(df_dw1, df_dw2, df_dw3)


def product(*factors: Value) -> Value:
    """The product of ``factors`` without overflow or underflow on the way.

    Each factor is split into a mantissa in [0.5, 1) and a power of two (``frexp``); the
    mantissas are multiplied (no intermediate can overflow) and the exponents added, and
    ``ldexp`` scales the result once at the end. Scaling by powers of two is exact, so the
    result is the plain left-to-right product whenever that one does not overflow, and
    the correctly scaled one when only an intermediate would: ``1.7e308 · (−1.2) · 0.078``
    is −1.59e307, not −inf. Only a product that itself exceeds the float range is ±inf.
    """
    mantissa: Value = 1.0
    exponent: Any = 0
    for f in factors:
        m, e = np.frexp(f)
        mantissa = mantissa * m
        exponent = exponent + e
        m, e = np.frexp(mantissa)  # keep the running mantissa in [0.5, 1)
        mantissa, exponent = m, exponent + e
    with np.errstate(over="ignore", under="ignore"):
        out = np.ldexp(mantissa, exponent)
    return float(out) if np.ndim(out) == 0 else out


class Adjoint(NamedTuple):
    """One step of the reverse sweep: node, the local chain rule used, and ∂f/∂node."""

    node: str
    rule: str
    value: Value


def adjoints(cache: Cache) -> list[Adjoint]:
    """The reverse sweep output → input: ∂f/∂node for every node, one local rule each.

    Node names follow the write-up: f, h2, w3, b, h1, w2, a, w1, x (a bar means ∂f/∂·).
    """
    c = cache
    f_bar = 1.0
    h2_bar = f_bar * c.w3
    w3_bar = f_bar * c.h2
    # each adjoint is the product of the local factors so far, taken by product() so
    # that no intermediate overflows (eq. 24's w3·w2 can leave the float range alone)
    b_chain = (h2_bar, c.h2, 1 - c.h2)
    b_bar = product(*b_chain)
    h1_bar = product(*b_chain, c.w2)
    w2_bar = product(*b_chain, c.h1)
    a_chain = (*b_chain, c.w2, c.h1, 1 - c.h1)
    a_bar = product(*a_chain)
    w1_bar = product(*a_chain, c.x)
    x_bar = product(*a_chain, c.w1)
    return [
        Adjoint("f", "seed: ∂f/∂f = 1", f_bar),
        Adjoint("h2", "f̄ · w3", h2_bar),
        Adjoint("w3", "f̄ · h2", w3_bar),
        Adjoint("b", "h̄2 · h2(1 − h2)", b_bar),
        Adjoint("h1", "b̄ · w2", h1_bar),
        Adjoint("w2", "b̄ · h1", w2_bar),
        Adjoint("a", "h̄1 · h1(1 − h1)", a_bar),
        Adjoint("w1", "ā · x", w1_bar),
        Adjoint("x", "ā · w1", x_bar),
    ]


def gradients_from_scratch(x: Any, w1: Any, w2: Any, w3: Any) -> Gradients:
    """(d), eq. 22 and eq. 24 evaluated literally as written: every σ(·) recomputed.

    Same values as ``backward(forward(...))``, but 13 σ evaluations instead of 2.
    """
    x, w1, w2, w3 = check_inputs(x, w1, w2, w3)
    return Gradients(*(part(x, w1, w2, w3) for part in _SCRATCH_PARTS))


class SigmoidCounts(NamedTuple):
    """σ evaluations measured for each way of computing the three gradients."""

    forward: int  # forward pass, caching a, h1, b, h2
    backward_cached: int  # backward pass from the cache
    from_scratch_w1: int  # eq. 24 as written
    from_scratch_w2: int  # eq. 22 as written
    from_scratch_w3: int  # (d) as written

    @property
    def cached_total(self) -> int:
        return self.forward + self.backward_cached

    @property
    def from_scratch_total(self) -> int:
        return self.from_scratch_w1 + self.from_scratch_w2 + self.from_scratch_w3


def sigmoid_counts(x: Any, w1: Any, w2: Any, w3: Any) -> SigmoidCounts:
    """Count σ evaluations: cached forward + backward versus each closed form from scratch."""
    x, w1, w2, w3 = check_inputs(x, w1, w2, w3)
    with count_sigmoid() as fwd:
        cache = forward(x, w1, w2, w3)
    with count_sigmoid() as bwd:
        backward(cache)
    scratch = []
    for part in _SCRATCH_PARTS:
        with count_sigmoid() as counter:
            part(x, w1, w2, w3)
        scratch.append(counter.calls)
    return SigmoidCounts(fwd.calls, bwd.calls, *scratch)


# (d), eq. 22 and eq. 24 transcribed literally: every σ(·) in them is evaluated afresh.
def _scratch_w1(x: Value, w1: float, w2: float, w3: float) -> Value:
    return (
        w3
        * w2
        * sigmoid(w2 * sigmoid(w1 * x))
        * (1 - sigmoid(w2 * sigmoid(w1 * x)))
        * sigmoid(w1 * x)
        * (1 - sigmoid(w1 * x))
        * x
    )


def _scratch_w2(x: Value, w1: float, w2: float, w3: float) -> Value:
    return (
        w3 * sigmoid(w2 * sigmoid(w1 * x)) * (1 - sigmoid(w2 * sigmoid(w1 * x))) * sigmoid(w1 * x)
    )


def _scratch_w3(x: Value, w1: float, w2: float, w3: float) -> Value:
    return sigmoid(w2 * sigmoid(w1 * x))


_SCRATCH_PARTS = (_scratch_w1, _scratch_w2, _scratch_w3)
