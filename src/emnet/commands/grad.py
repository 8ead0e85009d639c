"""`emnet grad` (placeholder until its system lands; replaced by the owner of this command)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("grad", help="(not built yet)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from emnet.cli import UsageError

    raise UsageError("emnet grad is not built yet")
