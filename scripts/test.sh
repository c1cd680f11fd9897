#!/usr/bin/env bash
# Installs everything the tests need (venv with the test extra, Debian's
# chromium) and runs the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh test,dask
bash scripts/install-chromium.sh
set +e
.venv/bin/python -m pytest -p no:cacheprovider "$@"
rc=$?
set -e
if [ "$rc" = 5 ]; then echo "test.sh: no tests were collected" >&2; exit 1; fi
exit "$rc"
