"""The floor plan, checked: imports only go down the layers (docs/architecture.md).

data_prep (mesh in, samples out) -> sdfkit library -> viewer -> sdfkit.cli.
Every import statement of every module counts, including those inside
functions and under ``TYPE_CHECKING``: a dependency hidden in a function is
still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("data_prep", "sdfkit", "viewer")


def module_name(path: Path, root: Path = REPO) -> str:
    """``sdfkit/models/siren.py`` -> ``sdfkit.models.siren``; a package's ``__init__`` is the package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, name: str, is_package: bool) -> set[str]:
    """Every module an import statement of ``source`` (module ``name``) names, relative ones resolved."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            # ``from pkg import mod`` imports the module pkg.mod when there is one.
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def import_graph(root: Path = REPO) -> dict[str, set[str]]:
    """Module -> the modules of ours it imports, over every ``.py`` file of the three packages."""
    files = {module_name(p, root): p for pkg in PACKAGES for p in sorted((root / pkg).rglob("*.py"))}
    graph = {}
    for name, path in files.items():
        names = imported_modules(path.read_text(encoding="utf-8"), name, path.name == "__init__.py")
        graph[name] = {n for n in names if n in files}
    return graph


def in_layer(module: str, layer: str) -> bool:
    return module == layer or module.startswith(layer + ".")


def violations(graph: dict[str, set[str]]) -> list[str]:
    """Imports that climb a layer, as ``importer -> imported`` lines."""
    bad = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            if in_layer(module, "data_prep") and (in_layer(target, "sdfkit") or in_layer(target, "viewer")):
                bad.append(f"{module} -> {target}")
            if in_layer(module, "sdfkit") and not in_layer(module, "sdfkit.cli") and in_layer(target, "viewer"):
                bad.append(f"{module} -> {target}")
            # The CLI is the top: only ``python -m sdfkit`` (sdfkit/__main__.py) may start it.
            if in_layer(target, "sdfkit.cli") and not in_layer(module, "sdfkit.cli") and module != "sdfkit.__main__":
                bad.append(f"{module} -> {target}")
    return bad


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module ``start`` loads, directly or through others (a package loads its ``__init__``)."""
    seen, todo = set(), [start]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        parts = module.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) in graph)
        todo.extend(graph.get(module, ()))
    return seen


def test_imports_never_climb_a_layer():
    graph = import_graph()
    assert len(graph) > 30 and graph["sdfkit.cli.fit"], "the scan found too few modules"
    assert violations(graph) == []


def test_the_check_sees_a_climbing_import_anywhere_in_a_module(tmp_path):
    """A bad import inside a function, or a relative one, is caught (the scan reads real files)."""
    for pkg in PACKAGES:
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / "sdfkit" / "cli").mkdir()
    (tmp_path / "sdfkit" / "cli" / "__init__.py").write_text("from viewer import slices\n")
    (tmp_path / "viewer" / "slices.py").write_text("")
    (tmp_path / "sdfkit" / "errors.py").write_text("")
    (tmp_path / "data_prep" / "mesh.py").write_text("def load():\n    from sdfkit.errors import X\n")
    (tmp_path / "sdfkit" / "fit.py").write_text("from ..viewer.slices import evaluate_slice\n")
    (tmp_path / "viewer" / "server.py").write_text("import sdfkit.cli\n")
    (tmp_path / "sdfkit" / "__main__.py").write_text("from sdfkit.cli import app\n")
    assert violations(import_graph(tmp_path)) == ["data_prep.mesh -> sdfkit.errors", "sdfkit.fit -> viewer.slices",
                                                   "viewer.server -> sdfkit.cli"]


@pytest.mark.parametrize("entry", ["viewer.sources", "viewer.server", "sdfkit.fit"])
def test_viewer_and_fit_do_not_load_training(entry):
    """Opening the viewer or fitting a mesh never loads the training loop (and its DDP machinery)."""
    assert "sdfkit.train" not in reachable(import_graph(), entry)
