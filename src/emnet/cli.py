"""The ``emnet`` command line: one subcommand per system, plus the report.

Each subcommand lives in :mod:`emnet.commands` as a module with ``register(subparsers)``
(adds its parser and sets ``func``) and ``run(args) -> int``. Heavy imports stay inside
``run`` so that ``emnet --help`` is instant.

Errors a user can cause (bad arguments, unreadable files, invalid data) end the process
with exit code 2 and one readable line on stderr — never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from emnet import __version__

COMMANDS = ("em", "grad", "shapes", "resnet", "report", "train_demo")


class UsageError(Exception):
    """A user error: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors as a single line (exit code 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="emnet",
        description="emnet: Bernoulli mixtures by EM, a reverse-mode autodiff engine, "
        "a CNN shape calculator, a ResNet width study, and one HTML report of it all.",
    )
    parser.add_argument("--version", action="version", version=f"emnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        module = importlib.import_module(f"emnet.commands.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except (UsageError, ValueError, TypeError, FileNotFoundError, PermissionError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"emnet {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"emnet {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`emnet ... | head`): stop quietly, as other CLI tools do.
        # Point stdout at devnull so the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
