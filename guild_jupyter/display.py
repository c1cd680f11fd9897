"""Display types: what the API, the magics and the CLI return, shown as
text in a terminal and as HTML in a notebook.

``RunList`` (runs with their listing indices), ``RunListing`` (a run list
that shows its first rows only), ``Trials`` (a dry run), ``RunOutput``,
``QueueList``, ``QueueControlled`` (a pause, resume or drain asked) and
``CompareTable`` (in :mod:`.comparison`). Each has one text, the same in a
terminal (the CLI prints it) and a notebook (a magic's value renders it);
a run is named in it as ``ref_text`` writes it, ``[3:ab12cd34]``. Each holds plain data with a readable
``str`` and a ``_repr_html_``; rows, words and formats are :mod:`views`'s.
"""

from __future__ import annotations

from . import views
from .errors import BadInput

FEW_ROWS = 50  # a list this short reads its runs' event files, not the store's scalars file

__all__ = ["RunList", "RunListing", "Trials", "RunOutput", "QueueList", "QueueControlled", "CompareTable",
           "run_json", "ref_text", "DEFAULT_SHOWN", "FLAGS_STYLE"]


def _gc_paused():
    # lazy: as the scalars reader below, loaded with the first listing that builds rows
    from .store.gc_pause import paused

    return paused()


def _scalars():
    # lazy: the scalars reader (and its event-file decoder) loads with the
    # first listing that shows a scalar, not with every verb that prints a run
    from .store.scalars import reader

    return reader


def __getattr__(name: str):
    if name == "CompareTable":  # re-exported; its module loads with the first comparison
        from .comparison import CompareTable  # lazy: as in _scalars

        return CompareTable
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


DEFAULT_SHOWN = 20  # rows a run list shows in a cell, like `guild runs`

#: The flags cell of every HTML table here: flags wrap instead of being cut off.
FLAGS_STYLE = "text-align:left;white-space:normal;overflow-wrap:anywhere;font-family:monospace"


def _e(text) -> str:
    import html  # on use: html.entities costs a millisecond of every command

    return html.escape("" if text is None else str(text))


def _flags_html(row: dict) -> str:
    """Varying flags first, in bold; the rest after them."""
    flags = row["flags"]
    vary = row["varying"]
    parts = [f"<b class='gj-vary'>{_e(k)}={_e(views.format_flag(flags[k]))}</b>" for k in vary]
    parts += [f"{_e(k)}={_e(views.format_flag(v))}" for k, v in flags.items() if k not in vary]
    return " ".join(parts)


def ref_text(short_id: str, index: int | None = None) -> str:
    """How every verb's result names a run: ``[3:ab12cd34]``, its index in
    the listing it is shown against (a reference every verb takes) and its
    short id; ``[ab12cd34]`` for a run no listing holds (moved to the trash)."""
    return f"[{short_id}]" if index is None else f"[{index}:{short_id}]"


