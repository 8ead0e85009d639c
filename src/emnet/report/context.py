"""The report's shared types (a leaf of :mod:`emnet.report`: the sections, the page and
the runner import it; it imports none of them): what a section builder gets
(:class:`Context`), how a section is declared (:class:`SectionSpec`) and what running it
gave (:class:`SectionOutcome`)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emnet import _io

#: Written into every report's ``index.html`` (``<meta name="generator">``).
GENERATOR = "emnet report"


@dataclass(frozen=True)
class SectionSpec:
    """One section of the page: its heading, its anchor id (also its key in
    ``results.json``), the builder ``build(ctx) -> html`` and a one-line lead saying what
    it reproduces."""

    title: str
    anchor: str
    build: Callable[[Context], str]
    lead: str = ""


@dataclass
class Context:
    """What a section builder gets: where to write, how big a run, and where to record."""

    root: Path
    quick: bool
    progress: bool = True
    #: every random seed used, by what it seeds (shown in the header).
    seeds: dict[str, object] = field(default_factory=dict)
    #: every number shown in the page, by section (written to results.json).
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the compute device each system ran on (shown in the header).
    devices: dict[str, str] = field(default_factory=dict)

    def path(self, name: str) -> Path:
        """Absolute path of ``name`` (relative to index.html); parent folders are created."""
        target = self.root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def savefig(self, fig: Any, name: str, **kwargs: Any) -> str:
        """Save a matplotlib ``Figure`` under ``figures/``; return its src."""
        rel = f"figures/{name}"
        kwargs.setdefault("dpi", 110)
        kwargs.setdefault("bbox_inches", "tight")
        _io.savefig(fig, self.path(rel), **kwargs)
        return rel

    def write_csv(self, name: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
        """Write a table under ``tables/`` as CSV; return its relative path."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        rel = f"tables/{name}"
        _io.write_text(self.path(rel), buf.getvalue())
        return rel


@dataclass
class SectionOutcome:
    spec: SectionSpec
    ok: bool
    seconds: float
    html: str = ""
    error: str = ""
    traceback: str = ""
    #: verifications shown in the section that did not hold (a section can run to the
    #: end and still show a failed check; the report's exit code counts both).
    failed_checks: int = 0
    #: the data files (under tables/) the section wrote, relative to index.html
    tables: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.ok and self.failed_checks == 0
