"""A full picture of a Guild home on disk, to prove a command changed nothing.

``snapshot(home)`` maps every path under ``home`` (directories, files,
symlinks) to its type, size, modification time and, for files, a hash of
the contents. Two equal snapshots mean nothing was created, removed,
renamed, written or touched.
"""

from __future__ import annotations

import hashlib
import os
import stat


def snapshot(home) -> dict:
    home = os.fspath(home)
    out = {}
    for dirpath, dirnames, filenames in os.walk(home):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            digest = None
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    digest = hashlib.sha1(f.read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                digest = os.readlink(path)
            out[os.path.relpath(path, home)] = (stat.S_IFMT(st.st_mode), st.st_size, st.st_mtime_ns, digest)
    st = os.lstat(home)
    out["."] = (stat.S_IFMT(st.st_mode), st.st_size, st.st_mtime_ns, None)
    return out


def diff(before: dict, after: dict) -> list[str]:
    """What changed, one line per path (empty when nothing did)."""
    lines = []
    for path in sorted(set(before) | set(after)):
        if path not in after:
            lines.append(f"removed {path}")
        elif path not in before:
            lines.append(f"created {path}")
        elif before[path] != after[path]:
            lines.append(f"changed {path}: {before[path]} -> {after[path]}")
    return lines
