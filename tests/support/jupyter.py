"""A real JupyterLab server and Debian's Chromium, for end-to-end tests.

``start_jupyter(tmp_dir, env=..., extra_args=...)`` starts JupyterLab from
this venv on 127.0.0.1 with a random token, every Jupyter/IPython/home
directory inside ``tmp_dir`` (nothing touches the real home), and returns
once ``/api/status`` answers; ``stop()`` ends it (SIGTERM, which shuts its
kernels down; SIGKILL of its process group if it hangs). The kernels it
starts run this venv's Python and inherit ``env`` (e.g. ``GUILD_HOME``).

``start_guild_server(tmp_dir, guild_home, ...)`` is ``start_jupyter`` as
the guild_jupyter tests want it: the server extension on (or off), the
kernels' ``GUILD_HOME`` and a short stop grace; ``guild_server(...)`` is the
same as a context manager that stops it, and ``module_server(...)`` builds
a module-scoped server with its own Guild home and a ``train.py``.

``chromium_path()`` finds Debian's Chromium (``scripts/install-chromium.sh``
installs it; Playwright's own browser downloads are never used) and
``launch_chromium(playwright, tmp_dir)`` starts it headless;
``chromium_page(server, tmp_dir, viewport)`` yields a page of it, saves a
failure screenshot (and prints the server log) when the block fails, and
always closes the browser.

The traps these avoid are in ``shared/BROWSER_TESTS.md``: ``--allow-root``,
a readiness loop that notices a dead server, the news toast (user
settings), reopened notebooks (workspaces dir; open URLs with ``?reset``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

ENABLE_EXTENSION = '--ServerApp.jpserver_extensions={"guild_jupyter": True}'
DISABLE_EXTENSION = '--ServerApp.jpserver_extensions={"guild_jupyter": False}'
# One GPU, NVML-shaped, through the environment (these machines have none): ``start_guild_server(env=...)``.
FAKE_GPU_ENV = {"GUILD_JUPYTER_FAKE_GPUS": json.dumps(
    [{"name": "Fake H100", "memory": {"total": 80 * 2**30, "used": 3 * 2**30}, "utilization": {"gpu": 42}}])}
CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclasses.dataclass
class JupyterServer:
    url: str  # http://127.0.0.1:PORT (no trailing slash)
    token: str
    proc: subprocess.Popen
    root_dir: str
    env: dict
    log_path: str

    def lab_url(self, path: str = "") -> str:
        """A /lab URL that authenticates with the token and resets the workspace."""
        sep = "&" if "?" in path else "?"
        return f"{self.url}/lab/tree/{path}{sep}reset&token={self.token}" if path else f"{self.url}/lab?reset&token={self.token}"

    def request(self, path: str, method: str = "GET", body=None, timeout: float = 10.0):
        """(status, parsed JSON or text) of a REST call with the token."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        req.add_header("Authorization", f"token {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode("utf-8", "replace")

    def log(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # its own group (start_new_session)
            except ProcessLookupError:
                pass
            self.proc.wait(10)


def jupyter_dirs(tmp_dir) -> dict:
    """Environment that keeps Jupyter, IPython and the browser profile in ``tmp_dir``."""
    tmp_dir = os.fspath(tmp_dir)
    names = {
        "HOME": "home",
        "JUPYTER_CONFIG_DIR": "jupyter-config",
        "JUPYTER_DATA_DIR": "jupyter-data",
        "JUPYTER_RUNTIME_DIR": "jupyter-runtime",
        "IPYTHONDIR": "ipython",
    }
    env = {}
    for var, sub in names.items():
        path = os.path.join(tmp_dir, sub)
        os.makedirs(path, exist_ok=True)
        env[var] = path
    return env


def _write_user_settings(settings_dir: str) -> None:
    # The "get notified about Jupyter news?" toast covers the bottom right.
    d = os.path.join(settings_dir, "@jupyterlab", "apputils-extension")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "notification.jupyterlab-settings"), "w") as f:
        json.dump({"fetchNews": "false"}, f)


def start_jupyter(
    tmp_dir,
    env: dict | None = None,
    extra_args=(),
    root_dir=None,
    timeout: float = 60.0,
    python: str = sys.executable,
) -> JupyterServer:
    """Starts JupyterLab and waits until it answers ``/api/status``.

    ``tmp_dir``: where its config, data, runtime, settings, workspaces and
    log go; ``root_dir``: the served directory (default ``tmp_dir/root``);
    ``env``: added to the server's (and so its kernels') environment;
    ``extra_args``: more command-line options (e.g. ``--ServerApp.jpserver_extensions=...``).
    """
    tmp_dir = os.fspath(tmp_dir)
    os.makedirs(tmp_dir, exist_ok=True)
    root = os.fspath(root_dir) if root_dir is not None else os.path.join(tmp_dir, "root")
    os.makedirs(root, exist_ok=True)
    settings = os.path.join(tmp_dir, "lab-settings")
    workspaces = os.path.join(tmp_dir, "lab-workspaces")
    os.makedirs(workspaces, exist_ok=True)
    _write_user_settings(settings)

    full_env = dict(os.environ)
    full_env.update(jupyter_dirs(tmp_dir))
    # The kernels must run this venv's Python: put its bin first on PATH (the
    # native ``python3`` kernelspec maps ``python`` to the server's own).
    venv_bin = os.path.dirname(python)
    full_env["PATH"] = venv_bin + os.pathsep + full_env.get("PATH", "")
    full_env.pop("JUPYTER_PATH", None)
    full_env.pop("JUPYTER_TOKEN", None)
    full_env["PYTHONUNBUFFERED"] = "1"
    if env:
        full_env.update({k: str(v) for k, v in env.items()})

    token = secrets.token_hex(16)
    port = free_port()
    cmd = [
        python, "-m", "jupyterlab",
        "--no-browser", "--allow-root",
        "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={workspaces}",
        *extra_args,
    ]
    log_path = os.path.join(tmp_dir, "jupyter-server.log")
    log = open(log_path, "wb")
    try:
        proc = subprocess.Popen(cmd, env=full_env, cwd=root, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        log.close()
    server = JupyterServer(url=f"http://127.0.0.1:{port}", token=token, proc=proc, root_dir=root,
                           env=full_env, log_path=log_path)
    deadline = time.monotonic() + timeout
    while True:
        if not server.alive():
            raise RuntimeError(f"jupyter lab exited with {proc.returncode}:\n{server.log()[-3000:]}")
        try:
            status, _ = server.request("/api/status", timeout=2)
            if status == 200:
                return server
        except (OSError, urllib.error.URLError):
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"jupyter lab not ready after {timeout}s:\n{server.log()[-3000:]}")
        time.sleep(0.1)


