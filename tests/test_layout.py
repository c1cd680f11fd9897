"""The package's layout, checked on the source with ``ast``:

- the import graph of ``guild_jupyter`` has no cycle: every import that
  runs is an edge, at module level or in a function (a cycle hidden behind
  a function-level import is still a cycle: the two modules still need
  each other, and which half loads first is left to whoever imports
  first);
- a function-level import of a package module says why it is not at module
  level, in a ``# lazy:`` comment on its line or right above it (or above
  the block of imports it is in): start-up cost, as a CLI command or a
  run's supervisor must not load what it does not use;
- no ``_private`` name is imported from another module of the package.

Imports under ``if TYPE_CHECKING:`` never run and are not edges."""

from __future__ import annotations

import ast
import pathlib
from dataclasses import dataclass, field

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "guild_jupyter"


@dataclass
class Module:
    name: str
    path: pathlib.Path
    is_package: bool
    #: imports of package modules that run, at module level or in a
    #: function: (target module, line)
    edges: list[tuple[str, int]] = field(default_factory=list)
    #: function-level imports of package modules without a ``# lazy:``
    #: reason: (target module, line)
    lazy: list[tuple[str, int]] = field(default_factory=list)
    #: private names imported from package modules: (name, target, line)
    private: list[tuple[str, str, int]] = field(default_factory=list)


