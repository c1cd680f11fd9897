"""A real JupyterLab server and Debian's Chromium, for end-to-end tests.

``start_jupyter(tmp_dir, env=..., extra_args=...)`` starts JupyterLab from
this venv on 127.0.0.1 with a random token, every Jupyter/IPython/home
directory inside ``tmp_dir`` (nothing touches the real home), and returns
once ``/api/status`` answers; ``stop()`` ends it (SIGTERM, which shuts its
kernels down; SIGKILL of its process group if it hangs). The kernels it
starts run this venv's Python and inherit ``env`` (e.g. ``GUILD_HOME``).

``chromium_path()`` finds Debian's Chromium (``scripts/install-chromium.sh``
installs it; Playwright's own browser downloads are never used) and
``launch_chromium(playwright, tmp_dir)`` starts it headless.

The traps these avoid are in ``shared/BROWSER_TESTS.md``: ``--allow-root``,
a readiness loop that notices a dead server, the news toast (user
settings), reopened notebooks (workspaces dir; open URLs with ``?reset``).
"""

from __future__ import annotations

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
