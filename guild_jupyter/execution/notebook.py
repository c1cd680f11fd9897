"""Run a notebook with its flags, as a run's operation.

    python -m guild_jupyter.execution.notebook NOTEBOOK

The notebook runs top to bottom in a fresh kernel (nbclient), with the run
directory as working directory. The process that runs this is the run's
main process -- a child of our supervisor, or the process Guild's own queue
starts from the run's ``op`` attr -- and the kernel is its child, so the
supervisor's process-tree rules (stop, grace, SIGKILL, orphans) cover the
kernel and whatever the notebook starts.

Flags: ``GUILD_JUPYTER_FLAGS`` (JSON, set by our supervisor), else the
run's ``flags`` attr (``$RUN_DIR``, set by Guild). As papermill does, their
values go into a new code cell tagged ``injected-parameters`` right after
the parameters cell (see :mod:`.notebook_cells`).

Kernel: the notebook's kernelspec; ``python3`` (or none) is this
interpreter's own IPython kernel, whatever ``python3`` kernelspec is
installed elsewhere, so the notebook sees the packages the run's Python
has. A kernel that is not installed fails the run with a message naming
the kernels there are.

Output: what cells print, display (``text/plain``) and raise is written to
stdout/stderr as it arrives, so the supervisor tees it into the run's
output (follow, scalars, notices) as for a script. The executed notebook
is kept in the run directory (:mod:`..store.notebooks`). A failing cell
ends the run with exit status 1, its traceback last in the output; later
cells do not run. On SIGTERM (a stop) the kernel's process group is ended,
the executed notebook saved as far as it got, and the process ends by the
signal.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

from ..store.notebooks import write_executed
from ..store.run import Run
from .flags import assignments_source
from .notebook_cells import INJECTED_TAG, cell_tags, parameters_cell
from .runscript import FLAGS_ENV, env_flags

SAVE_INTERVAL = 1.0  # the executed notebook is rewritten at most this often while cells run
NATIVE_KERNEL = "python3"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_PRIVATE_ENV = ("GUILD_JUPYTER_FLAGS", "GUILD_JUPYTER_FLAGS_DEST", "GUILD_JUPYTER_SCRIPT")
_USAGE = "usage: python -m guild_jupyter.execution.notebook NOTEBOOK"


def main(argv=None) -> int:
    """Runs the notebook ``argv[0]``; returns the exit status (0, 1 for a
    failed cell or kernel, 2 for a usage error), or ends by SIGTERM when
    stopped."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print(_USAGE, file=sys.stderr)
        return 2
    path = os.path.abspath(argv[0])
    name = os.path.basename(path)
    try:
        flags = run_flags()
    except ValueError as e:
        _note(f"{name}: {e}")
        return 2
    runner = NotebookRunner(path, flags, os.getcwd())
    code = runner.run()
    if runner.stopped:  # like a script killed by the stop: end by the signal
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.raise_signal(signal.SIGTERM)
    return code


def run_flags() -> dict:
    """The run's flag values: from our supervisor's environment, else (a run
    Guild started) from the run directory's ``flags`` attr, else none."""
    if os.environ.get(FLAGS_ENV, "").strip():
        return env_flags()
    run_dir = os.environ.get("RUN_DIR")
    if run_dir and os.path.isdir(os.path.join(run_dir, ".guild")):
        return dict(Run(run_dir).flags)
    return {}


