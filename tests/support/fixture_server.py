"""A view-model snapshot and its events (what ``GET /guild/api/state``
and ``GET /guild/api/events`` answer; the files are made from a real store
by ``scripts/make-viewmodel-fixtures.py``) served to a real browser, and
the words a viewer must show for each row.

``SNAPSHOT_FIXTURE`` and ``EVENTS_FIXTURE`` are the files the rendering
tests load: swap either for another snapshot of the contract (one line
each) and every check follows, since the tests take their words from the
file, never from themselves. ``serve_fixture(context)`` answers the two
endpoints from them in a Playwright browser context (everything else
reaches the real Jupyter server), recording the calls other endpoints get.
"""

from __future__ import annotations

import json
import os

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures")
SNAPSHOT_FIXTURE = os.path.join(FIXTURES, "state_snapshot.json")
EVENTS_FIXTURE = os.path.join(FIXTURES, "events.json")

#: Fields of a run row a viewer shows as they are (besides its status, below).
RUN_WORD_FIELDS = ("title", "subtitle", "label_text", "gpus_text", "time_text", "scalar_text", "position_text",
                   "waiting_text", "retry_text")
QUEUE_WORD_FIELDS = ("title", "state_text", "slots_text", "options_text")
GPU_WORD_FIELDS = ("text", "memory_text", "utilization_text", "runs_text")


def load(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def run_words(row: dict) -> list[str]:
    """What a run's row must show: its fields, and its outcome (which says
    the status and more) or else its status."""
    words = [row[k] for k in RUN_WORD_FIELDS if row.get(k)]
    words.append(row.get("outcome_text") or row["status_text"])
    return words


def queue_words(q: dict) -> list[str]:
    return [q[k] for k in QUEUE_WORD_FIELDS if q.get(k)]


def gpu_words(g: dict) -> list[str]:
    return [g[k] for k in GPU_WORD_FIELDS if g.get(k)]


def all_runs(snapshot: dict) -> list[tuple[dict, dict]]:
    """(group, row) of every run row, in the snapshot's order."""
    return [(g, r) for g in snapshot["groups"] for r in g["rows"]]


class FixtureServer:
    """Answers state and events from the fixtures in a browser context;
    ``calls`` records (method, path, JSON body) of every other /guild/api
    request, each answered by ``replies[(method, path)]`` (status, body)
    or 200 ``{}``, so a test sees exactly what a click sent."""

    def __init__(self, snapshot: dict, events: dict):
        self.snapshot = snapshot
        self.events = events
        self.calls: list[tuple[str, str, object]] = []
        self.replies: dict[tuple[str, str], tuple[int, dict]] = {}

    def install(self, context) -> None:
        context.route("**/guild/api/state*", lambda route: route.fulfill(json=self.snapshot))
        context.route("**/guild/api/events*", lambda route: route.fulfill(json=self.events))
        context.route("**/guild/api/runs/**", self._other)
        context.route("**/guild/api/queues**", self._other)

    def _other(self, route) -> None:
        req = route.request
        path = req.url.split("/guild/api/", 1)[1].split("?", 1)[0]
        body = req.post_data_json if req.post_data else None
        self.calls.append((req.method, path, body))
        if req.method == "GET" and path.endswith("/output"):
            route.fulfill(json={"text": "", "offset": 0, "status": "running", "done": False})
            return
        status, reply = self.replies.get((req.method, path), (200, {}))
        route.fulfill(status=status, json=reply)


def serve_fixture(context, snapshot_path: str = SNAPSHOT_FIXTURE, events_path: str = EVENTS_FIXTURE) -> FixtureServer:
    server = FixtureServer(load(snapshot_path), load(events_path))
    server.install(context)
    return server


def group_of(state: dict, name: str) -> dict:
    """The group named ``name`` of a snapshot (groups are an ordered list)."""
    return next(g for g in state["groups"] if g["name"] == name)


def row_of(state: dict, run_id: str) -> dict | None:
    """The row of ``run_id`` in any group of a snapshot, else None."""
    return next((r for g in state["groups"] for r in g["rows"] if r["id"] == run_id), None)
