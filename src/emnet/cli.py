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

COMMANDS = ("em", "lca", "grad", "shapes", "resnet", "report", "train_demo")


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


def _single_value_options(parser: argparse.ArgumentParser) -> dict[str, set[str]]:
    """For each subcommand, its options that take exactly one value."""
    options: dict[str, set[str]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                options[name] = {
                    opt
                    for a in sub._actions
                    if isinstance(a, argparse._StoreAction) and a.nargs is None
                    for opt in a.option_strings
                }
    return options


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def join_negative_values(parser: argparse.ArgumentParser, argv: Sequence[str]) -> list[str]:
    """``--x -1e300`` → ``--x=-1e300`` for options that take one value.

    argparse takes any word that starts with ``-`` and is not a plain negative number
    (``-1``, ``-0.5``) for an option, so ``-1e300``, ``-1E3`` or ``-inf`` would be
    refused as "expected one argument". Joined with ``=`` they reach the option's type.
    """
    argv = list(argv)
    per_command = _single_value_options(parser)
    command = next((a for a in argv if a in per_command), None)
    takes_one = per_command.get(command or "", set())
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            out.extend(argv[i:])
            break
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        if arg in takes_one and nxt is not None and nxt.startswith("-") and _is_number(nxt):
            out.append(f"{arg}={nxt}")
            i += 2
            continue
        out.append(arg)
        i += 1
    return out


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror and not isinstance(exc, UsageError):
        # e.g. "[Errno 36] File name too long: 'aaa...'" as "aaa...: file name too long"
        names = [n for n in (exc.filename, exc.filename2) if n is not None]
        where = " -> ".join(str(n) for n in names)
        return f"{where}: {exc.strerror}" if where else exc.strerror
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(join_negative_values(parser, sys.argv[1:] if argv is None else argv))
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        # The reader went away (`emnet ... | head`): stop quietly, as other CLI tools do.
        # Point stdout at devnull so the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except (UsageError, ValueError, TypeError, OSError) as exc:
        # OSError: a name too long, a full disk, a read-only file system, a file where a
        # folder should be, ... — one line naming the path, never a traceback.
        print(f"emnet {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"emnet {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
