"""What charts show of runs' scalars: points against an x axis, read
incrementally, thinned to a bound; and each run's running summary.

- **x axes.** ``step`` (the step each value was logged at), ``time``
  (seconds since the run started) or a tag logged alongside (``epoch``):
  each value is paired with the value that tag has *at the same step*. A
  value whose step has no such value yet waits for it (``Cursor.pending``);
  one whose step the tag skipped is left out.
- **Increments.** ``read_run(run_dir, cursor, ...)`` reads only what was
  logged since ``cursor`` (``store.scalars.series``: event files from the
  offsets read, through our writer's index where there is one) and returns
  the next cursor. A cursor is immutable, so an answer lost on the way can
  be asked again with the cursor before it. ``Tokens`` turns cursors into
  short strings for REST (the server keeps them, bounded).
- **Thinning.** An answer carries at most ``points`` points per series: a
  longer series keeps its first and last point and each bucket's lowest
  and highest value (spikes stay visible). It is thinned while it is read,
  so memory holds about four times ``points`` per series, whatever the run
  logged. A read from the start against ``step`` or ``time`` takes the
  writer's overview of an event file (``store.scalars.overview``: the
  series thinned as it was written) for the records it covers, when every
  series wanted is longer than ``points`` there: a viewer's first load
  then reads a few kilobytes a run, not every record.
- **Summaries.** ``summary(run_dir)``: per tag the count, last step and
  value, lowest and highest value, kept per process and brought up to date
  by reading only what was appended (what a sweep's table shows: the main
  scalar now and best so far, progress).

Only numbers here: which runs, which words, which errors the user sees is
the api's and the view model's.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict

import numpy as np

from .store.scalars.series import OverviewGroup, SeriesRead, indexed_tags

__all__ = ["STEP", "TIME", "DEFAULT_POINTS", "MIN_POINTS", "MAX_POINTS", "Cursor", "RunPoints", "read_run",
           "thin_indices", "summary", "forget_summaries", "TagSummary", "Tokens", "point_lists"]

STEP = "step"
TIME = "time"
DEFAULT_POINTS = 5000
MIN_POINTS = 2
MAX_POINTS = 100_000
#: Steps of the x tag kept in a cursor to pair values that come later.
RECENT_X = 4096
#: Values kept per tag waiting for their step's x value.
MAX_PENDING = 4096


# -- thinning -----------------------------------------------------------------------------------


def thin_indices(values: np.ndarray, n: int) -> np.ndarray:
    """Indices (ascending) of at most ``n`` points of ``values`` that keep
    its shape: the first, the last, and each bucket's lowest and highest
    (NaNs never hide a bucket's extremes); where those coincide so much
    that fewer than half of ``n`` are left (a monotonic series), evenly
    spaced points fill up to ``n``."""
    size = len(values)
    if size <= n:
        return np.arange(size)
    buckets = max(1, (n - 2) // 2)
    width = -(-size // buckets)  # ceil
    pad = buckets * width - size
    if np.isnan(values).any():
        lo = np.where(np.isnan(values), np.inf, values)
        hi = np.where(np.isnan(values), -np.inf, values)
    else:
        lo = hi = values
    if pad:
        lo = np.concatenate([lo, np.full(pad, np.inf)])
        hi = np.concatenate([hi, np.full(pad, -np.inf)])
    base = np.arange(0, buckets * width, width)
    keep = np.concatenate([[0, size - 1], base + lo.reshape(buckets, width).argmin(axis=1),
                           base + hi.reshape(buckets, width).argmax(axis=1)])
    keep = np.unique(np.minimum(keep, size - 1))
    if len(keep) > n:  # a rounding of the bucket count: drop evenly
        keep = keep[np.linspace(0, len(keep) - 1, n).round().astype(np.int64)]
    elif len(keep) < n // 2:  # extremes that coincide (a monotonic series): fill up with evenly spaced points
        spare = np.setdiff1d(np.linspace(0, size - 1, n).round().astype(np.int64), keep)
        if len(spare) > n - len(keep):
            spare = spare[np.linspace(0, len(spare) - 1, n - len(keep)).round().astype(np.int64)]
        keep = np.union1d(keep, spare)
    return keep


class _Series:
    """One series as it is read: chunks of (x, y[, z]) columns -- z: the
    raw form's times -- thinned together past ``4n``."""

    __slots__ = ("n", "cols", "size", "thinned")

    def __init__(self, n: int):
        self.n = n
        self.cols: list = []  # per column, its chunks
        self.size = 0
        self.thinned = False

    def add(self, *columns: np.ndarray) -> None:
        if not len(columns[0]):
            return
        if not self.cols:
            self.cols = [[] for _ in columns]
        for chunks, c in zip(self.cols, columns):
            chunks.append(c)
        self.size += len(columns[0])
        if self.size > 4 * self.n:
            self._thin(2 * self.n)

    def _thin(self, n: int) -> None:
        arrays = self.arrays()
        keep = thin_indices(arrays[1], n)
        self.thinned = self.thinned or len(keep) < len(arrays[1])
        self.cols, self.size = [[a[keep]] for a in arrays], len(keep)

    def arrays(self) -> list:
        for chunks in self.cols:
            if len(chunks) != 1:
                chunks[:] = [np.concatenate(chunks)]
        return [chunks[0] for chunks in self.cols] or [np.zeros(0), np.zeros(0)]

    def final(self) -> list:
        if self.size > self.n:
            self._thin(self.n)
        return self.arrays()


# -- cursors and reading ------------------------------------------------------------------------


class Cursor:
    """Where a run's reading stands, for one x axis and set of tags:
    ``files`` (the event files' places: ``SeriesRead``'s token), ``t0``
    (the time axis's origin, seconds), ``xmap`` (the x tag's latest values
    by step: two arrays, steps ascending), ``pending`` ({tag: (steps,
    values)} waiting for their step's x value)."""

    __slots__ = ("files", "t0", "xmap", "pending")

    def __init__(self, files=None, t0=None, xmap=None, pending=None):
        self.files = files or {}
        self.t0 = t0
        self.xmap = xmap
        self.pending = pending or {}


class RunPoints:
    """What one read of a run gives: ``series`` {tag: (x, y)} (numpy
    arrays; for the raw form, ``x`` is steps and ``times`` holds the
    times), ``cursor`` (to read on from), ``errors``, ``reset`` (a file
    read before was replaced: these points replace what was read),
    ``thinned``, ``tags`` (every tag met, wanted or not)."""

    __slots__ = ("series", "times", "cursor", "errors", "reset", "thinned", "tags")

    def __init__(self):
        self.series: dict = {}
        self.times: dict = {}
        self.cursor: Cursor | None = None
        self.errors: list[str] = []
        self.reset = False
        self.thinned = False
        self.tags: set = set()


def read_run(run_dir: str, cursor: Cursor | None = None, tags=None, x: str | None = STEP,
             points: int = DEFAULT_POINTS, started_us: int | None = None) -> RunPoints:
    """The points of ``tags`` (None: every tag) logged since ``cursor``
    (None: from the start) against ``x`` (``step``, ``time``, a tag, or
    None for the raw form: x = step, with ``times``). ``started_us``: the
    run's start (µs), the origin of ``time``. A file replaced since the
    cursor makes the whole run read again (``reset``).

    A read from the start of a run not summarized yet (``summary``) makes
    its summary in the same pass: a view's first load asks for the series
    and the table (whose cells are the summaries) at once, and both would
    otherwise read every point of the run."""
    if cursor is None:
        cold = _cold_summary(run_dir)
        if cold is not None:
            try:
                return _read(run_dir, None, tags, x, points, started_us, cold)
            finally:
                cold.lock.release()
    out = _read(run_dir, cursor, tags, x, points, started_us)
    if out.reset and cursor is not None:
        out = _read(run_dir, None, tags, x, points, started_us)
        out.reset = True
    return out


def _read(run_dir, cursor, tags, x, points, started_us, summary: _RunSummary | None = None) -> RunPoints:
    """``read_run``'s one pass; with ``summary`` (a run's summary not made
    yet, its lock held), every tag is read and summarized on the way."""
    out = RunPoints()
    cursor = cursor or Cursor()
    x_tag = x if x not in (STEP, TIME, None) else None
    wanted = None if tags is None else set(tags)
    read_tags = None if wanted is None or summary is not None else wanted | ({x_tag} if x_tag else set())
    t0 = cursor.t0
    if t0 is None and started_us:
        t0 = started_us / 1e6
    # Thinned anyway: an event file's overview may stand for its first records (not against a tag: pairs need every step).
    thinned = (points, None if wanted is None else tuple(wanted)) if x_tag is None else None
    reading = SeriesRead(run_dir, cursor.files, read_tags, overview=thinned)
    series: dict = {}
    summed: dict = {}
    pairing = _Pairing(cursor) if x_tag else None
    for group in reading.groups():
        if isinstance(group, OverviewGroup):
            if summary is not None:
                for tag, totals in group.totals.items():
                    _summary_of(summed, tag).merge(totals)
            for tag, steps, values, walls in group:
                if t0 is None and len(walls):
                    t0 = float(walls[0])
                s = _series(series, tag, points)
                s.thinned = True
                _add_points(s, x, steps, values, walls, t0)
            continue
        if x_tag is not None:  # the x tag's values first: the others of the chunk pair with them
            group.sort(key=lambda item: item[0] != x_tag)
        for tag, steps, values, walls in group:
            if summary is not None:
                _summary_of(summed, tag).add(steps, values, walls)
            if t0 is None and len(walls):
                t0 = float(walls[0])
            if x_tag is not None and tag == x_tag:
                pairing.add_x(steps, values)
                for ytag, (px, py) in pairing.resolved():
                    _series(series, ytag, points).add(px, py)
            if wanted is not None and tag not in wanted:
                continue
            if x_tag is not None:
                px, py = pairing.add_y(tag, steps, values)
                _series(series, tag, points).add(px, py)
            else:
                _add_points(_series(series, tag, points), x, steps, values, walls, t0)
        if pairing is not None:
            pairing.trim()
    if pairing is not None:
        for ytag, (px, py) in pairing.resolved():
            _series(series, ytag, points).add(px, py)
    for tag, s in series.items():
        cols = s.final()
        out.series[tag] = (cols[0], cols[1])
        if x is None:
            out.times[tag] = cols[2]
        out.thinned = out.thinned or s.thinned
    out.errors = reading.errors
    out.reset = reading.reset
    out.tags = set(reading.seen)
    out.cursor = Cursor(reading.token, t0, pairing.xmap if pairing else None, pairing.pending if pairing else None)
    if summary is not None and not reading.reset:
        summary.tags, summary.token, summary.errors = summed, dict(reading.token), list(reading.errors)
    return out


def _add_points(s: _Series, x, steps, values, walls, t0) -> None:
    """Points against ``step``, ``time`` or in the raw form (x None: steps, values, times)."""
    if x == TIME:
        s.add(walls - (t0 or 0.0), values)
    elif x is None:
        s.add(steps.astype(np.float64), values, walls - (t0 or 0.0))
    else:
        s.add(steps.astype(np.float64), values)


def _summary_of(summed: dict, tag: str) -> TagSummary:
    t = summed.get(tag)
    if t is None:
        t = summed[tag] = TagSummary()
    return t


def _series(series: dict, tag: str, points: int) -> _Series:
    s = series.get(tag)
    if s is None:
        s = series[tag] = _Series(points)
    return s


class _Pairing:
    """Values paired with the x tag's value at their step, in bounded
    memory: the x tag's values of the chunk being read and its latest
    ``RECENT_X`` steps before, and per tag the latest ``MAX_PENDING``
    values whose step the x tag has not reached."""

    def __init__(self, cursor: Cursor):
        if cursor.xmap is not None:
            self.xs, self.xv = cursor.xmap
        else:
            self.xs, self.xv = np.zeros(0, np.int64), np.zeros(0)
        self.pending = dict(cursor.pending)
        self._ready: list = []

    @property
    def xmap(self):
        return (self.xs, self.xv)

    def add_x(self, steps: np.ndarray, values: np.ndarray) -> None:
        s = np.concatenate([self.xs, steps])
        v = np.concatenate([self.xv, values])
        rs = s[::-1]  # the last value logged at a step wins
        uniq, first = np.unique(rs, return_index=True)
        self.xs, self.xv = uniq, v[::-1][first]
        waiting, self.pending = self.pending, {}
        for tag, (ps, pv) in waiting.items():
            px, py = self.add_y(tag, ps, pv)
            if len(px):
                self._ready.append((tag, (px, py)))

    def add_y(self, tag: str, steps: np.ndarray, values: np.ndarray):
        """(x, y) of the values whose step has an x value now; the ones
        past the x tag's last step wait."""
        xs = self.xs
        if len(xs):
            pos = np.minimum(np.searchsorted(xs, steps), len(xs) - 1)
            hit = xs[pos] == steps
            later = steps > xs[-1]
        else:
            pos = np.zeros(len(steps), np.int64)
            hit = np.zeros(len(steps), bool)
            later = np.ones(len(steps), bool)
        if later.any():
            ps, pv = self.pending.get(tag, (np.zeros(0, np.int64), np.zeros(0)))
            self.pending[tag] = (np.concatenate([ps, steps[later]])[-MAX_PENDING:],
                                 np.concatenate([pv, values[later]])[-MAX_PENDING:])
        return self.xv[pos[hit]], values[hit]

    def trim(self) -> None:
        """Keeps the x tag's latest ``RECENT_X`` steps (after a chunk)."""
        self.xs, self.xv = self.xs[-RECENT_X:], self.xv[-RECENT_X:]

    def resolved(self):
        ready, self._ready = self._ready, []
        return ready


def point_lists(x: np.ndarray, y: np.ndarray, times: np.ndarray | None = None) -> list:
    """``[[x, y], ...]`` (or ``[[step, value, time], ...]`` with
    ``times``) as JSON takes them: a value that is not finite is null."""
    cols = [x, y] if times is None else [x, y, times]
    arr = np.column_stack(cols) if len(x) else np.zeros((0, len(cols)))
    out = arr.tolist()
    if not np.isfinite(arr).all():
        for i, j in np.argwhere(~np.isfinite(arr)).tolist():
            out[i][j] = None
    return out


# -- tokens: cursors as short strings -----------------------------------------------------------


class Tokens:
    """Cursors kept for REST clients under short tokens (``t.BOOT.SID.N``).
    Each client's chain of answers is a session; a session keeps its two
    newest cursors (the newest, and the one before in case an answer was
    lost), and the ``MAX_SESSIONS`` most recently used sessions are kept."""

    MAX_SESSIONS = 256

    def __init__(self):
        self.boot = secrets.token_hex(3)
        self._sessions: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, token: str | None):
        """The state a token was given for (None: unknown, expired or from
        another server start)."""
        if not token or not isinstance(token, str):
            return None
        parts = token.split(".")
        if len(parts) != 4 or parts[0] != "t" or parts[1] != self.boot:
            return None
        with self._lock:
            session = self._sessions.get(parts[2])
            if session is None:
                return None
            self._sessions.move_to_end(parts[2])
            return session.get(parts[3])

    def put(self, state, previous: str | None = None) -> str:
        """A token for ``state``, in the session of ``previous`` when that is
        one of ours."""
        with self._lock:
            sid = None
            if previous and isinstance(previous, str):
                parts = previous.split(".")
                if len(parts) == 4 and parts[1] == self.boot and parts[2] in self._sessions:
                    sid = parts[2]
            if sid is None:
                sid = secrets.token_hex(4)
                self._sessions[sid] = OrderedDict()
                while len(self._sessions) > self.MAX_SESSIONS:
                    self._sessions.popitem(last=False)
            session = self._sessions[sid]
            self._sessions.move_to_end(sid)
            n = str(int(next(reversed(session), "0")) + 1) if session else "1"
            session[n] = state
            while len(session) > 2:
                session.popitem(last=False)
            return f"t.{self.boot}.{sid}.{n}"


