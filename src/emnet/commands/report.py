"""`emnet report [--out DIR] [--quick]`: run all three systems, write DIR/index.html."""

from __future__ import annotations

import argparse
import sys
import time


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="run all three systems and write the HTML report",
        description="Run the EM mixture, the deep-net derivatives and shapes, and the ResNet "
        "width study on embedded data, and write DIR/index.html with its figures and tables. "
        "Exit code 0 when every section and check passed, 1 when any failed (the page "
        "shows which), 2 for bad arguments.",
    )
    p.add_argument(
        "--out",
        default="report",
        metavar="DIR",
        help="output directory (default: report/): new, empty, or an earlier report's; "
        "the new report replaces the earlier one's files when it is complete, and files "
        "emnet did not write are kept",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an earlier report of the other size (--quick or not) in --out",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="fewer iterations and epochs (under a minute instead of a few)",
    )
    p.add_argument("--no-progress", action="store_true", help="do not show progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from emnet.report import build_report, check_out_dir

    out = check_out_dir(args.out, "--out", quick=args.quick, force=args.force, force_flag="--force")
    start = time.perf_counter()
    code = build_report(
        out,
        quick=args.quick,
        progress=not args.no_progress,
        force=args.force,
        arg="--out",
        force_flag="--force",
    )
    elapsed = time.perf_counter() - start
    verdict = "all sections passed" if code == 0 else "SOME SECTIONS OR CHECKS FAILED"
    print(f"report written to {out / 'index.html'} in {elapsed:.1f} s: {verdict}")
    if code:
        print("emnet report: see the failed sections in the page", file=sys.stderr)
    return code
