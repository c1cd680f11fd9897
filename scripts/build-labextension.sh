#!/usr/bin/env bash
# Builds the JupyterLab sidebar (labextension/, TypeScript) into
# guild_jupyter/labextension/ (build output, never committed) and installs
# it for this venv's JupyterLab: .venv/share/jupyter/labextensions/guild-jupyter
# links to the build, as `jupyter labextension develop` would, so
# `.venv/bin/jupyter labextension list` shows it enabled. A wheel built after
# this carries the same files (pyproject.toml's data-files).
# npm's cache lives in .cache/npm (ignored), so a re-run is quick; a fresh
# clone needs the npm registry once. No browser is ever downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
command -v npm >/dev/null 2>&1 || { echo "build-labextension: npm not found (Node.js >= 20.19 is needed)" >&2; exit 1; }
[ -x .venv/bin/jupyter-builder ] || [ -x .venv/bin/jupyter-labextension ] || {
  echo "build-labextension: no JupyterLab in .venv: run scripts/setup-venv.sh first" >&2; exit 1; }
export PUPPETEER_SKIP_DOWNLOAD=1 PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
cd labextension
# Install the node packages only when the lock file is newer than what is installed.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] \
   || [ package.json -nt node_modules/.package-lock.json ]; then
  if [ -f package-lock.json ]; then cmd=ci; else cmd=install; fi
  npm "$cmd" --cache "$ROOT/.cache/npm" --prefer-offline --no-audit --no-fund --loglevel=error
fi
# Build only when a source is newer than the last build's install.json.
out=../guild_jupyter/labextension/install.json
what="up to date"
if [ ! -f "$out" ] || [ -n "$(find src style package.json package-lock.json tsconfig.json install.json -newer "$out" -print -quit)" ]; then
  npx --no-install tsc
  if [ -x ../.venv/bin/jupyter-builder ]; then
    ../.venv/bin/jupyter-builder build . >/dev/null 2>&1 || ../.venv/bin/jupyter-builder build .
  else
    ../.venv/bin/jupyter labextension build . >/dev/null
  fi
  cp install.json "$out"
  what="built"
fi
cd "$ROOT"
dest=.venv/share/jupyter/labextensions
mkdir -p "$dest"
if [ -e "$dest/guild-jupyter" ] && [ ! -L "$dest/guild-jupyter" ]; then rm -rf "$dest/guild-jupyter"; fi
ln -sfn "$ROOT/guild_jupyter/labextension" "$dest/guild-jupyter"
echo "build-labextension: guild_jupyter/labextension $what, installed for .venv's JupyterLab"
