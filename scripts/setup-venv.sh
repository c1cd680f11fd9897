#!/usr/bin/env bash
# Creates ./.venv (if missing) and installs the package with the given extras.
# Usage: scripts/setup-venv.sh [EXTRAS]   e.g. scripts/setup-venv.sh test
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for c in python3.12 python3.11 python3.10 python3; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then PY=$c; break; fi
  done
fi
[ -n "$PY" ] || { echo "setup: no Python >= 3.10 found" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
spec="."
[ -n "${1:-}" ] && spec=".[$1]"
# The editable install (hatchling) puts the server extension's config in
# .venv/etc/jupyter, so `jupyter lab` from this venv serves /guild (`jupyter
# server extension list` shows it enabled). Its npm build step is skipped
# here (SKIP_JUPYTER_BUILDER): build-labextension.sh below builds the same
# bundles with its own npm cache and links them into the venv.
# (pip's "WARNING: Location ..." lines are this machine's index settings.)
SKIP_JUPYTER_BUILDER=1 .venv/bin/python -m pip install -q --disable-pip-version-check -e "$spec" 2>&1 \
  | grep -v '^WARNING: Location' || true
.venv/bin/python -c 'import guild_jupyter'
# The browser side (TypeScript): the JupyterLab sidebar, built and installed
# for this venv's JupyterLab (`jupyter labextension list` shows guild-jupyter
# enabled), and the /guild page bundle. A failed build is reported, not
# fatal: everything else works without it (and the browser tests fail, so it
# is not missed).
if command -v npm >/dev/null 2>&1; then
  bash scripts/build-labextension.sh || echo "setup: the JupyterLab sidebar did not build (see above); the rest is installed" >&2
else
  echo "setup: npm not found: the JupyterLab sidebar is not built (install Node.js >= 20.19, then run scripts/build-labextension.sh)" >&2
fi
.venv/bin/python -m compileall -q guild_jupyter >/dev/null  # PYTHONDONTWRITEBYTECODE may be set: precompile once
