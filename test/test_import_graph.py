"""The package's import graph, read from the source with ``ast`` (nothing is imported).

Two kinds of import are told apart:

* module-level imports (the module body, including ``if``/``try`` blocks and class bodies, but
  not function bodies) run while the module is being initialised, so a circle of them can hand
  a half-initialised module to its importer; this graph must be acyclic;
* imports inside functions (lazy: they keep ``espnet2`` and other slow imports off the command
  lines that do not need them) run at call time, when the modules they name are complete, so
  they cannot break initialisation. They are still dependencies: the graph of all imports must
  be acyclic too (two modules that need each other are one concern split in two, and hoisting
  either lazy import would make a module-level cycle), and they count for the layering.

Layering (DESIGN.md draws it): every module belongs to one layer of :data:`LAYERS`, and a
module imports only its own package or a lower layer. Two packages on the same layer (``wavlm``
and ``corpus``; ``prune`` and ``ssl``; ``measure`` and ``zoo``) do not import each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "espnet_prune"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def resolve(module: str, node: ast.ImportFrom | ast.Import, is_package: bool) -> list[str]:
    """The project modules an import statement in ``module`` names (a ``from X import y``
    names ``X.y`` where that is a module, else ``X``)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
        return [name for name in names if name in MODULES]
    base = node.module or ""
    if node.level:
        anchor = module.split(".") if is_package else module.split(".")[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join(anchor + ([base] if base else []))
    targets = []
    for alias in node.names:
        candidate = f"{base}.{alias.name}"
        if candidate in MODULES:
            targets.append(candidate)
        elif base in MODULES:
            targets.append(base)
    return targets


def is_type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def imports_of(module: str) -> tuple[set[str], set[str]]:
    """(module-level imports, imports inside functions) of ``module``, project modules only."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    top, lazy = set(), set()

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if is_type_checking(child):
                continue  # never runs
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                targets = resolve(module, child, is_package)
                (lazy if in_function else top).update(t for t in targets if t != module)
            visit(child, in_function or isinstance(
                child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return top, lazy


GRAPH = {module: imports_of(module) for module in MODULES}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``edges`` as a list of modules (first repeated last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state:
                found = walk(target)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            found = walk(node)
            if found:
                return found
    return None


def test_graph_reads_the_package():
    # guards the parser: a graph without edges would pass everything below
    assert "espnet_prune.wavlm.model" in GRAPH["espnet_prune.wavlm.checkpoint"][0]
    assert "espnet_prune.wavlm" in GRAPH["espnet_prune.prune.export"][0]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_module_level_imports_are_acyclic():
    cycle = find_cycle({module: top for module, (top, _) in GRAPH.items()})
    assert cycle is None, "module-level import cycle: " + " -> ".join(cycle)


def test_all_imports_are_acyclic():
    cycle = find_cycle({module: top | lazy for module, (top, lazy) in GRAPH.items()})
    assert cycle is None, "import cycle (lazy imports included): " + " -> ".join(cycle)


def offending_imports(importers: str, forbidden: tuple[str, ...], exempt: str | None = None):
    found = []
    for module, (top, lazy) in GRAPH.items():
        if not (module == importers or module.startswith(importers + ".")):
            continue
        if exempt and (module == exempt or module.startswith(exempt + ".")):
            continue
        for target in sorted(top | lazy):
            if any(target == f or target.startswith(f + ".") for f in forbidden):
                found.append(f"{module} imports {target}")
    return found


# bottom to top; a name is a top-level module or package of espnet_prune ("" is the package's
# own __init__: the public facade, which may re-export from any layer)
LAYERS = [
    ("errors",),
    ("utils", "registration"),
    ("wavlm", "corpus"),
    ("diar",),
    ("prune", "ssl"),
    ("espnet_compat",),
    ("tasks",),
    ("infer",),
    ("eval",),
    ("measure", "zoo"),
    ("",),
    ("bin",),
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def package_of(module: str) -> str:
    """``espnet_prune.diar.model`` -> ``diar``; the package itself -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def layer_violations(graph) -> list[str]:
    found = []
    for module, (top, lazy) in graph.items():
        source = package_of(module)
        for target in sorted(top | lazy):
            dest = package_of(target)
            if dest != source and RANK[dest] >= RANK[source]:
                found.append(f"{module} ({source or PACKAGE}, layer {RANK[source]}) imports "
                             f"{target} ({dest or PACKAGE}, layer {RANK[dest]})")
    return found


def test_every_package_has_a_layer():
    unplaced = sorted({package_of(module) for module in MODULES} - set(RANK))
    assert unplaced == [], f"add these to LAYERS (and DESIGN.md): {unplaced}"


def test_imports_only_go_down_the_layers():
    assert layer_violations(GRAPH) == []


def test_an_upward_import_is_caught():
    # guards the rule itself: the two directions that once existed between prune and tasks
    graph = {"espnet_prune.prune.export": ({"espnet_prune.tasks.chunked"}, set()),
             "espnet_prune.tasks.chunked": ({"espnet_prune.prune.optim"}, set()),
             "espnet_prune.wavlm.model": (set(), {"espnet_prune.corpus.download"})}
    assert layer_violations(graph) == [
        "espnet_prune.prune.export (prune, layer 4) imports espnet_prune.tasks.chunked "
        "(tasks, layer 6)",
        "espnet_prune.wavlm.model (wavlm, layer 2) imports espnet_prune.corpus.download "
        "(corpus, layer 2)",
    ]


def test_nothing_but_the_command_lines_imports_them():
    assert offending_imports(PACKAGE, (f"{PACKAGE}.bin",), exempt=f"{PACKAGE}.bin") == []


def top_level_names(module: str) -> set[str]:
    """Names a module defines or imports at its top level (what ``from module import x``
    can take), found without importing it."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    if "__getattr__" in names:  # a lazy facade: the string keys of its module-level tables
        for node in tree.body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
                names.update(key.value for key in node.value.keys
                             if isinstance(key, ast.Constant) and isinstance(key.value, str))
    return names


def unresolved_imports(roots: list[Path]) -> list[str]:
    """``from espnet_prune.x import y`` statements (lazy ones included) whose module or name
    does not exist: a moved module leaves such imports behind in function bodies, which no
    import of the package would notice."""
    found = []
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if not (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                        and node.module.split(".")[0] == PACKAGE):
                    continue
                if node.module not in MODULES:
                    found.append(f"{path}:{node.lineno}: no module {node.module}")
                    continue
                for alias in node.names:
                    if (f"{node.module}.{alias.name}" not in MODULES
                            and alias.name not in top_level_names(node.module)):
                        found.append(f"{path}:{node.lineno}: {node.module} has no {alias.name}")
    return found


def test_every_project_import_resolves():
    repo = ROOT.parent
    assert unresolved_imports([ROOT, repo / "test", repo / "egs2"]) == []
