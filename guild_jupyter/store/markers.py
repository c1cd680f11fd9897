"""The names of the files in a run's ``.guild`` directory that say what
state it is in or who holds it, Guild's and ours, in one place.

A run's status is read from them (``run.Run.status``) and changed only by
:mod:`.transitions`; the queue's requested state and a remote stop request
are records next to them that change no status."""

#: Guild's: a staged run (a queue may start it); a run being started
#: (Guild's empty; ours holds the claim, see :mod:`.records`).
STAGED_MARKER, PENDING_MARKER = "STAGED", "PENDING"
#: Guild's: the pid of the process that holds a running run.
LOCK = "LOCK"
#: Ours: the pid LOCK names and its start time; the run's processes.
LOCK_START, LOCK_PROCS = "LOCK.start", "LOCK.procs"
#: Guild's marker of a run held elsewhere (ours: a Dask worker's host):
#: status "running" everywhere.
LOCK_REMOTE = "LOCK.remote"
#: Ours: the state a person asked a queue to be in (:mod:`.queue_state`).
QUEUE_CONTROL = "guild_jupyter-control"
#: Ours: a stop asked from another machine, carried out by the run's Dask
#: runner (:mod:`.dask_records`).
DASK_STOP = "dask-stop"
