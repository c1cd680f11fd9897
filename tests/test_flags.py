"""Flags reach a Python script the way Guild does it (SPEC section 4):
static discovery of a script's flags, checking given flags, and the script
runner receiving them for real, as command-line arguments (argparse) or as
replaced module-level assignments (globals)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import traceback

import pytest

from guild_jupyter.errors import FlagError, ScriptError
from guild_jupyter.execution.flags import (
    ScriptFlags,
    check_flags,
    encode_args,
    inspect_script,
    rewrite_globals,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def src(text: str) -> str:
    return textwrap.dedent(text)


# -- inspect_script: globals ------------------------------------------------------


def test_globals_literals_and_defaults():
    f = inspect_script(src(
        """\
        import os
        lr = 0.1
        epochs = 10
        name = "base model"
        verbose = False
        debug = True
        nothing = None
        neg = -3
        negf = -0.5
        pos = +2
        layers = [64, -32, 0.5, "x", True, None]
        shape = (3, 4)
        nested = [[1, 2], [3]]
        lr: float = 0.2
        """
    ), "train.py")
    assert f.style == "globals"
    assert f.defaults == {
        "lr": 0.1, "epochs": 10, "name": "base model", "verbose": False, "debug": True,
        "nothing": None, "neg": -3, "negf": -0.5, "pos": 2,
        "layers": [64, -32, 0.5, "x", True, None], "shape": [3, 4], "nested": [[1, 2], [3]],
    }
    assert list(f.defaults) == ["lr", "epochs", "name", "verbose", "debug", "nothing", "neg",
                                "negf", "pos", "layers", "shape", "nested"]
    assert f.options["lr"] == {"line": 2}
    assert f.names == list(f.defaults)


def test_globals_first_assignment_wins():
    f = inspect_script("lr = 0.1\nlr = 0.2\nlr = compute()\nx = f()\nx = 3\nx = 4\n")
    assert f.defaults == {"lr": 0.1, "x": 3}
    assert f.options["x"] == {"line": 5}


def test_globals_only_top_level_simple_assignments():
    f = inspect_script(src(
        """\
        a = 1
        _private = 2
        __dunder__ = 3
        b: int
        c: int = 4
        d = e = 5
        g, h = 6, 7
        obj.attr = 8
        items[0] = 9
        a += 10
        s = f"{a}"
        call = dict(x=1)
        mapping = {"k": 1}
        aset = {1, 2}
        expr = 1 + 2
        blob = b"bytes"
        cplx = 1j
        lst = [1, foo]
        if True:
            in_if = 1
        for i in range(2):
            in_for = 1
        def fn():
            in_def = 1
        class K:
            in_class = 1
        with open(__file__) as fh:
            in_with = 1
        try:
            in_try = 1
        except Exception:
            pass
        """
    ))
    assert f.defaults == {"a": 1, "c": 4, "d": 5, "e": 5}


def test_plain_script_without_flags():
    f = inspect_script("print('hi')\n")
    assert f == ScriptFlags("globals", {}, {})


def test_script_flags_is_immutable_and_compares_by_value():
    f = inspect_script("x = 1\n")
    with pytest.raises(AttributeError):
        f.style = "args"
    assert f == inspect_script("x = 1\n") and f != inspect_script("x = 2\n")


# -- inspect_script: argparse -----------------------------------------------------


ARGPARSE_TRAIN = src(
    """\
    import argparse

    def main():
        p = argparse.ArgumentParser()
        p.add_argument("data", help="positional: not a flag")
        p.add_argument("-l", "--lr", type=float, default=0.01)
        p.add_argument("--batch-size", type=int, default=-32, dest="bs")
        p.add_argument("--name", default="base model")
        p.add_argument("--momentum", type=float, default="0.9")
        p.add_argument("--verbose", action="store_true")
        p.add_argument("--no-shuffle", action="store_false", dest="shuffle")
        p.add_argument("--fast", action="store_true", default=True)
        p.add_argument("--layers", nargs="+", type=int, default=[64, -32])
        p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=False)
        p.add_argument("--tag", action="append")
        p.add_argument("--seed", type=my_type, default=compute_seed())
        p.add_argument("-q", dest="quiet", action="store_true")
        p.add_argument("--version", action="version", version="1")
        return p.parse_args()
    """
)


def test_argparse_flags():
    f = inspect_script(ARGPARSE_TRAIN, "train.py")
    assert f.style == "args"
    assert f.defaults == {
        "lr": 0.01, "batch-size": -32, "name": "base model", "momentum": 0.9,
        "verbose": False, "no-shuffle": True, "fast": True, "layers": [64, -32],
        "amp": False, "tag": None, "seed": None,
    }
    assert list(f.defaults) == ["lr", "batch-size", "name", "momentum", "verbose", "no-shuffle",
                                "fast", "layers", "amp", "tag", "seed"]
    o = f.options
    assert o["lr"] == {"option": "--lr", "action": "store", "type": "float", "nargs": None, "dest": "lr"}
    assert o["batch-size"]["option"] == "--batch-size"
    assert o["batch-size"]["dest"] == "bs" and o["batch-size"]["type"] == "int"
    assert o["name"]["type"] is None and o["name"]["dest"] == "name"
    assert o["verbose"]["action"] == "store_true"
    assert o["no-shuffle"]["action"] == "store_false" and o["no-shuffle"]["dest"] == "shuffle"
    assert o["layers"]["nargs"] == "+"
    assert o["amp"]["action"] == "boolean_optional" and o["amp"]["negative_option"] == "--no-amp"
    assert o["tag"]["action"] == "append"
    assert o["seed"]["type"] is None


def test_argparse_from_import_and_detection_rules():
    f = inspect_script("from argparse import ArgumentParser\np = ArgumentParser()\n"
                       "p.add_argument('--x', default=1)\nlr = 0.1\n")
    assert f.style == "args" and f.defaults == {"x": 1}
    # argparse imported but no add_argument: the globals are the flags
    f = inspect_script("import argparse\nlr = 0.1\n")
    assert f.style == "globals" and f.defaults == {"lr": 0.1}
    # add_argument without argparse (some other library): globals
    f = inspect_script("import click\nlr = 0.1\nthing.add_argument('--x')\n")
    assert f.style == "globals" and f.defaults == {"lr": 0.1}


def test_argparse_first_definition_wins():
    f = inspect_script("import argparse\np = argparse.ArgumentParser()\n"
                       "p.add_argument('--x', default=1)\np.add_argument('--x', default=2)\n")
    assert f.defaults == {"x": 1}


# -- syntax errors ----------------------------------------------------------------


def test_syntax_error_is_script_error():
    with pytest.raises(ScriptError) as e:
        inspect_script("x = 1\ny = (\n", "train.py")
    msg = str(e.value)
    assert msg.startswith("train.py: syntax error at line 2: ")
    assert "\n" not in msg
    with pytest.raises(ScriptError, match=r"^b\.py: syntax error at line 1: "):
        rewrite_globals("def (:\n", {"x": 1}, "b.py")
    with pytest.raises(ScriptError, match=r"^c\.py: syntax error at line 2: 'return' outside function"):
        rewrite_globals("x = 1\nreturn 2\n", {"x": 3}, "c.py")


# -- check_flags ------------------------------------------------------------------


def test_check_flags_accepts_defined():
    f = inspect_script("a = 1\nb = 'x'\nc = [1]\n")
    check_flags(f, {"a": 2, "b": None, "c": [1, 2]}, "train.py")
    check_flags(f, {}, "train.py")


def test_check_flags_one_unknown():
    f = inspect_script("a = 1\nb = 2\nc = 3\n")
    with pytest.raises(FlagError) as e:
        check_flags(f, {"a": 1, "x": 2}, "train.py")
    assert str(e.value) == "flag 'x' is not defined by train.py (flags: a, b, c)"


def test_check_flags_all_unknown_in_one_message():
    f = inspect_script(ARGPARSE_TRAIN)
    with pytest.raises(FlagError) as e:
        check_flags(f, {"x": 1, "lr": 2, "bs": 3}, "train.py")
    assert str(e.value) == (
        "flags 'x', 'bs' are not defined by train.py (flags: lr, batch-size, name, momentum, "
        "verbose, no-shuffle, fast, layers, amp, tag, seed)"
    )


def test_check_flags_script_without_flags():
    with pytest.raises(FlagError, match=r"^flag 'lr' is not defined by run\.py \(it defines no flags\)$"):
        check_flags(inspect_script("print(1)\n"), {"lr": 1}, "run.py")


def test_check_flags_value_that_cannot_be_passed():
    with pytest.raises(FlagError, match="flag 'a'"):
        check_flags(inspect_script("a = 1\n"), {"a": object()}, "train.py")


# -- encode_args / rewrite_globals (in process) -----------------------------------


def test_encode_args():
    f = inspect_script(ARGPARSE_TRAIN)
    args = encode_args(f, {
        "lr": -0.5, "batch-size": 16, "name": "a b", "momentum": None, "verbose": True,
        "no-shuffle": True, "fast": False, "layers": [1, -2], "amp": False, "tag": ["x", "y"],
    })
    assert args == ["--lr=-0.5", "--batch-size=16", "--name=a b", "--verbose", "--layers", "1", "-2",
                    "--no-amp", "--tag=x", "--tag=y"]
    assert encode_args(f, {"verbose": False, "no-shuffle": False, "amp": True}) == ["--no-shuffle", "--amp"]
    assert encode_args(f, {"name": ""}) == ["--name="]
    assert encode_args(f, {"name": True, "lr": 1.0}) == ["--name=True", "--lr=1.0"]


def test_rewrite_globals_keeps_lines_and_other_code():
    source = src(
        """\
        lr = 0.1
        lr = lr * 2
        a = b = 5
        shape = (1, 2)
        _hidden = 1
        def fail():
            raise ValueError(lr)
        """
    )
    code = rewrite_globals(source, {"lr": -1.5, "b": [1, "x"], "shape": [3, 4], "missing": 1}, "/x/train.py")
    assert code.co_filename == "/x/train.py"
    g: dict = {}
    exec(code, g)
    assert (g["lr"], g["a"], g["b"], g["shape"]) == (-3.0, 5, [1, "x"], (3, 4))
    with pytest.raises(ValueError) as e:
        g["fail"]()
    last = traceback.extract_tb(e.value.__traceback__)[-1]
    assert (last.filename, last.lineno) == ("/x/train.py", 7)


def test_rewrite_globals_annotated_and_unsupported_value():
    g: dict = {}
    exec(rewrite_globals("x: float = 0.1\n", {"x": 2.5}), g)
    assert g["x"] == 2.5 and g["__annotations__"] == {"x": float}
    with pytest.raises(FlagError, match="flag 'x'"):
        rewrite_globals("x = 1\n", {"x": object()})


# -- the runner, in real subprocesses ---------------------------------------------


def run_script(path, flags=None, dest=None, args=(), cwd=None, timeout=60):
    env = dict(os.environ)
    env.pop("GUILD_JUPYTER_FLAGS", None)
    env.pop("GUILD_JUPYTER_FLAGS_DEST", None)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    if flags is not None:
        env["GUILD_JUPYTER_FLAGS"] = json.dumps(flags)
    if dest is not None:
        env["GUILD_JUPYTER_FLAGS_DEST"] = dest
    return subprocess.run(
        [sys.executable, "-m", "guild_jupyter.execution.runscript", str(path), *args],
        env=env, cwd=cwd or REPO, capture_output=True, text=True, timeout=timeout,
    )


GLOBALS_SCRIPT = src(
    """\
    name = "base"
    flag_t = False
    flag_f = True
    lr = 0.1
    steps = 5
    shift = 0.5
    layers = [1, 2]
    for v in (name, flag_t, flag_f, lr, steps, shift, layers):
        print(repr(v))
    """
)

ARGS_SCRIPT = src(
    """\
    import argparse
    p = argparse.ArgumentParser()
    p.add_argument("--name", default="base")
    p.add_argument("--flag-t", action="store_true")
    p.add_argument("--flag-f", action="store_false")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--shift", type=float, default=0.5)
    p.add_argument("--layers", type=int, nargs="+", default=[1, 2])
    a = p.parse_args()
    for v in (a.name, a.flag_t, a.flag_f, a.lr, a.steps, a.shift, a.layers):
        print(repr(v))
    """
)

EXPECTED = ["'a b  c'", "True", "False", "0.25", "-3", "-1.5", "[3, -4, 5]"]


@pytest.mark.parametrize("dest", ["globals", None])
def test_runner_globals_receives_values(tmp_path, dest):
    script = tmp_path / "train.py"
    script.write_text(GLOBALS_SCRIPT)
    flags = {"name": "a b  c", "flag_t": True, "flag_f": False, "lr": 0.25, "steps": -3,
             "shift": -1.5, "layers": [3, -4, 5]}
    check_flags(inspect_script(GLOBALS_SCRIPT), flags, "train.py")
    p = run_script(script, flags, dest)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == EXPECTED


@pytest.mark.parametrize("dest", ["args", None])
def test_runner_args_receives_values(tmp_path, dest):
    script = tmp_path / "train.py"
    script.write_text(ARGS_SCRIPT)
    flags = {"name": "a b  c", "flag-t": True, "flag-f": False, "lr": 0.25, "steps": -3,
             "shift": -1.5, "layers": [3, -4, 5]}
    check_flags(inspect_script(ARGS_SCRIPT), flags, "train.py")
    p = run_script(script, flags, dest)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == EXPECTED


def test_runner_defaults_when_flags_absent_or_empty(tmp_path):
    for body in (GLOBALS_SCRIPT, ARGS_SCRIPT):
        script = tmp_path / "train.py"
        script.write_text(body)
        for flags in (None, {}):
            p = run_script(script, flags)
            assert p.returncode == 0, p.stderr
            assert p.stdout.splitlines() == ["'base'", "False", "True", "0.1", "5", "0.5", "[1, 2]"]


def test_runner_like_python_script(tmp_path):
    """__main__, __file__, sys.argv, the script's directory first on sys.path
    (a sibling module imports), and pickling the script's own functions."""
    (tmp_path / "helper.py").write_text("VALUE = 42\n")
    script = tmp_path / "main.py"
    script.write_text(src(
        """\
        import os, pickle, sys
        import helper
        x = 1
        def f():
            return x
        print(__name__, __file__, sys.argv, sys.path[0], helper.VALUE)
        print(pickle.loads(pickle.dumps(f)) is f, f())
        """
    ))
    p = run_script(script, {"x": 7}, "globals", args=["extra"])
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == f"__main__ {script} {[str(script), 'extra']} {tmp_path} 42"
    assert lines[1] == "True 7"


