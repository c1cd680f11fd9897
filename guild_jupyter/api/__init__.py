"""The plain Python API: the one façade every front end (magics, panel, CLI,
server) calls. Nothing here imports IPython, ipywidgets or tornado.

Split by concern, every name re-exported here (front ends import only
``guild_jupyter.api``): ``selection`` (the store and run references),
``planning`` (operations and trials), ``starting`` (``run``), ``lifecycle``
(listing, stopping, output, waiting), ``queueing`` (queues and the queue
registry), ``controlling`` (pause, resume, drain a queue), ``rerun``
(restart, restage, retry), ``pipelines`` (priorities and dependencies:
``--after``, ``prioritize``), ``viewing`` (compare, the store monitor),
``sweeping`` (a sweep as a unit; runs' series for charts)."""

from __future__ import annotations

import importlib

from ..store.store import Store

# Every name is loaded on first use (PEP 562): a CLI command imports only the
# parts it calls, which keeps each command's start-up short.
_NAMES = {
    ".lifecycle": "delete output output_from runs stop unstage wait",
    ".planning": "cell_op flag_names operation plan_trials",
    ".queueing": "host_queue queue queue_registry queues serve_queue",
    ".controlling": "drain_queue pause_queue queue_control resume_queue",
    ".conflicts": "CONFLICTS refuse_conflicts",
    ".rerun": "restage restart retry",
    ".pipelines": "prioritize resolve_after",
    ".selection": "resolve_all with_listing_indices listing_refs resolve_store store_home sweep_runs is_sweep_ref",
    ".sweeping": "sweep_table sweeps recent_sweeps scalars sweep_scalars sweep_view newest_sweep",
    ".starting": "run warn_unknown_gpus",
    ".viewing": "compare curves monitor",
    "..plotting": "plot",
    ".watching": "follow outcome_line output_since wait_until",
    "..events": "EventLog EventWatcher WatchThread",
    "..display": "QueueControlled RunList RunOutput Trials",
    "..gpus.spec": "parse_gpu_spec",
    "..queueing.flags": "QUEUE_FLAGS queue_flag_lines queue_flag_table queue_form",
    "..queueing.status": "QueueRegistry",
    "..errors": "BadInput FlagError SweepError WrongState",
    "..execution.batch": "SweepInterrupted",
    "..opdef": "ScriptOp",
    "..store.run": "ERROR FINISHED PENDING RUNNING STAGED Run",
    "..store.records": "is_held",
}
_WHERE = {name: module for module, names in _NAMES.items() for name in names.split()}


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name], __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_WHERE))


__all__ = ["Store", "run", "runs", "stop", "unstage", "delete", "output", "resolve_store", "plan_trials"]
