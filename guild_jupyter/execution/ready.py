"""The started side of the ready handshake: a process that a launcher
waits on (a run's supervisor, a detached queue, a sweep's batch host) is
given ``--ready-fd N`` and writes one line there, ``ok`` or ``error:
WHY``, once it holds its run or has failed to. The waiting side is
:mod:`.launch`."""

from __future__ import annotations

import os


def ready_fd_from(argv: list) -> int | None:
    if "--ready-fd" in argv:
        return int(argv[argv.index("--ready-fd") + 1])
    return None


def report_ready(fd: int | None, msg: str) -> None:
    if fd is None:
        return
    try:
        os.write(fd, (msg.replace("\n", " ") + "\n").encode())
        os.close(fd)
    except OSError:
        pass