class RunList(list):
    """A list of ``Run`` objects, newest first, with its listing indices:
    1, 2, ... by default, the ones given (the runs' places in the full
    listing, e.g. for trials just staged), or with ``store`` the runs'
    places in that store's full listing, looked up when first shown (so a
    result nobody prints costs no listing). ``note``: a line said above the
    runs (e.g. that they were moved to the trash); ``empty``: what an empty
    list says."""

    columns = ("#", "id", "op", "started", "status", "scalar", "gpus", "flags", "label")

    #: The scalar each row shows (None: ``loss``, else the run's first; see
    #: ``views.main_scalar``). Set it to show another: ``runs.scalar = "acc"``.
    scalar: str | None = None

    def __init__(self, runs=(), indices=None, note: str | None = None, store=None, empty: str | None = None,
                 places: dict | None = None):
        if isinstance(runs, RunList):
            indices = runs.indices if indices is None else indices
            note = runs.note if note is None else note
            store = runs.store if store is None else store
            empty = runs.empty if empty is None else empty
            places = runs.places if places is None else places
            if runs.scalar is not None:
                self.scalar = runs.scalar
        super().__init__(runs)
        self.indices = list(indices) if indices is not None else None
        self.note = note
        self.store = store  # indices are this store's full listing's, looked up when shown
        self.empty = empty or "no runs"
        #: Where each staged run stands in our queues' order, over every staged
        #: run of the store (``views.staged_places``), when the maker knew it;
        #: a staged run's line then reads "next to start · priority 5".
        self.places = places or {}

    @property
    def full_listing_indices(self) -> bool:
        """Whether the indices shown are the full listing's (a front end that
        remembers the latest listing shown lets go of it then)."""
        return self.store is not None

    def choose_scalar(self, name: str | None) -> "RunList":
        """Shows ``name`` as each run's scalar; a name none of the runs
        logged is a ``BadInput`` naming the ones they did."""
        if name is not None and self:
            if not any(name in _scalars().read(r.dir).last for r in self):  # stops at the first that logged it
                known = set().union(*(_scalars().read(r.dir).last for r in self))
                raise BadInput(f"unknown scalar {name!r}; known scalars: {', '.join(sorted(known)) or '(none)'}")
        self.scalar = name
        return self

    def _numbers(self) -> list:
        if self.indices is None and self.store is not None:
            place = {r.id: i for i, r in enumerate(self.store.runs(), 1)}
            self.indices = [place.get(r.id) for r in self]
        if self.indices is not None and len(self.indices) == len(self):
            return list(self.indices)
        return list(range(1, len(self) + 1))

    def view_rows(self, limit: int | None = None) -> list[dict]:
        """``views.listing_row`` of each run shown, with ``index``; the flags
        that vary among them come first."""
        runs = self if limit is None else self[:limit]
        varying = views.varying_flags([r.flags for r in runs])
        out = []
        # A few rows (runs -n 20): their event files cost less than the store's scalars file.
        # Many: a dict or two a row, none in a cycle: the cycle collector waits (store.gc_pause).
        with (_scalars().direct_reads() if len(runs) <= FEW_ROWS else _gc_paused()):
            for i, r in zip(self._numbers(), runs):
                row = views.listing_row(r, varying=varying, scalar=self.scalar, place=self.places.get(r.id))
                row["index"] = i
                out.append(row)
        return out

    def rows(self):
        """Tuples of text, one per column."""
        rows = self.view_rows(self._shown())
        for row in rows:
            status = f"{row['status']} · {row['note_text']}" if row["note_text"] else row["status"]
            yield ("" if row["index"] is None else str(row["index"]), row["short_id"], row["op"], row["time_text"], status,
                   row["scalar_text"], row["gpus"] or "", row["flags_text"], row["label_text"])
        if len(rows) > FEW_ROWS:  # (a few rows were read from their own files: not worth the whole file)
            _scalars().save()  # the next listing stats the event files instead of reading them

    def _shown(self) -> int | None:
        return None

    @property
    def warnings(self) -> list[str]:
        return [w for r in self for w in r.warnings]

    def __str__(self) -> str:
        if not self:
            return (self.note + "\n" if self.note else "") + self.empty
        lines = [self.note] if self.note else []
        for i, rid, op, when, status, scalar, gpus, flags, label in self.rows():
            line = f"{ref_text(rid, i or None)}  {op}  {when}  {status}"
            if scalar:
                line += f"  {scalar}"
            if gpus:
                line += f"  gpus={gpus}"
            if flags:
                line += f"  {flags}"
            if label:
                line += f"  ({label})"
            lines.append(line)
        return "\n".join(lines + [f"warning: {w}" for w in self.warnings])

    def __repr__(self) -> str:
        return str(self)

    def _repr_pretty_(self, p, cycle):
        p.text(str(self))

    def _repr_html_(self) -> str:
        note = f"<p>{_e(self.note)}</p>" if self.note else ""
        if not self:
            return note + f"<p>{_e(self.empty)}</p>"
        head = "".join(f"<th>{c}</th>" for c in self.columns)
        body = []
        for row in self.view_rows(self._shown()):
            status = f"{row['status']} · {row['note_text']}" if row["note_text"] else row["status"]
            cells = ["" if row["index"] is None else str(row["index"]), row["short_id"], row["op"], row["time_text"], status,
                     row["scalar_text"], row["gpus"] or ""]
            body.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in cells)
                        + f"<td class='gj-flags' style='{FLAGS_STYLE}'>{_flags_html(row)}</td>"
                        f"<td>{_e(row['label_text'])}</td></tr>")
        warn = "".join(f"<p>warning: {_e(w)}</p>" for w in self.warnings)
        return (f"{note}<table class='guild-runs'><thead><tr>{head}</tr></thead>"
                f"<tbody>{''.join(body)}</tbody></table>{warn}")

    def to_json(self) -> list[dict]:
        """Guild's ``runs --json`` fields, then ours (``index`` as numbered
        here, ``op``, ``flags``, ``gpus``, ``warnings``)."""
        with _gc_paused():  # (as in view_rows)
            out = [run_json(r, i, scalar=self.scalar) for r, i in zip(self, self._numbers())]
        _scalars().save()  # the next process decodes only what changed
        return out

    def to_dataframe(self):
        import pandas as pd

        rows = []
        for r in self:
            main, _spark = views.main_scalar(r, self.scalar, spark=False)
            rows.append({"id": r.id, "op": r.op_name, "status": views.status_of(r),
                         "started": views.format_time(r.started), "gpus": r.gpus, "label": r.label,
                         "scalar": main["tag"] if main else None, "value": main["value"] if main else None,
                         "step": main["step"] if main else None, **{f"flag:{k}": v for k, v in r.flags.items()}})
        return pd.DataFrame(rows)


