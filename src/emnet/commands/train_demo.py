"""`emnet train-demo`: train networks with emnet.autodiff (an MLP on two moons, a CNN on digits)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train-demo",
        help="train an MLP (two moons) and a small CNN (digits) with emnet.autodiff",
        description="Train an MLP on scikit-learn's make_moons with emnet.autodiff and draw its "
        "decision boundary; train a LeNet-style CNN on the 8x8 digits with the engine and with "
        "torch from the same initial weights and plot both loss curves.",
    )
    p.add_argument("--out", metavar="DIR", default=".", help="directory for the figures")
    p.add_argument("--quick", action="store_true", help="fewer steps (a few seconds)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError("emnet train-demo is being written")
