"""What every queue in a store is doing, for listings and the panel."""

from __future__ import annotations

import dataclasses
import html

from .store.run import PENDING, RUNNING, Run


@dataclasses.dataclass
class QueueInfo:
    id: str
    host: str  # thread | detached | server | cli (ours, see engine.hosts) | guild
    pid: int | None
    gpus: str | None
    wait_for_running: bool
    run_once: bool
    state: str  # waiting | running | stopped | terminated | error ...
    current: str | None  # id of the run it started and waits for
    this_process: bool = False
    run: Run | None = None

    @property
    def busy(self) -> bool:
        return self.current is not None


def _host_of(run: Run) -> str:
    info = run.get("guild_jupyter")
    if isinstance(info, dict) and info.get("host"):
        return str(info["host"])
    return "guild"


def list_queues(store, thread_queues=(), include_finished: bool = False) -> "QueueList":
    """Every queue run in ``store``; ``thread_queues``: the ``QueueHost``
    handles of this process, which know the run they wait for first-hand."""
    mine = {q.id: q for q in thread_queues}
    runs = store.runs()
    queue_runs = [r for r in runs if r.is_queue]
    active = [r for r in runs if not r.is_queue and r.status in (RUNNING, PENDING)]
    current_of = {}
    for r in active:
        qid = r.get("queue_id")
        if qid:
            current_of[qid] = r.id
    out = QueueList()
    for q in queue_runs:
        status = q.status
        if status != RUNNING and not include_finished:
            continue
        flags = q.flags
        gpus = flags.get("gpus")
        handle = mine.get(q.id)
        current = current_of.get(q.id)
        if handle is not None and handle.current_run is not None:
            current = handle.current_run.id
        if status == RUNNING:
            state = "running" if current else "waiting"
        else:
            state = status
        out.append(
            QueueInfo(
                id=q.id,
                host=_host_of(q),
                pid=q.lock_pid() if status == RUNNING else None,
                gpus=None if gpus in (None, "") else str(gpus),
                wait_for_running=bool(flags.get("wait-for-running")),
                run_once=bool(flags.get("run-once")),
                state=state,
                current=current,
                this_process=handle is not None,
                run=q,
            )
        )
    return out


class QueueList(list):
    def to_json(self) -> list[dict]:
        return [{"id": q.id, "host": q.host, "pid": q.pid, "gpus": q.gpus, "wait_for_running": q.wait_for_running,
                 "run_once": q.run_once, "state": q.state, "current": q.current, "this_process": q.this_process}
                for q in self]

    def rows(self):
        for q in self:
            host = q.host + (" (this kernel)" if q.this_process else "")
            yield (q.id[:8], host, str(q.pid or ""), q.gpus or "-", q.state, (q.current or "")[:8])

    def __str__(self):
        if not self:
            return "no queues running"
        return "\n".join(
            f"{qid}  {host}  pid={pid}  gpus={gpus}  {state}" + (f"  run={cur}" if cur else "")
            for qid, host, pid, gpus, state, cur in self.rows()
        )

    __repr__ = __str__

    def _repr_pretty_(self, p, cycle):
        p.text(str(self))

    def _repr_html_(self):
        if not self:
            return "<p>no queues running</p>"
        head = "".join(f"<th>{h}</th>" for h in ("queue", "host", "pid", "gpus", "state", "run"))
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in self.rows())
        return f"<table class='guild-queues'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
