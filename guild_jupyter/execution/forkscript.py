"""Running the run's script in a forked child of the supervisor.

The child runs the script as ``python -u -m guild_jupyter.execution.runscript
SCRIPT`` would, minus the interpreter start (see :mod:`.forking`): its own
process group, stdout and stderr into the supervisor's pipe, unbuffered
stdio, the script's directory first on ``sys.path``, then the interpreter's
shutdown. The child never returns into the supervisor's code.
"""

from __future__ import annotations

import os
import signal
import sys

from . import forking

RUNSCRIPT = "guild_jupyter.execution.runscript"
NOTEBOOK_RUNNER = "guild_jupyter.execution.notebook"  # a notebook run: nbclient in a fresh kernel


def fork_script(script: str, env: dict, cwd: str, runner: str = RUNSCRIPT) -> forking.ForkedProcess:
    """Runs the script in a forked child (own process group, output into
    a pipe, working directory ``cwd``), as ``python -u -m RUNNER SCRIPT``
    would, minus the interpreter start. ``runner``: the module whose
    ``main([SCRIPT])`` runs it: ``RUNSCRIPT`` or ``NOTEBOOK_RUNNER``."""
    r, w = os.pipe()
    forking.flush_std()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            forking.default_signals()
            os.setpgid(0, 0)
            os.close(r)
            forking.redirect_std(out_fd=w)
            forking.close_fds_except()
            os.chdir(cwd)
            os.environ.clear()
            os.environ.update(env)
            code = _run_script_here(script, runner)
        finally:
            os._exit(code)
    try:
        os.setpgid(pid, pid)  # also here: a stop may signal the group at once
    except OSError:
        pass
    os.close(w)
    return forking.ForkedProcess(pid, r)


def preload_runners() -> None:
    """Loads the script runner and the flag engine into a process that
    forks many supervisors, so that each forked script inherits them."""
    # lazy: only such a launcher loads them ahead; a lone supervisor's child loads what it runs
    from . import flaginject, flagscan, runscript  # noqa: F401


def _run_script_here(script: str, runner: str = RUNSCRIPT) -> int:
    """In a forked child: run ``script`` like a fresh ``python -u`` would --
    unbuffered stdio, the script's directory first on ``sys.path``, then the
    interpreter's shutdown (non-daemon threads joined, atexit handlers run)."""
    import atexit
    import io
    import threading

    getattr(atexit, "_clear", lambda: None)()  # the parent's handlers are not the script's
    enc = os.environ.get("PYTHONIOENCODING") or "utf-8"
    sys.stdin = sys.__stdin__ = open(os.devnull, encoding=enc)
    out = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding=enc, write_through=True)
    err = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding=enc, errors="backslashreplace",
                           write_through=True)
    _keep.extend((sys.stdout, sys.stderr))  # dropping them could flush stale bytes
    sys.stdout = sys.__stdout__ = out
    sys.stderr = sys.__stderr__ = err
    script_dir = os.path.dirname(os.path.abspath(script))
    if sys.path:
        sys.path[0] = script_dir
    else:
        sys.path.insert(0, script_dir)
    if runner == NOTEBOOK_RUNNER:
        # lazy: only the forked child runs the notebook: the supervisor never loads the runner
        from . import notebook as module
    else:
        # lazy: only the forked child runs the script: the supervisor never loads the runner
        from . import runscript as module
    interrupted = False
    try:
        code = module.main([script])
    except SystemExit as e:
        code = _exit_code(e.code)
    except KeyboardInterrupt:
        import traceback

        traceback.print_exc()
        code, interrupted = 130, True
    for t in threading.enumerate():
        if t is not threading.current_thread() and not t.daemon:
            t.join()
    run_exitfuncs = getattr(atexit, "_run_exitfuncs", None)
    if run_exitfuncs:
        run_exitfuncs()
    for s in (sys.stdout, sys.stderr):
        try:
            s.flush()
        except (OSError, ValueError):
            pass
    if interrupted:  # like Python: die of the SIGINT
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    return code


_keep: list = []


def _exit_code(value) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    try:
        print(value, file=sys.stderr)
    except Exception:
        pass
    return 1
