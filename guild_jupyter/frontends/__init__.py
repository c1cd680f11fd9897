"""The front ends: the command line, the ``%guild`` magics and their tab
completion, all generated from one table of verbs (:mod:`.commands`).

They call :mod:`guild_jupyter.api` and render with the display and view
modules; none of them imports the store, the queue engine or the execution
internals (``tests/test_imports.py`` checks it).
"""
