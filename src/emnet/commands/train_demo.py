"""`emnet train-demo`: train networks with emnet.autodiff (an MLP on two moons, a CNN on digits)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    # emnet.cli lists commands by module name; the alias keeps `emnet train_demo` working.
    p = sub.add_parser(
        "train-demo",
        aliases=["train_demo"],
        help="train an MLP (two moons) and a small CNN (digits) with emnet.autodiff",
        description="Train an MLP on scikit-learn's make_moons with emnet.autodiff and draw\n"
        "its decision boundary; train a LeNet-style CNN on the 8x8 digits with the engine\n"
        "and with torch from the same initial weights and plot both loss curves.",
        epilog="example: emnet train-demo --out out/demo --quick\n"
        "(emnet train_demo is the same command)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", metavar="DIR", default=".", help="directory for the figures")
    p.add_argument("--quick", action="store_true", help="train the CNN 4 epochs instead of 8")
    p.add_argument("--force", action="store_true", help="replace existing figures in --out")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from emnet import _io
    from emnet.autodiff import demo

    out = _io.check_writable_dir(args.out)
    names = ("train_demo_moons.png", "train_demo_cnn.png")
    _io.check_new_files([out / n for n in names], force=args.force)
    moons = demo.train_moons(steps=200)
    moons_png = _io.savefig(demo.plot_moons(moons), out / "train_demo_moons.png", dpi=110)
    print(
        f"two moons: MLP {' -> '.join(map(str, moons.model.sizes))}, {len(moons.losses)} SGD "
        f"steps, loss {moons.losses[0]:.4g} -> {moons.losses[-1]:.4g}, "
        f"accuracy {moons.accuracy:.1%}  ({moons_png})"
    )
    curves = demo.train_cnn(epochs=4 if args.quick else 8)
    cnn_png = _io.savefig(demo.plot_cnn_curves(curves), out / "train_demo_cnn.png", dpi=110)
    print(
        f"digits CNN: {len(curves.losses)} SGD steps ({curves.epochs} epochs), test accuracy "
        f"{curves.test_accuracy:.1%} (torch {curves.torch_test_accuracy:.1%}), largest "
        f"|loss - torch loss| {curves.max_abs_difference:.2g}  ({cnn_png})"
    )
    return 0
