"""Ownership rules checked over the package's source: one module changes a
run's status, and nothing signals a process but through process identity."""

from __future__ import annotations

import ast
import os

PKG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "guild_jupyter")
STATUS_FILES = {"PENDING_MARKER", "STAGED_MARKER", "LOCK", "LOCK_START", "PENDING", "STAGED", "LOCK.start",
                "exit_status", "stopped"}
WRITERS = {"write_attr", "write_atomic", "write_new", "remove", "unlink", "rename", "replace", "write_outcome"}
LIFECYCLE = {os.path.join("store", "transitions.py"),
             os.path.join("store", "transitions_end.py")}  # its outcome half, re-exported by it


def _modules():
    for dirpath, _, files in os.walk(PKG):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(dirpath, name)
                yield os.path.relpath(path, PKG), ast.parse(open(path, encoding="utf-8").read(), path)


def _names_in(node) -> set:
    out = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            out.add(n.id)
        elif isinstance(n, ast.Constant) and isinstance(n.value, str):
            out.add(n.value)
        elif isinstance(n, ast.Attribute):
            out.add(n.attr)
    return out


def _status_writes(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", None)
            if name in WRITERS and any(_names_in(a) & STATUS_FILES for a in node.args[:2]):
                yield node.lineno


def test_only_the_lifecycle_module_writes_status():
    offenders = [f"{rel}:{line}" for rel, tree in _modules() if rel not in LIFECYCLE
                 for line in _status_writes(tree)]
    assert offenders == [], "status markers or outcome attrs written outside store/transitions(_end).py"


def test_the_check_finds_a_status_write():
    """The rule above can fail: a write of an outcome attr is seen."""
    tree = ast.parse('run.write_attr("exit_status", 1)\nattrlib.remove(run.path(PENDING_MARKER))\n')
    assert list(_status_writes(tree)) == [1, 2]


def test_signals_go_through_process_identity():
    """os.kill/killpg only in the modules that verify a process first."""
    allowed = {"procs.py", os.path.join("execution", "control.py"),  # verified holders, recorded identities
               os.path.join("execution", "proctree.py"),  # the supervisor's own children
               os.path.join("execution", "forkscript.py")}  # a script dying of its own SIGINT
    users = set()
    for rel, tree in _modules():
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("kill", "killpg") and getattr(node.func.value, "id", None) == "os"):
                users.add(rel)
    assert users and users <= allowed, users
