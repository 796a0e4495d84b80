"""The library's layers, read from its source with ``ast`` (README, "Where things live").

A module belongs to the layer of its folder (or, at the top level, of its name); layers go
from the bottom up::

    utils < core maths < models < scenes < adiw < data < evaluation < training < inference < app < harness < cli

A module may import from its own layer and from lower ones. :func:`violations` reports
every import that goes up, every cycle between modules (imports inside functions count
too: a cycle there is still two modules that need each other), and every import of a name
that another module keeps private (``_name``).
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

LAYERS = ("utils", "core", "models", "scenes", "adiw", "data", "evaluation", "training", "inference", "app",
          "harness", "cli")
CORE = {"align", "metrics", "losses", "baselines", "export"}
# the package's front doors: __init__ names the public API lazily (strings, no imports);
# __main__ only dispatches to the command line
TOP = {"__main__": "cli", "inference": "inference"}


@dataclass(frozen=True)
class Import:
    """One ``import`` statement of a module of the package."""

    module: str      # the importing module, dotted
    target: str      # the imported module, dotted
    names: tuple     # the names taken from it (``from target import names``)
    path: Path
    line: int


def module_name(path: Path, root: Path) -> str:
    """``root/amodal/app/explorer.py`` → ``amodal.app.explorer`` (``__init__`` names its package)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def layer_of(module: str) -> str:
    """The layer of a dotted module name of the package."""
    parts = module.split(".")
    if len(parts) == 1:
        return "cli"  # the package itself: its lazy public API may name anything
    if len(parts) == 2:
        name = parts[1]
        if name in CORE:
            return "core"
        if name in TOP:
            return TOP[name]
        if name in LAYERS:  # a layer's own package (amodal.models)
            return name
        raise ValueError(f"{module}: a top-level module in no layer; add it to a layer folder or to tests/layering.py")
    if parts[1] not in LAYERS:
        raise ValueError(f"{module}: folder {parts[1]!r} is not a layer of tests/layering.py")
    return parts[1]


def package_modules(root: Path, package: str = "amodal") -> dict[str, Path]:
    """Dotted name → file of every module of ``root/package``."""
    return {module_name(path, root): path for path in sorted((root / package).rglob("*.py"))}


def imports(root: Path, package: str = "amodal") -> list[Import]:
    """Every import of the package's modules that names another module of the package."""
    modules = package_modules(root, package)
    found = []
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == package:
                        found.append(Import(module, _known(alias.name, modules), (), path, node.lineno))
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(node, module, is_package)
                if base.split(".")[0] != package:
                    continue
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    if submodule in modules:  # from amodal.models import checkpoints
                        found.append(Import(module, submodule, (), path, node.lineno))
                    else:
                        found.append(Import(module, _known(base, modules), (alias.name,), path, node.lineno))
    return found


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _known(name: str, modules: dict) -> str:
    """The longest prefix of ``name`` that is a module of the package."""
    parts = name.split(".")
    while parts and ".".join(parts) not in modules:
        parts.pop()
    return ".".join(parts) or name


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def violations(root: Path, package: str = "amodal") -> list[str]:
    """Every broken rule as ``file:line: what``; empty when the layers hold."""
    root = Path(root)
    found = imports(root, package)
    problems = []
    edges: dict[str, set[str]] = {}
    where: dict[tuple[str, str], Import] = {}
    for imp in found:
        if imp.target == imp.module:
            continue
        edges.setdefault(imp.module, set()).add(imp.target)
        where.setdefault((imp.module, imp.target), imp)
        if imp.target == package:
            continue  # `import amodal` alone: the lazy public API
        low, high = layer_of(imp.module), layer_of(imp.target)
        if LAYERS.index(high) > LAYERS.index(low):
            problems.append(f"{imp.path.relative_to(root)}:{imp.line}: {imp.module} ({low}) imports {imp.target} "
                            f"({high}), a higher layer")
        private = [name for name in imp.names if name.startswith("_") and not name.startswith("__")]
        if private:
            problems.append(f"{imp.path.relative_to(root)}:{imp.line}: {imp.module} imports {', '.join(private)}, "
                            f"private to {imp.target}")
    for component in cycles(edges):
        links = [where[(a, b)] for a in component for b in sorted(edges.get(a, ())) if b in component]
        detail = "; ".join(f"{i.path.relative_to(root)}:{i.line} {i.module} -> {i.target}" for i in links)
        problems.append(f"import cycle between {', '.join(component)}: {detail}")
    return problems
