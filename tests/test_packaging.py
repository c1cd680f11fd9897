"""Packaging as the Jupyter ecosystem does it: from a clean copy of the
checkout (its tracked and unignored files only: no node_modules, no build
output), ``python -m build --wheel`` runs the hatch jupyter-builder hook,
which builds the sidebar and the /guild page bundle with npm, and the wheel
carries them with the server config, where Jupyter and JupyterLab look.
Slow by nature (an npm install from the local cache, tsc, the labextension
build, a wheel): about two to four minutes here, bounded at ten.

Also: the /guild page is the package's HTML file and the bundle it names,
served by the extension under /guild/static/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile

import pytest

from support.jupyter import guild_server

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = "guild_jupyter-0.1.0.data/data/"
LAB = DATA + "share/jupyter/labextensions/guild-jupyter/"


def clean_copy(dest: str) -> None:
    """The files a fresh clone of this checkout would hold (tracked, and new
    files git does not ignore), copied to ``dest``."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, check=True)
    for rel in out.stdout.decode().split("\0"):
        if not rel or not os.path.isfile(os.path.join(ROOT, rel)):
            continue  # a deleted file git still tracks
        target = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, rel), target)


@pytest.mark.timeout(900)
def test_a_wheel_built_from_a_clean_checkout_carries_the_bundles_and_the_config(tmp_path):
    if shutil.which("npm") is None:
        pytest.fail("npm not found: Node.js >= 20.19 is needed to build the wheel")
    src = tmp_path / "checkout"
    clean_copy(str(src))
    assert not (src / "labextension" / "node_modules").exists()
    assert not (src / "guild_jupyter" / "labextension").exists()
    assert not (src / "guild_jupyter" / "server" / "static").exists()
    env = dict(os.environ)
    # npm from this checkout's cache (scripts/build-labextension.sh fills it), else the registry.
    env.update(npm_config_cache=os.path.join(ROOT, ".cache", "npm"), npm_config_prefer_offline="true",
               npm_config_audit="false", npm_config_fund="false", PUPPETEER_SKIP_DOWNLOAD="1",
               PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1")
    env.pop("SKIP_JUPYTER_BUILDER", None)
    env.pop("HATCH_JUPYTER_BUILDER_SKIP_NPM", None)
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path / "dist"), str(src)],
                         env=env, capture_output=True, text=True, timeout=840)
    took = time.monotonic() - t0
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    print(f"python -m build --wheel from a clean copy: {took:.0f} s")
    (wheel,) = (tmp_path / "dist").glob("guild_jupyter-0.1.0-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())

        def read(name: str) -> bytes:
            return z.read(name)

        # The JupyterLab extension where JupyterLab finds installed ones.
        for name in ("package.json", "install.json", "static/style.js", "schemas/guild-jupyter/sidebar.json"):
            assert LAB + name in names, (name, sorted(n for n in names if n.startswith(DATA)))
        package = json.loads(read(LAB + "package.json"))
        assert package["name"] == "guild-jupyter"
        entry = package["jupyterlab"]["_build"]["load"]  # static/remoteEntry.<hash>.js
        assert re.fullmatch(r"static/remoteEntry\.[0-9a-f]+\.js", entry) and LAB + entry in names
        assert json.loads(read(LAB + "install.json"))["packageName"] == "guild_jupyter"
        built = sorted(n[len(LAB):] for n in names if n.startswith(LAB + "static/"))
        assert built == sorted("static/" + n for n in os.listdir(src / "guild_jupyter" / "labextension" / "static"))
        # The server extension on, as installing it should leave it.
        config = DATA + "etc/jupyter/jupyter_server_config.d/guild_jupyter.json"
        assert json.loads(read(config)) == {"ServerApp": {"jpserver_extensions": {"guild_jupyter": True}}}
        # The /guild page: its HTML file and the bundle it names, in the package.
        html = read("guild_jupyter/server/page.html").decode()
        for asset in re.findall(r'(?:src|href)="guild/static/([^"]+)"', html):
            assert f"guild_jupyter/server/static/{asset}" in names, asset
        assert {"guild_jupyter/server/static/guild-page.js", "guild_jupyter/server/static/guild-page.css"} <= names
        assert b"gj-view" in read("guild_jupyter/server/static/guild-page.js")
        # No copy of the build output inside the package, no sources of the TypeScript package.
        assert not [n for n in names if n.startswith(("guild_jupyter/labextension/", "labextension/"))]


def test_the_page_is_the_packages_html_and_bundle(tmp_path):
    with guild_server(tmp_path / "jupyter", tmp_path / "guild-home") as server:
        import urllib.request

        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        with opener.open(f"{server.url}/guild?token={server.token}", timeout=20) as r:
            html = r.read().decode()
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/html")
        with open(os.path.join(ROOT, "guild_jupyter", "server", "page.html"), encoding="utf-8") as f:
            assert html == f.read()
        assets = re.findall(r'(?:src|href)="(guild/static/[^"]+)"', html)
        assert sorted(assets) == ["guild/static/guild-page.css", "guild/static/guild-page.js"]
        for asset in assets:
            with opener.open(f"{server.url}/{asset}", timeout=20) as r:
                body = r.read()
                kind = "javascript" if asset.endswith(".js") else "css"
                assert r.status == 200 and kind in r.headers["Content-Type"], (asset, r.headers["Content-Type"])
            with open(os.path.join(ROOT, "guild_jupyter", "server", "static", os.path.basename(asset)), "rb") as f:
                assert body == f.read()
        # .../guild/ is sent to .../guild, where the relative links resolve.
        st, _ = server.request("/guild/static/no-such-file.js")
        assert st == 404

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        req = urllib.request.Request(f"{server.url}/guild/?token={server.token}")
        try:
            urllib.request.build_opener(NoRedirect).open(req, timeout=20)
            raise AssertionError("/guild/ answered without a redirect")
        except urllib.error.HTTPError as e:
            assert e.code == 302 and e.headers["Location"].endswith(f"/guild?token={server.token}"), e.headers
