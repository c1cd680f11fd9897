"""A sweep as the REST API answers it (``GET /guild/api/sweeps/ID`` and
``GET /guild/api/sweeps/ID/scalars``, the contract /work/coord/SWEEP.md),
served from fixture files to a real browser, the way ``fixture_server``
serves the state snapshot.

``SWEEP_FIXTURE`` and ``SCALARS_FIXTURE`` are replies made from a real
store (``scripts/make-viewmodel-fixtures.py``): the sweep's table and one
scalars answer from the start (without ``since``: its ``x`` is the axis
the file was made against). The sidebar's ``sweeps`` list is the state
snapshot's (made from another store in the same way), its first entry
aimed at the table's sweep (id, words, open action's target).
Every word and number a test checks comes from these files.

The scalars are served the way a growing sweep would serve them: the
answer without ``since`` holds the first of ``pieces`` parts of every
series, and each ``since=TOKEN`` the next part, so a view's lines grow
piece by piece; ``tags=`` picks tags; ``x`` is the file's own axis, or a
tag of the file (each value paired with that tag's value at the same
point of the file's axis); any other axis is refused (400, one line), as
the file cannot say it. Every ask is recorded (``scalar_asks``), and every
other call under /guild/api/runs (``calls``), so a test sees exactly what
a click sent.
"""

from __future__ import annotations

import os
import urllib.parse

from support.fixture_server import EVENTS_FIXTURE, FIXTURES, SNAPSHOT_FIXTURE, load

SWEEP_FIXTURE = os.path.join(FIXTURES, "sweep_table.json")
SCALARS_FIXTURE = os.path.join(FIXTURES, "sweep_scalars.json")


