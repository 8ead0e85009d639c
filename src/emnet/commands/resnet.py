"""`emnet resnet`: the ResNet width study (SPEC §3) — a resumable sweep over widths and seeds."""

from __future__ import annotations

import argparse

from emnet._checks import WIDTHS
from emnet.commands._types import positive_int, scheduler_address


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "resnet",
        help="train ResNet(C) on the digits for several widths and seeds; curves, CSV, JSON",
        description="Train ResNet(C) (SPEC §3) on scikit-learn's digits for every width and "
        "seed, recording each epoch's train/test loss and test accuracy. Results and "
        "checkpoints are written to --out after every epoch: re-running the same command "
        "after an interruption resumes. Writes results.json, results.csv, curves.png "
        "(train blue, test orange, per width) and summary.png.",
    )
    p.add_argument("--widths", type=int, nargs="+", default=list(WIDTHS), metavar="C",
                   help=f"channel widths C (default: {' '.join(map(str, WIDTHS))})")  # fmt: skip
    p.add_argument("--epochs", type=int, default=100, help="epochs per run (default: 100)")
    p.add_argument("--seeds", type=int, default=3,
                   help="number of seeds per width, 0..N-1 (default: 3)")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=16, help="minibatch size (default: 16)")
    p.add_argument("--optimizer", default="sgd",
                   help="sgd, momentum, adam or adamw (default: sgd)")  # fmt: skip
    p.add_argument("--lr", type=float, default=0.1, help="learning rate (default: 0.1)")
    p.add_argument("--momentum", type=float, default=0.9,
                   help="momentum for --optimizer momentum (default: 0.9)")  # fmt: skip
    p.add_argument("--weight-decay", type=float, default=0.0, help="weight decay (default: 0)")
    p.add_argument("--drop-last", action="store_true",
                   help="skip each epoch's incomplete last batch (1,617 = 101·16 + 1 leaves "
                   "one sample at batch size 16)")  # fmt: skip
    p.add_argument("--normalize", choices=["none", "unit", "standard"], default="none",
                   help="pixel scaling (default: none, the raw 0–16 values)")  # fmt: skip
    p.add_argument("--pack-size", type=int, default=None,
                   help="seeds trained together as one packed network (default: all)")  # fmt: skip
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads per task (default: 1); part of the configuration")  # fmt: skip
    p.add_argument("--device", default="cpu", metavar="DEVICE",
                   help="auto, cpu, cuda or cuda:N (default: cpu)")  # fmt: skip
    g = p.add_mutually_exclusive_group()
    g.add_argument("--dask", choices=["local"], default=None,
                   help="run each (width, seed pack) as a task on a local Dask cluster")  # fmt: skip
    g.add_argument("--scheduler", metavar="ADDRESS", default=None, type=scheduler_address,
                   help="run the tasks on the Dask cluster at ADDRESS (tcp://host:port); "
                   "--out must be on a file system the workers share")  # fmt: skip
    p.add_argument("--workers", type=positive_int, default=None,
                   help="worker processes for --dask local (default: 2)")  # fmt: skip
    p.add_argument("--out", default="resnet-sweep",
                   help="output directory (default: resnet-sweep): new, empty, or this "
                   "sweep's own (then it resumes)")  # fmt: skip
    p.add_argument("--force", action="store_true",
                   help="replace an earlier sweep of another configuration in --out")  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys
    import warnings

    from emnet.resnet.train import SingleSampleBatchWarning

    if args.workers is not None and args.dask != "local":
        raise ValueError("--workers: only used with --dask local (it sizes that cluster)")
    with warnings.catch_warnings():  # restores the warning machinery afterwards
        warnings.simplefilter("always", SingleSampleBatchWarning)
        original = warnings.showwarning

        def show(message, category, *rest, **kwargs) -> None:
            if issubclass(category, SingleSampleBatchWarning):
                print(f"emnet resnet: warning: {message}", file=sys.stderr)
            else:
                original(message, category, *rest, **kwargs)

        warnings.showwarning = show
        result = _sweep(args)
    _plot(result, args.out)
    print(f"wrote {args.out}/results.json, results.csv, curves.png, summary.png")
    print(f"{'width':>6} {'params':>8} {'final test loss':>16} {'final test acc':>15}")
    for w in result.widths:
        loss = result.curves(w, "test_loss")[:, -1]
        acc = result.curves(w, "test_acc")[:, -1]
        print(f"{w:>6} {result.param_counts[w]:>8} {loss.mean():>16.4f} {acc.mean():>15.3f}")
    if result.single_sample_last_batch:
        print("(every epoch ended on a one-sample batch; --drop-last skips it)")
    return 0


def _plot(result, out: str) -> None:
    """The sweep computes; the command draws its figures into --out."""
    from pathlib import Path

    from emnet.resnet import plot_curves, plot_summary

    plot_curves(result, Path(out) / "curves.png")
    plot_summary(result, Path(out) / "summary.png")


def _sweep(args: argparse.Namespace):
    from emnet.resnet import sweep

    try:
        return sweep(
            args.widths,
            args.seeds,
            args.epochs,
            out_dir=args.out,
            batch_size=args.batch_size,
            optimizer=args.optimizer,
            lr=args.lr,
            device=args.device,
            drop_last=args.drop_last,
            progress=not args.no_progress,
            momentum=args.momentum,
            weight_decay=args.weight_decay,
            normalize=False if args.normalize == "none" else args.normalize,
            pack_size=args.pack_size,
            dask=args.scheduler or args.dask,
            dask_workers=2 if args.workers is None else args.workers,
            threads=args.threads,
            force=args.force,
        )
    except ValueError as exc:
        # The API names its arguments (epochs, out_dir, ...); say them as the CLI flags.
        raise ValueError(_as_flags(str(exc))) from None


def _as_flags(msg: str) -> str:
    names = {
        "widths": "--widths", "seeds": "--seeds", "epochs": "--epochs",
        "batch_size": "--batch-size", "optimizer": "--optimizer", "lr": "--lr",
        "momentum": "--momentum", "weight_decay": "--weight-decay", "device": "--device",
        "out_dir": "--out", "pack_size": "--pack-size", "threads": "--threads",
        "scheduler": "--scheduler", "dask": "--dask", "force": "--force",
    }  # fmt: skip
    msg = msg.replace("--force (force=True)", "--force")
    head, sep, rest = msg.partition(":")
    return f"{names[head]}{sep}{rest}" if sep and head in names else msg
