"""emnet: a machine-learning course write-up turned into verified, fast software.

Three systems that stand alone, plus a report on top:

- :mod:`emnet.mixture` — Bernoulli mixtures fitted by EM (SPEC §1).
- :mod:`emnet.autodiff`, :mod:`emnet.deepnet`, :mod:`emnet.shapes` — a reverse-mode
  autodiff engine, the write-up's network and its derivatives, a CNN shape calculator (§2).
- :mod:`emnet.resnet` — the ResNet width study on scikit-learn's digits (§3).
- :mod:`emnet.report` — one HTML report that reproduces all of the above.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("emnet")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["__version__"]
