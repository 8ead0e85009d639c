"""`emnet resnet` (placeholder until its system lands; replaced by the owner of this command)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("resnet", help="(not built yet)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from emnet.cli import UsageError

    raise UsageError("emnet resnet is not built yet")