# -- summaries ------------------------------------------------------------------------------------


class TagSummary:
    """One tag of a run: ``count``, ``last_step``, ``last``, ``low``,
    ``high`` (finite values only; None before any), ``last_wall``,
    ``recent`` (the last ``RECENT`` values, oldest first: a sparkline)."""

    __slots__ = ("count", "last_step", "last", "low", "high", "last_wall", "recent")

    RECENT = 32

    def __init__(self):
        self.count = 0
        self.last_step = None
        self.last = None
        self.low = None
        self.high = None
        self.last_wall = None
        self.recent: list = []

    def add(self, steps, values, walls) -> None:
        n = len(values)
        if not n:
            return
        self.count += n
        self.last_step = int(steps[-1])
        self.last = float(values[-1])
        self.last_wall = float(walls[-1])
        self.recent = (self.recent + values[-self.RECENT:].tolist())[-self.RECENT:]
        finite = values[np.isfinite(values)]
        if len(finite):
            lo, hi = float(finite.min()), float(finite.max())
            self.low = lo if self.low is None else min(self.low, lo)
            self.high = hi if self.high is None else max(self.high, hi)

    def merge(self, later) -> None:
        """Adds the totals of the values logged after these (a ``TagSummary``
        or an overview's ``TagTotals``: the same fields)."""
        if not later.count:
            return
        self.count += later.count
        self.last_step, self.last, self.last_wall = later.last_step, later.last, later.last_wall
        self.recent = (self.recent + list(later.recent))[-self.RECENT:]
        if later.low is not None:
            self.low = later.low if self.low is None else min(self.low, later.low)
            self.high = later.high if self.high is None else max(self.high, later.high)


