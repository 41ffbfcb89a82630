"""The import graph follows DESIGN.md §8: data and model at the bottom, the estimator over the
model, the analyses over the estimator, results over data, workflows and the CLI on top; no
cycle, and no module reaches into a private module of another subpackage.

Every import statement of the package is read with ``ast`` (function-level imports included).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "irfa_nwb"

#: parts of the package: the root's shared helpers, then the subpackages
ROOT = "(root)"
#: what each part may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    ROOT: set(),
    "data": {ROOT},
    "model": {ROOT},
    "estimator": {ROOT, "model"},
    "simulation": {ROOT, "data"},
    "analysis": {ROOT, "data", "model", "estimator"},
    "results": {ROOT, "data"},
    "workflows": {ROOT, "data", "model", "estimator", "analysis", "results", "simulation"},
    "cli": {ROOT, "data", "model", "estimator", "analysis", "results", "simulation",
            "workflows"},
}
#: entry points that may name every part: the lazy top-level API (``irfa_nwb/__init__.py``)
#: and ``python -m irfa_nwb`` (the command line)
ENTRY_POINTS = (PACKAGE / "__init__.py", PACKAGE / "__main__.py")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _part(module: str) -> str:
    pieces = module.split(".")
    if len(pieces) < 2 or not (PACKAGE / pieces[1]).is_dir():
        return ROOT
    return pieces[1]


def _imports(path: Path) -> list[tuple[str, int]]:
    """Absolute names of the irfa_nwb modules ``path`` imports, with line numbers."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.startswith("irfa_nwb")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if not target.startswith("irfa_nwb"):
                continue
            found.append((target, node.lineno))
            # `from .pkg import module` imports a module too
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                if (PACKAGE.parent / Path(*candidate.split("."))).with_suffix(".py").exists():
                    found.append((candidate, node.lineno))
    return found


def _edges() -> list[tuple[str, str, str, int]]:
    edges = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path in ENTRY_POINTS:
            continue
        for target, line in _imports(path):
            edges.append((_module_name(path), target, str(path.relative_to(PACKAGE)), line))
    return edges


def test_every_part_imports_only_the_parts_below_it():
    wrong = []
    for source, target, where, line in _edges():
        a, b = _part(source), _part(target)
        if a != b and b not in ALLOWED[a]:
            wrong.append(f"{where}:{line}: {a} imports {b} ({target})")
    assert not wrong, "\n".join(wrong)


def test_no_cycle_between_parts():
    graph: dict[str, set[str]] = {}
    for source, target, *_ in _edges():
        a, b = _part(source), _part(target)
        if a != b:
            graph.setdefault(a, set()).add(b)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = [p for p in graph if reaches(p, p, {p})]
    assert not cycles, f"parts on a cycle: {cycles}"


def test_no_private_module_of_another_part_is_imported():
    wrong = []
    for source, target, where, line in _edges():
        if _part(source) == _part(target) or _part(target) == ROOT:
            continue
        private = [p for p in target.split(".")[2:] if p.startswith("_")]
        if private:
            wrong.append(f"{where}:{line}: {source} imports private {target}")
    assert not wrong, "\n".join(wrong)


def test_the_scan_sees_imports():
    """The checks above are only as good as the scan: it must find known edges."""
    edges = {(s, t) for s, t, *_ in _edges()}
    assert ("irfa_nwb.results.writer", "irfa_nwb.data.nwbfile") in edges
    assert ("irfa_nwb.estimator.state", "irfa_nwb.model.network") in edges  # in a function
    assert ("irfa_nwb.cli.main", "irfa_nwb.workflows.fit") in edges
    assert _part("irfa_nwb.imaging") == ROOT and _part("irfa_nwb.data.tvsd.trials") == "data"