def test_runner_exception_exits_1_with_user_traceback(tmp_path):
    script = tmp_path / "boom.py"
    script.write_text("lr = 0.1\n\ndef go():\n    raise RuntimeError(f'bad lr {lr}')\n\ngo()\n")
    for flags, dest in (({"lr": 0.5}, "globals"), (None, None)):
        p = run_script(script, flags, dest)
        assert p.returncode == 1
        err = p.stderr
        assert err.startswith("Traceback (most recent call last):\n"), err
        assert f'File "{script}", line 6, in <module>' in err
        assert f'File "{script}", line 4, in go' in err
        assert err.rstrip().endswith("RuntimeError: bad lr " + ("0.5" if flags else "0.1"))
        assert "runscript" not in err and "runpy" not in err


def test_runner_exception_in_argparse_script(tmp_path):
    script = tmp_path / "boom.py"
    script.write_text("import argparse\np = argparse.ArgumentParser()\np.add_argument('--n', type=int)\n"
                      "a = p.parse_args()\nprint(1 / a.n)\n")
    p = run_script(script, {"n": 0}, "args")
    assert p.returncode == 1
    assert f'File "{script}", line 5, in <module>' in p.stderr
    assert "ZeroDivisionError" in p.stderr and "runscript" not in p.stderr