def part(points: list, k: int, pieces: int) -> list:
    """The k-th of ``pieces`` consecutive parts of ``points``."""
    n = len(points)
    return points[n * k // pieces:n * (k + 1) // pieces]


def with_x(series: dict, x: str, file_x: str) -> dict:
    """A run's series (against ``file_x``) with x replaced by tag ``x``'s
    value at the same point (points without one are left out)."""
    if x == file_x:
        return series
    at = {p[0]: p[1] for p in series.get(x, [])}
    return {tag: [[at[p[0]], *p[1:]] for p in points if p[0] in at] for tag, points in series.items()}


def aimed(links: dict, sweep: dict) -> dict:
    """The snapshot's ``sweeps`` list with its first entry naming ``sweep``
    (its id, words and open action's target): the two files come from
    different stores."""
    first = dict(links["sweeps"][0], id=sweep["id"], title=sweep["title"], summary_text=sweep["summary_text"])
    if first.get("open_action"):
        first["open_action"] = dict(first["open_action"], path=f"sweeps/{sweep['id']}", target=sweep["id"])
    return {"sweeps": [first]}


class SweepFixture:
    """Answers the sweep's endpoints (and the state and events, with the
    snapshot's ``sweeps`` list from ``links``) in a browser context."""

    def __init__(self, sweep: dict, scalars: dict, snapshot: dict, events: dict, pieces: int = 3):
        self.sweep = sweep
        self.scalars = scalars
        self.links = aimed({"sweeps": snapshot["sweeps"]}, sweep)
        self.snapshot = dict(snapshot, sweeps=self.links["sweeps"])
        self.events = events
        self.pieces = pieces
        self.scalar_asks: list[dict] = []
        self.table_asks = 0
        self.calls: list[tuple[str, str, object]] = []
        self.replies: dict[tuple[str, str], tuple[int, dict]] = {}

    @property
    def id(self) -> str:
        return self.sweep["id"]

    @property
    def x(self) -> str:
        """The axis the scalars file was made against."""
        return self.scalars["x"]

    def tags(self) -> list[str]:
        """The tags the scalars file holds points of."""
        return sorted({t for by_tag in self.scalars["series"].values() for t, p in by_tag.items() if p})

    def axes(self) -> list[str]:
        """The x axes this fixture can serve: the file's own, and its tags."""
        return [self.x] + [t for t in self.tags() if t != self.x]

    def install(self, context) -> None:
        context.route("**/guild/api/state*", lambda route: route.fulfill(json=self.snapshot))
        context.route("**/guild/api/events*", lambda route: route.fulfill(json=self.events))
        context.route("**/guild/api/sweeps/**", self._sweeps)
        context.route("**/guild/api/runs/**", self._other)

    def series_for(self, tag: str, x: str | None = None, upto: int | None = None) -> dict:
        """run id → [[x, y], ...] of ``tag`` as served after ``upto`` pieces (all by default)."""
        upto = self.pieces if upto is None else upto
        x = x or self.x
        out = {}
        for run, series in self.scalars["series"].items():
            points = [p for k in range(upto) for p in part(with_x(series, x, self.x).get(tag, []), k, self.pieces)]
            if points:
                out[run] = [p[:2] for p in points]
        return out

    def _sweeps(self, route) -> None:
        url = urllib.parse.urlsplit(route.request.url)
        path = url.path.split("/guild/api/", 1)[1].strip("/")
        query = dict(urllib.parse.parse_qsl(url.query))
        parts = path.split("/")
        if parts[1] != self.id:
            route.fulfill(status=400, json={"error": f"no sweep {parts[1]}"})
            return
        if len(parts) == 2:
            self.table_asks += 1
            route.fulfill(json=self.sweep)
            return
        self.scalar_asks.append(query)
        tags = [t for t in query.get("tags", "").split(",") if t] or self.sweep["tags"]
        x = query.get("x", "step")
        unknown = [t for t in tags if t not in self.sweep["tags"]]
        if unknown:
            route.fulfill(status=400, json={"error": f"no trial logged {unknown[0]} (known: {', '.join(self.sweep['tags'])})"})
            return
        if x not in self.axes():
            route.fulfill(status=400, json={"error": f"x axis {x}: this fixture was made against {self.x}"})
            return
        since = query.get("since")
        k = 0 if since is None else int(since.rsplit("-", 1)[1])
        series = {}
        if k < self.pieces:
            for run, by_tag in self.scalars["series"].items():
                shifted = with_x(by_tag, x, self.x)
                got = {t: part(shifted.get(t, []), k, self.pieces) for t in tags}
                got = {t: p for t, p in got.items() if p}
                if got:
                    series[run] = got
        token = f"piece-{min(k + 1, self.pieces)}"
        route.fulfill(json={"token": token, "x": x, "series": series, "reset": False})

    def _other(self, route) -> None:
        req = route.request
        path = req.url.split("/guild/api/", 1)[1].split("?", 1)[0]
        body = req.post_data_json if req.post_data else None
        self.calls.append((req.method, path, body))
        if req.method == "GET" and path.endswith("/output"):
            route.fulfill(json={"text": "loss: 0.5\n", "offset": 10, "status": "running", "done": False})
            return
        status, reply = self.replies.get((req.method, path), (200, {}))
        route.fulfill(status=status, json=reply)


def serve_sweep(context, pieces: int = 3, sweep_path: str = SWEEP_FIXTURE,
                scalars_path: str = SCALARS_FIXTURE) -> SweepFixture:
    fixture = SweepFixture(load(sweep_path), load(scalars_path), load(SNAPSHOT_FIXTURE), load(EVENTS_FIXTURE),
                           pieces=pieces)
    fixture.install(context)
    return fixture


def ema(values: list[float], weight: float) -> list[float]:
    """TensorBoard's smoothing, written from its definition (an exponential
    moving average debiased by 1 - weight^k), to check the browser's."""
    out, last, k = [], 0.0, 0
    for v in values:
        last = last * weight + (1 - weight) * v
        k += 1
        out.append(last / (1 - weight ** k))
    return out

