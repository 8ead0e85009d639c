"""CLI subcommands. Each module defines ``register(subparsers)`` and ``run(args) -> int``.

Only :mod:`emnet.cli` imports these; they sit on top of the systems.
"""