class NotebookRunner:
    """One execution of a notebook: inject, execute cell by cell, stream,
    save. ``run()`` returns the exit status; ``stopped`` says a SIGTERM
    ended it."""

    def __init__(self, path: str, flags: dict, run_dir: str):
        self.path = path
        self.name = os.path.basename(path)
        self.flags = flags
        self.run_dir = run_dir
        self.nb = None
        self.client = None
        self.stopped = False
        self._task = None
        self._signal = None
        self._saved_at = 0.0

    def run(self) -> int:
        import asyncio

        try:
            self.nb = self._read()
        except Exception as e:  # noqa: BLE001 - any unreadable notebook: one line, then the run's end
            _note(f"{self.name}: cannot read the notebook: {_one_line(e)}")
            return 1
        try:
            inject_parameters(self.nb, self.flags)
        except Exception as e:  # noqa: BLE001 - a value no literal spells
            _note(f"{self.name}: cannot inject the flags: {_one_line(e)}")
            return 1
        try:
            return asyncio.run(self._execute())
        finally:
            self._save()

    def _read(self):
        import nbformat

        nb = nbformat.read(self.path, as_version=4)
        return nb

    async def _execute(self) -> int:
        import asyncio

        from jupyter_client.kernelspec import NoSuchKernel
        from nbclient.exceptions import CellExecutionError, DeadKernelError

        self._task = asyncio.current_task()
        kernel = kernel_name(self.nb)
        self.client = client = _client_class()(
            self.nb,
            kernel_name=kernel,
            timeout=None,  # a cell runs as long as it takes, as a script does
            startup_timeout=120,
            extra_arguments=["--IPKernelApp.log_level=ERROR"],  # not the kernel's TCP notices: the run's output
            resources={"metadata": {"path": self.run_dir}},
        )
        stderr = KernelStderr()
        try:
            async with client.async_setup_kernel(env=_kernel_env(), cwd=self.run_dir, stdout=subprocess.DEVNULL,
                                                 stderr=stderr.open()):
                stderr.launched()
                loop = asyncio.get_running_loop()
                loop.add_signal_handler(signal.SIGTERM, self._on_stop)  # replaces nbclient's: ours also saves
                loop.add_signal_handler(signal.SIGHUP, self._on_stop)
                await self._kernel_info()
                for index, cell in enumerate(self.nb.cells):
                    await client.async_execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
                    self._save(throttled=True)
                client.set_widgets_metadata()
            return 0
        except asyncio.CancelledError:
            if self.stopped:
                return 1
            raise
        except NoSuchKernel as e:
            _note(f"{self.name}: no kernel named {e.name!r} is installed here ({_installed_kernels()}): "
                  f"install it, or change the notebook's kernel")
            return 1
        except CellExecutionError:
            return 1  # its traceback is already in the output
        except DeadKernelError as e:
            if self.stopped:
                return 1
            _note(f"{self.name}: the kernel died: {_one_line(e)}")
            stderr.show()
            return 1
        except Exception as e:  # noqa: BLE001 - kernel start failures and the like: say so, end the run
            if self.stopped:
                return 1
            _note(f"{self.name}: {type(e).__name__}: {_one_line(e)}")
            stderr.show()
            return 1
        finally:
            import atexit

            atexit.unregister(client._cleanup_kernel)  # left registered when the kernel never started
            stderr.close()

    async def _kernel_info(self) -> None:
        """What nbclient's own ``execute`` does first: record the kernel's
        language in the notebook (JupyterLab uses it to open the copy)."""
        from nbclient.util import ensure_async

        client = self.client
        msg_id = await ensure_async(client.kc.kernel_info())
        reply = await client.async_wait_for_reply(msg_id)
        if reply is not None and "language_info" in reply["content"]:
            self.nb.metadata["language_info"] = reply["content"]["language_info"]

    def _on_stop(self) -> None:
        """SIGTERM/SIGHUP: end the kernel's process group now (the cell's
        children with it), then let the run end (saving what ran)."""
        import asyncio

        if self.stopped:
            return
        self.stopped = True
        km = getattr(self.client, "km", None)
        if km is not None and km.has_kernel:
            # jupyter_client signals the kernel's process group (it runs in a
            # session of its own): the kernel and what its cells started.
            # Scheduled first, so it runs before the cancelled cell's cleanup.
            self._signal = asyncio.ensure_future(km.signal_kernel(signal.SIGTERM))
        if self._task is not None:
            self._task.cancel()

    def _save(self, throttled: bool = False) -> None:
        if self.nb is None:
            return
        now = time.monotonic()
        if throttled and now - self._saved_at < SAVE_INTERVAL:
            return
        self._saved_at = now
        try:
            import nbformat

            write_executed(self.run_dir, self.name, nbformat.writes(self.nb))
        except Exception as e:  # noqa: BLE001 - a full disk must not change the run's outcome
            _note(f"{self.name}: cannot save the executed notebook: {_one_line(e)}")


