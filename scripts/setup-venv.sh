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
.venv/bin/python -m pip install -q --disable-pip-version-check -e "$spec" --config-settings editable_mode=compat 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -c 'import guild_jupyter'
# An editable install does not install the package's data files: put the server
# extension's config file where a wheel install puts it, so `jupyter lab` from
# this venv serves /guild (`jupyter server extension list` shows it enabled).
mkdir -p .venv/etc/jupyter/jupyter_server_config.d
cp jupyter-config/jupyter_server_config.d/guild_jupyter.json .venv/etc/jupyter/jupyter_server_config.d/
# The JupyterLab sidebar (TypeScript): built and installed for this venv's
# JupyterLab (`jupyter labextension list` shows guild-jupyter enabled).
# A failed build is reported, not fatal: everything else works without it
# (and tests/test_browser_sidebar.py fails, so it is not missed).
if command -v npm >/dev/null 2>&1; then
  bash scripts/build-labextension.sh || echo "setup: the JupyterLab sidebar did not build (see above); the rest is installed" >&2
else
  echo "setup: npm not found: the JupyterLab sidebar is not built (install Node.js >= 20.19, then run scripts/build-labextension.sh)" >&2
fi
.venv/bin/python -m compileall -q guild_jupyter >/dev/null  # PYTHONDONTWRITEBYTECODE may be set: precompile once