def test_runner_syntax_error(tmp_path):
    script = tmp_path / "bad.py"
    script.write_text("x = 1\ny = (\n")
    with pytest.raises(ScriptError):
        inspect_script(script.read_text(), "bad.py")
    for flags, dest in (({"x": 2}, "globals"), ({"x": 2}, "args"), (None, None)):
        p = run_script(script, flags, dest)
        assert p.returncode == 1
        assert f'File "{script}", line 2' in p.stderr
        assert "SyntaxError" in p.stderr and "runscript" not in p.stderr


@pytest.mark.parametrize("dest", ["globals", "args"])
def test_runner_sys_exit_status(tmp_path, dest):
    script = tmp_path / "ex.py"
    body = "import sys\ncode = 0\nprint('before')\nsys.exit(code)\n"
    if dest == "args":
        body = ("import argparse, sys\np = argparse.ArgumentParser()\np.add_argument('--code', type=int)\n"
                "print('before')\nsys.exit(p.parse_args().code)\n")
    script.write_text(body)
    p = run_script(script, {"code": 3}, dest)
    assert p.returncode == 3 and p.stdout == "before\n" and p.stderr == ""


def test_runner_argparse_error_exits_2(tmp_path):
    script = tmp_path / "a.py"
    script.write_text("import argparse\np = argparse.ArgumentParser()\np.add_argument('--n', type=int)\n"
                      "p.parse_args()\n")
    p = run_script(script, {"n": "not-a-number"}, "args")
    assert p.returncode == 2 and "invalid int value" in p.stderr


def test_runner_missing_script(tmp_path):
    p = run_script(tmp_path / "nope.py", {})
    assert p.returncode == 2 and "can't open file" in p.stderr


def test_runner_multiprocessing_spawn_sees_flags(tmp_path):
    script = tmp_path / "mp.py"
    script.write_text(src(
        """\
        import multiprocessing as mp
        lr = 0.1
        def work(i):
            return (i, lr, __name__)
        if __name__ == "__main__":
            with mp.get_context("spawn").Pool(1) as pool:
                print(pool.map(work, [1, 2]))
        """
    ))
    p = run_script(script, {"lr": 0.5}, "globals", timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[(1, 0.5, '__mp_main__'), (2, 0.5, '__mp_main__')]"