class KernelStderr:
    """The kernel's own stderr, kept (its last bytes) for when it fails.

    ipykernel forwards what the notebook's code and its children write to
    the file descriptors (C libraries, ``subprocess``) to the notebook as
    stream output -- which reaches the run's output through ``output()`` --
    and also copies it to the kernel's own stdout/stderr. So those go
    nowhere (stdout) or here (stderr), not to the run's output a second
    time; what only the kernel's stderr has (why it did not start, a crash)
    is shown when the kernel fails."""

    KEEP = 8192

    def __init__(self):
        self.tail = b""
        self._r = self._w = None
        self._loop = None

    def open(self) -> int:
        """The descriptor the kernel's stderr is, read from now on."""
        import asyncio

        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._r, self._read)
        return self._w

    def launched(self) -> None:
        """The kernel has its copy of the write end: drop ours (EOF when it ends)."""
        if self._w is not None:
            os.close(self._w)
            self._w = None

    def _read(self) -> None:
        try:
            data = os.read(self._r, 65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._loop.remove_reader(self._r)
            return
        self.tail = (self.tail + data)[-self.KEEP:]

    def show(self) -> None:
        if self._r is not None:
            self._read()
        text = self.tail.decode("utf-8", "replace").strip()
        if text:
            _write(sys.stderr, f"{text}\n")

    def close(self) -> None:
        self.launched()
        if self._r is not None:
            try:
                self._loop.remove_reader(self._r)
            except Exception:  # noqa: BLE001 - the loop may be closing
                pass
            os.close(self._r)
            self._r = None


def inject_parameters(nb, flags: dict) -> int | None:
    """Puts the run's flag values into ``nb`` as papermill does: any earlier
    ``injected-parameters`` cell removed, a new one inserted right after the
    parameters cell (at the top when there is no code cell). Returns the
    new cell's index, or None when there are no flags."""
    from nbformat.v4 import new_code_cell

    nb.cells = [c for c in nb.cells if INJECTED_TAG not in cell_tags(c)]
    if not flags:
        return None
    cell = new_code_cell(source="# Parameters\n" + assignments_source(flags))
    cell.metadata["tags"] = [INJECTED_TAG]
    index, _tagged = parameters_cell(nb.cells)
    at = 0 if index is None else index + 1
    nb.cells.insert(at, cell)
    return at


def kernel_name(nb) -> str:
    spec = nb.metadata.get("kernelspec")
    name = spec.get("name") if isinstance(spec, dict) else None
    return name if isinstance(name, str) and name else NATIVE_KERNEL


def _client_class():
    """``NotebookClient`` with the outputs echoed as they arrive and the
    native kernel for ``python3`` (a class made on first use: nbclient is
    imported only when a notebook runs)."""
    from jupyter_client.kernelspec import KernelSpecManager
    from nbclient import NotebookClient

    class StreamingClient(NotebookClient):
        def create_kernel_manager(self):
            if self.kernel_name == NATIVE_KERNEL:
                # Only the native spec: a python3 kernelspec installed for
                # another Python never stands in for this one.
                self.km = self.kernel_manager_class(kernel_name=NATIVE_KERNEL, config=self.config,
                                                    kernel_spec_manager=KernelSpecManager(kernel_dirs=[]))
                return self.km
            return super().create_kernel_manager()

        def output(self, outs, msg, display_id, cell_index):
            out = super().output(outs, msg, display_id, cell_index)
            if out is not None:
                echo_output(out)
            return out

    return StreamingClient


def echo_output(out) -> None:
    """One cell output, as text, to stdout or stderr (the run's output)."""
    kind = out.get("output_type")
    if kind == "stream":
        stream = sys.stderr if out.get("name") == "stderr" else sys.stdout
        _write(stream, out.get("text", ""))
    elif kind == "error":
        text = "\n".join(_ANSI.sub("", line) for line in out.get("traceback") or ())
        if not text:
            text = f"{out.get('ename', 'Error')}: {out.get('evalue', '')}"
        _write(sys.stderr, text + "\n")
    elif kind in ("execute_result", "display_data"):
        text = (out.get("data") or {}).get("text/plain")
        if text:
            _write(sys.stdout, (text if isinstance(text, str) else "".join(text)) + "\n")


def _write(stream, text: str) -> None:
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError):  # the output went away: the notebook still runs
        pass


def _kernel_env() -> dict:
    """The kernel's environment: the run's (RUN_DIR, CUDA_VISIBLE_DEVICES,
    ...), without the runner's private variables."""
    env = dict(os.environ)
    for name in _PRIVATE_ENV:
        env.pop(name, None)
    return env


def _installed_kernels() -> str:
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        names = sorted(set(KernelSpecManager().find_kernel_specs()) | {NATIVE_KERNEL})
    except Exception:  # noqa: BLE001
        names = [NATIVE_KERNEL]
    return "kernels: " + ", ".join(names)


def _note(text: str) -> None:
    _write(sys.stderr, f"guild_jupyter: {text}\n")


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


if __name__ == "__main__":
    sys.exit(main())