class _RunSummary:
    __slots__ = ("token", "tags", "errors", "lock")

    def __init__(self):
        self.token: dict = {}
        self.tags: dict[str, TagSummary] = {}
        self.errors: list[str] = []
        self.lock = threading.Lock()


_summaries: OrderedDict = OrderedDict()
_summaries_lock = threading.Lock()
#: Runs whose summaries a process keeps (least recently asked dropped first).
MAX_SUMMARIES = 5000


def indexes_name(run_dirs, tag: str) -> bool:
    """Whether the writer's index of some run's event file names ``tag``
    (no event read: a view's first load learns its main scalar so)."""
    return any(tag in indexed_tags(d) for d in run_dirs)


def _summary_entry(run_dir: str) -> _RunSummary:
    with _summaries_lock:
        s = _summaries.get(run_dir)
        if s is None:
            s = _summaries[run_dir] = _RunSummary()
            while len(_summaries) > MAX_SUMMARIES:
                _summaries.popitem(last=False)
        else:
            _summaries.move_to_end(run_dir)
        return s


def _cold_summary(run_dir: str) -> _RunSummary | None:
    """The run's summary, its lock held, when nothing of the run was
    summarized yet (else None, unlocked): ``read_run`` then makes it."""
    s = _summary_entry(run_dir)
    s.lock.acquire()  # one reader of a run at a time: a summary being made elsewhere is waited for
    if s.token:
        s.lock.release()
        return None
    return s