def run_json(r, index: int | None = None, scalar: str | None = None) -> dict:
    """One run as ``guild runs --json`` gives it, plus our fields (``scalar``,
    ``spark``, ``status_text``, ``outcome_text`` and ``retry_text`` as
    ``views.run_row`` has them; ``priority`` and ``after``: the runs it
    waits or waited for)."""
    out = {
        "id": r.id, "run_dir": r.dir, "opref": r.opref_text, "exit_status": r.exit_status,
        "cmd": r.get("cmd"), "comments": r.get("comments"), "marked": r.get("marked"),
        "label": r.get("label"), "started": r.started, "status": r.status, "stopped": r.stopped,
        "tags": r.get("tags"),
    }
    main, spark = views.main_scalar(r, scalar)
    status = views.status_of(r)
    started, stopped = r.started, r.stopped
    elapsed = (stopped - started) / 1e6 if started and stopped and status in views.FINISHED else None
    out.update({"index": index, "op": r.op_name, "flags": r.flags, "gpus": r.gpus, "sweep": r.sweep,
                "warnings": list(r.warnings),
                "scalar": main, "spark": spark, **views.run_words(r, status, elapsed),
                "priority": views.priority_of_run(r), "after": [d["id"] for d in views.after_ids(r)]})
    worker = r.get("dask_worker")
    if worker:  # placed by a Dask queue (as views.run_row shows it)
        out.update({"worker": str(worker), "worker_host": str(r.get("dask_host") or "")})
    return out


class RunListing(RunList):
    """A ``RunList`` that shows only its first ``shown`` rows, as ``guild runs``
    shows the newest 20: a notebook cell never holds a 10,000-row table, while
    indices, iteration and ``to_dataframe()`` still cover every run."""

    def __init__(self, runs=(), shown: int | None = DEFAULT_SHOWN, indices=None, note: str | None = None):
        super().__init__(runs, indices, note)
        self.shown = shown

    def _shown(self) -> int | None:
        return self.shown

    def _hidden(self) -> int:
        return 0 if self.shown is None else max(0, len(self) - self.shown)

    def _more(self) -> str:
        return f"... {self._hidden()} more (%guild runs --all shows every run; -n N, filters and .to_dataframe() help too)"

    def __str__(self) -> str:
        text = super().__str__()
        return text + "\n" + self._more() if self._hidden() else text

    __repr__ = __str__

    def _repr_html_(self) -> str:
        out = super()._repr_html_()
        return out + f"<p>{self._more()}</p>" if self._hidden() else out


class Trials(list):
    """The trials of a ``--dry-run``: each a dict of every flag value; the
    flags that vary come first."""

    def __str__(self) -> str:
        if not self:
            return "no trials"
        first = views.varying_flags(list(self))
        return "\n".join(f"trial {i}: {views.flags_text(t, first=first)}" for i, t in enumerate(self, 1))

    __repr__ = __str__

    def _repr_pretty_(self, p, cycle):
        p.text(str(self))


class RunOutput(str):
    """A run's output: a ``str`` that a cell shows as the text it is."""

    def _repr_pretty_(self, p, cycle):
        p.text(str(self) if self else "(no output)")


class QueueList(list):
    """Queues (``queueing.status.QueueInfo``), one line each."""

    columns = ("queue", "host", "pid", "gpus", "state", "run", "options")

    def view_rows(self) -> list[dict]:
        return [views.queue_row(q) for q in self]

    def to_json(self) -> list[dict]:
        return [{"id": q.id, "host": q.host, "pid": q.pid, "gpus": q.gpus, "wait_for_running": q.wait_for_running,
                 "run_once": q.run_once, "state": q.state, "current": q.current, "this_process": q.this_process,
                 "slots": getattr(q, "slots", None), "control": getattr(q, "control", "running"),
                 **({"dask": views.queue_row(q)["dask"]} if getattr(getattr(q, "run", None), "flags", {}).get("dask") else {})}
                for q in self]

    def rows(self):
        for r in self.view_rows():
            yield (r["short_id"], r["host_text"], str(r["pid"] or ""), r["gpus_text"], r["state"],
                   r["current_short"] or "", r["options_text"])

    def __str__(self):
        if not self:
            return "no queues running"
        return "\n".join(r["description"] for r in self.view_rows())

    __repr__ = __str__

    def _repr_pretty_(self, p, cycle):
        p.text(str(self))

    def _repr_html_(self):
        if not self:
            return "<p>no queues running</p>"
        head = "".join(f"<th>{h}</th>" for h in self.columns)
        body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in self.rows())
        return f"<table class='guild-queues'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class QueueControlled(dict):
    """What ``pause``/``resume``/``drain`` asked of a queue: the fields
    ``{"id", "action", "state", "previous"}`` (REST answers them), read as
    one sentence in a terminal and a notebook: ``queue ab12cd34 paused``."""

    SAID = {"pause": "paused (it starts nothing new; runs going keep going)",
            "resume": "resumed",
            "drain": "draining (it starts nothing new and stops once its runs have ended)"}

    def __str__(self) -> str:
        return f"queue {self['id'][:8]} {self.SAID.get(self['action'], self['state'])}"

    __repr__ = __str__

    def _repr_pretty_(self, p, cycle):
        p.text(str(self))