def module_name(path: pathlib.Path, root: pathlib.Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """Every import statement with whether it runs inside a function."""

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    yield from visit_one(sub, in_function)
                continue
            yield from visit_one(child, in_function)

    def visit_one(child, in_function):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, in_function
        else:
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            yield from visit(child, inner)

    yield from visit(tree, False)


def _says_why(lines: list[str], lineno: int) -> bool:
    """A ``# lazy:`` comment on the import's line, or in the comment lines
    right above it or above the block of imports it is part of."""
    if "# lazy:" in lines[lineno - 1]:
        return True
    i = lineno - 2
    while i >= 0 and lines[i].strip().startswith(("#", "from ", "import ")):
        if lines[i].strip().startswith("# lazy:"):
            return True
        i -= 1
    return False


def scan(root: pathlib.Path = PACKAGE) -> dict[str, Module]:
    modules = {}
    for path in sorted(root.rglob("*.py")):
        name = module_name(path, root)
        modules[name] = Module(name, path, path.name == "__init__.py")
    top = root.name
    for mod in modules.values():
        package = mod.name if mod.is_package else mod.name.rsplit(".", 1)[0]
        source = mod.path.read_text()
        lines = source.splitlines()
        for node, in_function in _imports(ast.parse(source, str(mod.path))):
            targets = []  # (module, names imported from it)
            if isinstance(node, ast.Import):
                targets = [(a.name, []) for a in node.names]
            else:
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    source_mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    source_mod = node.module or ""
                plain = []
                for alias in node.names:
                    sub = f"{source_mod}.{alias.name}"
                    if sub in modules:  # ``from . import x``: the submodule x
                        targets.append((sub, []))
                    else:
                        plain.append(alias.name)
                if plain or not node.names:
                    targets.append((source_mod, plain))
            for target, names in targets:
                if target.split(".")[0] != top:
                    continue
                while target not in modules and "." in target:
                    target = target.rsplit(".", 1)[0]
                mod.edges.append((target, node.lineno))
                if in_function and not _says_why(lines, node.lineno):
                    mod.lazy.append((target, node.lineno))
                for n in names:
                    if n.startswith("_") and not n.startswith("__"):
                        mod.private.append((n, target, node.lineno))
    return modules


def find_cycles(modules: dict[str, Module]) -> list[list[str]]:
    """The strongly connected components with more than one module (or a
    module importing itself), each as one cycle through it."""
    graph = {name: sorted({t for t, _ in m.edges if t in modules}) for name, m in modules.items()}
    index, low, on_stack, stack, components = {}, {}, set(), [], []
    counter = [0]

    def strongconnect(v):
        # Iterative Tarjan: the graph is small, but recursion depth is not ours to spend.
        work = [(v, iter(graph[v]))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        while work:
            node, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(graph[w])))
                    advanced = True
                    break
                if w in on_stack:
                    low[node] = min(low[node], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                if len(comp) > 1 or node in graph[node]:
                    components.append(sorted(comp))

    for v in graph:
        if v not in index:
            strongconnect(v)
    return [_cycle_through(graph, comp) for comp in sorted(components)]


def _cycle_through(graph, comp):
    """One cycle inside a strongly connected component, for the message."""
    members = set(comp)
    start = comp[0]
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in graph[v]:
                if w == start:
                    return paths[v] + [start]
                if w in members and w not in paths:
                    paths[w] = paths[v] + [w]
                    nxt.append(w)
        frontier = nxt
    return comp


def _describe(modules, cycle):
    out = []
    for a, b in zip(cycle, cycle[1:]):
        line = next(ln for t, ln in modules[a].edges if t == b)
        out.append(f"{a} (line {line}) -> {b}")
    return "\n  ".join(out)


def test_the_import_graph_has_no_cycle():
    modules = scan()
    cycles = find_cycles(modules)
    message = "\n".join(f"cycle {i + 1}:\n  {_describe(modules, c)}" for i, c in enumerate(cycles))
    print(f"{len(cycles)} import cycle(s) among {len(modules)} modules")
    assert not cycles, message


def test_function_level_imports_say_why():
    missing = [f"{m.path.relative_to(PACKAGE.parent)}:{line} imports {target}"
               for m in scan().values() for target, line in m.lazy]
    assert not missing, "function-level imports without a '# lazy:' reason:\n" + "\n".join(missing)


def test_no_private_name_is_imported_across_modules():
    found = [f"{m.path.relative_to(PACKAGE.parent)}:{line} imports {name} from {target}"
             for m in scan().values() for name, target, line in m.private if target != m.name]
    assert not found, "\n".join(found)


# The checks themselves, on a package made for them: each must be able to fail.

def _package(tmp_path, files):
    root = tmp_path / "guild_jupyter"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for d in [root, *[p for p in root.rglob("*") if p.is_dir()]]:
        (d / "__init__.py").touch()
    return root


def test_a_cycle_is_found_through_every_import_form(tmp_path):
    root = _package(tmp_path, {
        "a/x.py": "from ..b import y\n",
        "b/y.py": "import guild_jupyter.c.z\n",
        "c/z.py": "from ..a.x import thing\n",
        "d.py": "from .a import x\n",
    })
    cycles = find_cycles(scan(root))
    assert cycles == [["guild_jupyter.a.x", "guild_jupyter.b.y", "guild_jupyter.c.z", "guild_jupyter.a.x"]]


def test_from_package_import_submodule_is_an_edge_to_the_submodule(tmp_path):
    root = _package(tmp_path, {"p/m.py": "from . import n\n", "p/n.py": "from . import m\n"})
    assert find_cycles(scan(root)) == [["guild_jupyter.p.m", "guild_jupyter.p.n", "guild_jupyter.p.m"]]


def test_a_function_level_import_is_an_edge_and_type_checking_is_not(tmp_path):
    root = _package(tmp_path, {
        "m.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import n\n",
        "n.py": "def f():\n    from . import m\n",
        "o.py": "def f():\n    # lazy: heavy\n    from . import p\n",
        "p.py": "from . import o\n",
    })
    modules = scan(root)
    assert find_cycles(modules) == [["guild_jupyter.o", "guild_jupyter.p", "guild_jupyter.o"]]
    assert modules["guild_jupyter.n"].lazy == [("guild_jupyter.m", 2)]


def test_a_lazy_reason_on_the_line_or_above_is_accepted(tmp_path):
    root = _package(tmp_path, {
        "m.py": "def f():\n    # lazy: heavy,\n    # and more\n    from . import n\n\n"
                "def g():\n    from . import n  # lazy: heavy\n\n"
                "def h():\n    import json\n\n"
                "def i():\n    # lazy: heavy\n\n    from . import n\n\n"
                "def j():\n    # lazy: both heavy\n    from . import n\n    from . import o\n",
        "n.py": "", "o.py": "",
    })
    assert scan(root)["guild_jupyter.m"].lazy == [("guild_jupyter.n", 15)]  # a blank line parts it from its reason


def test_private_names_are_found(tmp_path):
    root = _package(tmp_path, {"m.py": "from .n import _hidden, __version__, shown\n", "n.py": ""})
    assert scan(root)["guild_jupyter.m"].private == [("_hidden", "guild_jupyter.n", 1)]
