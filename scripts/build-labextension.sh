#!/usr/bin/env bash
# Builds the browser side (labextension/, one TypeScript package): the
# JupyterLab sidebar into guild_jupyter/labextension/ and the standalone
# /guild page bundle into guild_jupyter/server/static/ (build output, never
# committed), with `npm run build:prod`, the command `pip install .` and
# `python -m build` run too (pyproject.toml's jupyter-builder hook). Then it
# installs the sidebar for this venv's JupyterLab:
# .venv/share/jupyter/labextensions/guild-jupyter links to the build, as
# `jupyter labextension develop` would, so `.venv/bin/jupyter labextension
# list` shows it enabled.
# npm's cache lives in .cache/npm (ignored), so a re-run is quick; a fresh
# clone needs the npm registry once. No browser is ever downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
command -v npm >/dev/null 2>&1 || { echo "build-labextension: npm not found (Node.js >= 20.19 is needed)" >&2; exit 1; }
[ -x .venv/bin/jupyter-builder ] || {
  echo "build-labextension: no JupyterLab in .venv: run scripts/setup-venv.sh first" >&2; exit 1; }
export PUPPETEER_SKIP_DOWNLOAD=1 PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
export npm_config_cache="$ROOT/.cache/npm"
cd labextension
# Install the node packages only when the lock file is newer than what is installed.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] \
   || [ package.json -nt node_modules/.package-lock.json ]; then
  if [ -f package-lock.json ]; then cmd=ci; else cmd=install; fi
  npm "$cmd" --prefer-offline --no-audit --no-fund --loglevel=error
fi
# Build only when a source is newer than the last build (its install.json
# is written last) or an output is missing.
stamp=../guild_jupyter/labextension/install.json
what="up to date"
if [ ! -f "$stamp" ] || [ ! -f ../guild_jupyter/server/static/guild-page.js ] \
   || [ -n "$(find src style schema package.json package-lock.json tsconfig.json install.json -newer "$stamp" -print -quit)" ]; then
  PATH="$ROOT/.venv/bin:$PATH" npm run --silent build:prod >/dev/null 2>"$ROOT/.cache/build-labextension.log" || {
    cat "$ROOT/.cache/build-labextension.log" >&2; exit 1; }
  what="built"
fi
cd "$ROOT"
dest=.venv/share/jupyter/labextensions
mkdir -p "$dest"
if [ -e "$dest/guild-jupyter" ] && [ ! -L "$dest/guild-jupyter" ]; then rm -rf "$dest/guild-jupyter"; fi
ln -sfn "$ROOT/guild_jupyter/labextension" "$dest/guild-jupyter"
echo "build-labextension: guild_jupyter/labextension and guild_jupyter/server/static $what, installed for .venv's JupyterLab"