def summary(run_dir: str) -> tuple[dict, list]:
    """({tag: TagSummary}, errors) of a run as it is now, in the order tags
    were first logged; only what was appended since the last call is read
    (a replaced file: the run again from its start)."""
    s = _summary_entry(run_dir)
    with s.lock:  # one reader of a run at a time (the server reads from several threads)
        reading, delta = _summarize(run_dir, s.token)
        if reading.reset:
            s.tags, s.errors = {}, []
            reading, delta = _summarize(run_dir, None)
        for tag, d in delta.items():
            t = s.tags.get(tag)
            if t is None:
                s.tags[tag] = d
            else:
                t.merge(d)
        s.token = reading.token
        for e in reading.errors:
            if e not in s.errors:
                s.errors.append(e)
        return dict(s.tags), list(s.errors)


def _summarize(run_dir: str, token):
    reading = SeriesRead(run_dir, token, totals_only=True)
    delta: dict = {}
    for group in reading.groups():
        if isinstance(group, OverviewGroup):  # the totals of an event file's first records, from its overview
            for tag, totals in group.totals.items():
                _summary_of(delta, tag).merge(totals)
            continue
        for tag, steps, values, walls in group:
            _summary_of(delta, tag).add(steps, values, walls)
    return reading, delta


def forget_summaries() -> None:
    with _summaries_lock:
        _summaries.clear()
