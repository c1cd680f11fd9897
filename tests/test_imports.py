"""The layering, checked on the source: front ends (the CLI, the magics and
their completion, the server, the panel) go through ``api`` and the display
and view modules, never the store, the queue engine or the execution
internals. Every import is read with ``ast``: top-level or inside a
function, absolute or relative."""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "guild_jupyter"
FORBIDDEN = ("store", "execution", "queueing", "gpus", "opdef", "procs")
#: What a module of frontends/ may import of the package (besides each other):
#: the façade, the errors, the views and display types, and the IPython
#: start-up file (``autoload``, which ``guild-jupyter autoload`` writes).
FRONTEND_ALLOWED = ("api", "errors", "views", "display", "frontends", "autoload")


def front_end_modules() -> list[pathlib.Path]:
    found = sorted((PACKAGE / "frontends").rglob("*.py")) + sorted((PACKAGE / "server").glob("*.py"))
    found += [p for p in (PACKAGE / "widgets.py",) if p.exists()] + sorted(PACKAGE.glob("panel*.py"))
    return found


def module_name(path: pathlib.Path, root: pathlib.Path = PACKAGE) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: pathlib.Path, root: pathlib.Path = PACKAGE) -> list[str]:
    """Every module the file imports, absolute (``from . import x`` counts
    as importing ``package.x``)."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            out.append(module)
            out += [f"{module}.{a.name}" for a in node.names]
    return out


def internal(name: str) -> str | None:
    """``store`` for ``guild_jupyter.store.run``; None outside the package."""
    parts = name.split(".")
    return parts[1] if parts[0] == "guild_jupyter" and len(parts) > 1 else None


def violations(path: pathlib.Path, root: pathlib.Path = PACKAGE) -> list[str]:
    return sorted({name for name in imported(path, root) if internal(name) in FORBIDDEN})


# Modules another change is still taking off the internals: name -> reason,
# each marked xfail(strict=True) so the mark must go as soon as it is clean.
PENDING: dict[str, str] = {}


def _param(path: pathlib.Path):
    rel = str(path.relative_to(PACKAGE))
    marks = [pytest.mark.xfail(strict=True, reason=PENDING[rel])] if rel in PENDING else []
    return pytest.param(path, id=rel, marks=marks)


def test_the_rule_sees_imports_of_every_form(tmp_path):
    pkg = tmp_path / "guild_jupyter" / "frontends"
    pkg.mkdir(parents=True)
    bad = pkg / "bad.py"
    bad.write_text("import guild_jupyter.procs\nfrom .. import opdef\nfrom ..store.run import Run\n"
                   "def f():\n    from guild_jupyter.queueing import hosts\n    from ..gpus import nvml\n    from ..execution import flags\n")
    assert {internal(n) for n in violations(bad, tmp_path / "guild_jupyter")} == set(FORBIDDEN)


def test_there_are_front_ends_to_check():
    names = {str(p.relative_to(PACKAGE)) for p in front_end_modules()}
    assert {"frontends/commands.py", "frontends/cli.py", "frontends/magics.py", "frontends/completion.py"} <= names
    assert any(n.startswith("server/") for n in names)


@pytest.mark.parametrize("path", [_param(p) for p in front_end_modules()])
def test_front_ends_import_no_internals(path):
    assert violations(path) == []


@pytest.mark.parametrize("path", sorted((PACKAGE / "frontends").rglob("*.py")),
                         ids=lambda p: str(p.relative_to(PACKAGE / "frontends")))
def test_frontends_import_only_the_facade_and_the_views(path):
    used = {internal(n) for n in imported(path)} - {None}
    assert used <= set(FRONTEND_ALLOWED), used - set(FRONTEND_ALLOWED)


def test_the_old_front_end_modules_are_gone():
    for old in ("cli.py", "cli_queue.py", "magics.py"):
        assert not (PACKAGE / old).exists(), old
