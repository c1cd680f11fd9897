"""The plain Python API: the one façade every front end (magics, panel, CLI,
server) calls. Nothing here imports IPython, ipywidgets or tornado.

Split by concern, every name re-exported here (front ends import only
``guild_jupyter.api``): ``selection`` (the store and run references),
``planning`` (operations and trials), ``starting`` (``run``), ``lifecycle``
(listing, stopping, output, waiting), ``queueing`` (queues and the queue
registry), ``viewing`` (compare, the store monitor)."""

from __future__ import annotations

import sys  # noqa: F401 - the names api.py had, kept

from .. import sweeps as sweeplib  # noqa: F401
from .. import validate  # noqa: F401
from ..display import RunList  # noqa: F401
from ..engine.gpuspec import parse_gpu_spec  # noqa: F401
from ..engine.queue_status import QueueRegistry  # noqa: F401
from ..errors import BadInput, FlagError, SweepError, WrongState  # noqa: F401
from ..execution import batch, control, launch  # noqa: F401
from ..execution.batch import SweepInterrupted  # noqa: F401
from ..opdef import ScriptOp  # noqa: F401
from ..store import transitions  # noqa: F401
from ..store.run import ERROR, FINISHED, PENDING, RUNNING, STAGED, Run  # noqa: F401
from ..store.store import Store
from .lifecycle import delete, output, output_from, runs, stop, unstage, wait, wait_until  # noqa: F401
from .planning import _list_flag_spec, _raw_value, cell_op, flag_names, plan_trials  # noqa: F401
from .queueing import host_queue, queue, queue_registry, queues, serve_queue  # noqa: F401
from .selection import _resolve_all, _with_listing_indices, listing_refs, resolve_store, store_home  # noqa: F401
from .starting import _warn_flags_shadowing_scalars, follow_output, run, warn_unknown_gpus  # noqa: F401
from .viewing import compare, monitor  # noqa: F401

__all__ = ["Store", "run", "runs", "stop", "unstage", "delete", "output", "resolve_store", "plan_trials"]
