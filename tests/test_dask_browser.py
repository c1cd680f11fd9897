"""The /guild page shows a Dask queue's cluster under its row: address,
dashboard link, each worker with its resources and the run it runs (a real
Jupyter server, Debian's Chromium, an embedded LocalCluster)."""

from __future__ import annotations

import importlib.util
import json

import pytest

from conftest import wait_for
from guild_jupyter import api
from support.jupyter import chromium_page, guild_server

pytestmark = [
    pytest.mark.browser,
    pytest.mark.dask,
    pytest.mark.skipif(importlib.util.find_spec("distributed") is None,
                       reason="dask is not installed: pip install 'guild_jupyter[dask]'"),
]


def test_page_shows_the_cluster_and_the_run_on_its_worker(tmp_path, guild_home):
    root = tmp_path / "root"
    root.mkdir()
    (root / "slow.py").write_text("import time\nx = 0\ntime.sleep(60)\n")
    (run,) = api.run(str(root / "slow.py"), stage=True)
    q = api.queue(dask="local:1", poll_interval=1)
    try:
        wait_for(lambda: run.refresh().status == "running", timeout=60, message="the run starts on the worker")
        with guild_server(tmp_path / "jupyter", guild_home, root_dir=root) as server:
            with chromium_page(server, tmp_path, {"width": 1100, "height": 900}) as page:
                page.goto(f"{server.url}/guild?token={server.token}")
                row = page.locator(f'.gj-dask[data-dask="{q.id}"]')
                row.wait_for(timeout=30_000)
                wait_for(lambda: f"0: {run.id[:8]}" in row.inner_text(), timeout=15, message="the worker's run")
                text = row.inner_text()
                assert "Dask tcp://127.0.0.1:" in text
                _, state = server.request("/guild/api/state")
                words = next(r for g in state["groups"] for r in g["rows"] if r["id"] == run.id)
                (qrow,) = [x for x in state["queues"] if x["id"] == q.id]
                assert qrow["dask"]["workers_text"] == f"0: {run.id[:8]}"
                assert qrow["dask"]["workers_text"] in text  # the view model's words, as they are
                run_row = page.locator(f'.gj-run[data-run="{run.id}"]')
                assert words["title"] in run_row.inner_text() and words["subtitle"] in run_row.inner_text()
                assert f"@ {words['worker']}" in run_row.inner_text()  # the worker it runs on
                href = row.locator("a").get_attribute("href")
                assert href.startswith("http://127.0.0.1:") and href.endswith("/status")
            # REST: a Dask queue hosted by the server; a bad value is a 400
            st, body = server.request("/guild/api/queues", "POST", {"dask": "local:0"})
            assert st == 400 and "bad value for dask" in json.dumps(body)
            (quick,) = api.run(str(root / "slow.py"), "x=1", stage=True)
            st, body = server.request("/guild/api/queues", "POST", {"dask": "local:1", "run_once": True}, timeout=60)
            assert st == 201 and body["host"] == "server"
            wait_for(lambda: quick.refresh().status == "running" and quick.get("dask_worker") == "0", timeout=60,
                     message="the server's Dask queue starts the run")
            api.stop(quick.id)
    finally:
        api.stop(run.id)
        q.stop()
