"""`emnet em --k A:B`: fit a range of K with restarts, print the BIC/AIC table, plot BIC vs K.

Used by :mod:`emnet.commands.em` when ``--k`` names more than one K (``2:20``, ``2:20:2``
or ``3,5,8``). Writes ``bic.png`` and ``selection.json``, and for the best K the same
``means.png``, ``loglik.png`` and ``model.npz`` as a single fit.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def parse_k(text: str) -> int | list[int]:
    """'10' → 10; 'A:B' → [A..B]; 'A:B:S' → every S-th from A to B; 'a,b,c' → [a, b, c]."""
    text = text.strip()
    if ":" not in text and "," not in text:  # a single K
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
        return value
    try:
        if ":" in text:
            parts = [int(p) for p in text.split(":")]
            if len(parts) not in (2, 3):
                raise ValueError
            start, stop = parts[0], parts[1]
            step = parts[2] if len(parts) == 3 else 1
            if step < 1 or stop < start:
                raise ValueError
            values = list(range(start, stop + 1, step))
        else:
            values = sorted({int(p) for p in text.split(",") if p.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer K, a range A:B (or A:B:STEP) or a list a,b,c, "
            f"got {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive numbers of components, got {text!r}")
    return values


def run_selection(args: argparse.Namespace, X: Any, source: str, out: Path) -> int:
    """Model selection over ``args.k`` (a list) on X; files into ``out``."""
    from emnet._io import write_json
    from emnet.commands.em import write_model_files
    from emnet.mixture import plot_bic, select_n_components
    from emnet.mixture.selection import format_selection_table

    ks = args.k  # em.run has checked that every K fits the number of rows
    client = None
    if getattr(args, "scheduler", None):
        from distributed import Client

        try:
            client = Client(args.scheduler, timeout="10s")
        except OSError as exc:
            raise ValueError(f"--scheduler: cannot connect to {args.scheduler} ({exc})") from None
    try:
        result = select_n_components(
            X,
            ks,
            n_init=args.n_init,
            n_jobs=getattr(args, "n_jobs", 1),
            client=client,
            random_state=args.seed,
            progress=sys.stderr.isatty(),
            max_iter=args.max_iter,
        )
    except ValueError as exc:
        raise ValueError(f"--data {source}: {exc}") from None
    finally:
        if client is not None:
            client.close()
    print(f"emnet em: model selection on {source}, K = {ks[0]}..{ks[-1]}, {args.n_init} restarts")
    print(format_selection_table(result))
    bic_png = plot_bic(result, out / "bic.png")
    image_shape = (8, 8) if args.data is None else None
    title = f"Component means, best K={result.best_k} by {result.criterion.upper()}"
    written = [bic_png, *write_model_files(result.best_model, out, image_shape, title)]
    selection_json = write_json(
        out / "selection.json",
        {
            "data": source,
            "seed": args.seed,
            "n_init": args.n_init,
            "criterion": result.criterion,
            "best_k": result.best_k,
            "table": result.table(),
        },
    )
    print("wrote " + ", ".join(str(p) for p in [*written, selection_json]))
    return 0
