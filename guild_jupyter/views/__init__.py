"""The one view model: what runs, queues and GPUs say and allow, for every
front end.

The panel, the ``/guild`` page, the JupyterLab sidebar, the REST API, the
CLI and the magics all show runs through these: one status list, one flag
formatter, one time formatter, one GPU phrase, one wording for a run the
user stopped and for a run removed from the queue before it started, the
actions each row allows now, the groups runs are shown in, and one
serialiser per kind of row. Rows are plain data (dicts of JSON values), so
the page and the REST API send them as they are and the panel renders the
same. The contract the browser renders is ``coord/VIEWMODEL.md``.

Modules: ``words`` (how values read), ``runs`` (run rows and their
phrases), ``queues`` (queue and GPU rows), ``actions`` (the verbs a row
allows), ``groups`` (the groups and the store's summary), ``forms`` (the
'start a queue' form), ``sweeps`` (a sweep's table of trials, and the
sidebar's list of sweeps: ``coord/SWEEP.md``).
"""

from __future__ import annotations

from ..store.run import COMPLETED, ERROR, FINISHED, PENDING, RUNNING, STAGED, STATUSES, TERMINATED

# Each name's module, imported on first use (PEP 562): a CLI verb that prints one
# row loads the run rows' module, not the sweep tables, queue rows and forms.
_WHERE = {
    'actions': ('HELD', 'QUEUE_VERBS', 'RUN_ACTIONS', 'RUN_VERBS', 'open_notebook_action', 'open_sweep_action', 'output_action', 'priority_form', 'queue_actions', 'restage_form', 'run_actions'),
    'forms': ('queue_form',),
    'sweeps': ('main_tag_of', 'sweep_brief', 'sweep_entry', 'sweep_summary', 'sweep_table'),
    'groups': ('ATTENTION_SECONDS', 'GROUP_NAMES', 'GROUP_OF_STATUS', 'GROUPS', 'Group', 'group', 'status_bar_text', 'summary_text'),
    'queues': ('describe_queue', 'gpu_row', 'queue_row', 'queue_state_text', 'queue_title', 'slots_text'),
    'runs': ('DISPLAY_STATUSES', 'SPARK_HEIGHT', 'SPARK_POINTS', 'SPARK_WIDTH', 'STOPPED_BY_YOU', 'TIME_KINDS', 'UNSTAGED', 'after_ids', 'held_words', 'priority_of_run', 'listing_row', 'staged_places', 'main_scalar', 'notebook_tree_path', 'outcome_text', 'place_in_line', 'retry_text', 'run_row', 'run_words', 'spark_points', 'status_of', 'status_text', 'stopped_by_user'),
    'words': ('ANY_GPU', 'elapsed_text', 'flags_text', 'format_flag', 'format_time', 'format_value', 'gpus_phrase', 'gpus_text', 'jsonable', 'label_text', 'lower_is_better', 'ordinal', 'plural', 'position_text', 'priority_text', 'queue_gpus_text', 'scalar_text', 'size_text', 'varying_flags'),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib  # lazy: the name's module, loaded the first time the name is asked for

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_MODULE_OF))


__all__ = ["STATUSES", "STAGED", "PENDING", "RUNNING", "COMPLETED", "ERROR", "TERMINATED", "FINISHED",
           *_MODULE_OF]