def start_guild_server(tmp_dir, guild_home, root_dir=None, env: dict | None = None,
                       extension: bool | None = True, **kwargs) -> JupyterServer:
    """``start_jupyter`` with ``GUILD_HOME=guild_home`` and a 3 s stop grace
    for it and its kernels (``env`` adds more), and the guild_jupyter server
    extension on (``extension=True``), off (False) or as configured (None)."""
    full_env = {"GUILD_HOME": str(guild_home), "GUILD_JUPYTER_STOP_GRACE": "3"}
    full_env.update(env or {})
    args = () if extension is None else (ENABLE_EXTENSION if extension else DISABLE_EXTENSION,)
    return start_jupyter(tmp_dir, env=full_env, root_dir=root_dir, extra_args=args, **kwargs)


@contextlib.contextmanager
def guild_server(tmp_dir, guild_home, **kwargs):
    """``start_guild_server`` for a ``with`` block: the server is stopped on the way out."""
    server = start_guild_server(tmp_dir, guild_home, **kwargs)
    try:
        yield server
    finally:
        server.stop()


def module_server(tmp_path_factory, train: str, env: dict | None = None) -> JupyterServer:
    """A server for a module's tests: its own Guild home (``server.home``) and
    a served root holding ``train.py``; the fixture stops it."""
    tmp = tmp_path_factory.mktemp("server")
    home = tmp / "guild-home"
    home.mkdir()
    root = tmp / "root"
    root.mkdir()
    (root / "train.py").write_text(train)
    server = start_guild_server(tmp / "jupyter", home, root_dir=root, env=env)
    server.home = str(home)
    return server


# -- Chromium -------------------------------------------------------------------------------------


def chromium_path() -> str | None:
    """Debian's Chromium (or ``$GUILD_JUPYTER_CHROMIUM``), None when missing."""
    env = os.environ.get("GUILD_JUPYTER_CHROMIUM")
    candidates = ((env,) if env else ()) + CHROMIUM_CANDIDATES
    for path in candidates:
        if path and os.access(path, os.X_OK):
            return path
    found = shutil.which("chromium")
    return found


def launch_chromium(playwright, tmp_dir, headless: bool = True):
    """Starts Chromium through Playwright with its profile (HOME) in ``tmp_dir``."""
    exe = chromium_path()
    if exe is None:
        raise RuntimeError("chromium not found: run scripts/install-chromium.sh (apt) or set GUILD_JUPYTER_CHROMIUM")
    env = dict(os.environ)
    env.update(jupyter_dirs(tmp_dir))
    return playwright.chromium.launch(executable_path=exe, headless=headless, env=env)


@contextlib.contextmanager
def chromium_page(server: JupyterServer, tmp_dir, viewport: dict, full_page: bool = True):
    """A Chromium page (its own context) at ``viewport``. When the block
    fails, ``tmp_dir/failure.png`` is saved and the server's log printed;
    the browser is closed either way."""
    from playwright.sync_api import sync_playwright

    tmp_dir = os.fspath(tmp_dir)
    with sync_playwright() as pw:
        browser = launch_chromium(pw, os.path.join(tmp_dir, "browser"))
        try:
            page = browser.new_page(viewport=viewport)
            try:
                yield page
            except BaseException:
                shot = os.path.join(tmp_dir, "failure.png")
                page.screenshot(path=shot, full_page=full_page)
                print(f"screenshot: {shot}\nserver log:\n{server.log()[-3000:]}")
                raise
        finally:
            browser.close()


# -- driving JupyterLab ----------------------------------------------------------------------------


def write_notebook(path, cells: list[str]) -> None:
    """A notebook of code cells (nbformat 4) for the server to open."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, os.fspath(path))


def open_notebook(page, server: JupyterServer, name: str, cells: int, timeout: float = 60.0) -> None:
    """Opens ``name`` and waits until its cells are shown and the kernel is
    idle (the status bar ends in ``| Idle``; the execution indicator says
    idle too early, while the kernel is still starting)."""
    page.goto(server.lab_url(name))
    ms = int(timeout * 1000)
    page.locator(".jp-Notebook .jp-Cell").nth(cells - 1).wait_for(timeout=ms)
    wait_kernel_idle(page, timeout)


def wait_kernel_idle(page, timeout: float = 60.0) -> None:
    # The kernel's item reads "Python 3 (ipykernel) | Idle"; other items follow
    # it in the bar, so look for an element whose own text ends that way.
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('#jp-main-statusbar span, #jp-main-statusbar div'))"
        ".some(e => /\\|\\s*Idle$/.test(e.textContent.trim()))",
        timeout=int(timeout * 1000),
    )


def run_all_cells(page) -> None:
    """Run ▸ Run All Cells, through the menu (its command id differs from the palette's)."""
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
