#!/usr/bin/env bash
# Installs the package and runs the quickstart end to end on the default store
# ($GUILD_HOME, else ~/.guild).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh
.venv/bin/python scripts/quickstart.py
