"""The import graph of ``src/emnet`` (parsed with ``ast``: module-level, function-local and
``TYPE_CHECKING`` imports alike): no cycle between modules, and the layering of
docs/ARCHITECTURE.md — the systems stand alone, shared leaves are imported by anyone,
``emnet.report`` / ``emnet.commands`` / ``emnet.cli`` sit on top and nothing imports them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "emnet"

#: system -> the other systems it may import
SYSTEMS = {
    "mixture": set(),
    "autodiff": set(),
    "deepnet": {"autodiff"},
    "shapes": set(),
    "resnet": set(),
}
SHARED = {"emnet", "emnet._io", "emnet._checks", "emnet.data", "emnet.datasets"}
TOP = ("emnet.report", "emnet.commands", "emnet.cli", "emnet.__main__")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(name: str) -> str | None:
    """The emnet module an imported name lives in (``emnet.x.y`` may be a name in x)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: str) -> set[str]:
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):  # every import, wherever it stands
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # ``from pkg import sub`` depends on the module pkg.sub; ``from mod import name``
            # on mod
            names = [
                f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in MODULES else prefix
                for a in node.names
            ]
        for name in names:
            if name == "emnet" or name.startswith("emnet."):
                target = _resolve(name)
                if target is not None and target != module:
                    found.add(target)
    return found


GRAPH = {m: _imports(m) for m in MODULES}


def _system(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in SYSTEMS else None


def _is_shared(module: str) -> bool:
    return module in SHARED or module.startswith("emnet.datasets.")


def _is_top(module: str) -> bool:
    return any(module == t or module.startswith(t + ".") for t in TOP)


def test_graph_was_parsed():
    assert len(MODULES) > 40
    assert "emnet.resnet.results" in GRAPH["emnet.resnet.sweeps"]
    assert "emnet.report.context" in GRAPH["emnet.report.page"]  # a TYPE_CHECKING-free type import


def _cycles() -> list[list[str]]:
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
    return cycles


def _inside_mixture(cycle: list[str]) -> bool:
    return all(m == "emnet.mixture" or m.startswith("emnet.mixture.") for m in cycle)


def test_no_import_cycle():
    cycles = [c for c in _cycles() if not _inside_mixture(c)]
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_import_cycle_inside_mixture():
    cycles = [c for c in _cycles() if _inside_mixture(c)]
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_layering(module):
    bad = []
    for target in sorted(GRAPH[module]):
        if _is_top(target) and not _is_top(module):
            bad.append(f"{target} (nothing below report/commands/cli imports them)")
        mine, theirs = _system(module), _system(target)
        if mine and theirs and theirs != mine and theirs not in SYSTEMS[mine]:
            bad.append(f"{target} (system {mine} may not import system {theirs})")
        if _is_shared(module) and not _is_shared(target):
            bad.append(f"{target} (a shared leaf imports only shared leaves)")
    assert not bad, f"{module} imports " + "; ".join(bad)
