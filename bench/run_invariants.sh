#!/usr/bin/env bash
# Runs the random-interleavings invariant test many rounds in a row, each with
# its own seed, and prints how many passed (and the seeds that failed, to
# replay one: GUILD_JUPYTER_INVARIANT_SEED=S .venv/bin/python -m pytest -q
# tests/reliability/test_invariants.py::test_random_interleavings_keep_the_invariants).
#
#   bench/run_invariants.sh [ROUNDS] [FIRST_SEED]     (default: 20 rounds, a random first seed)
#
# Each round's pytest output is kept in $OUT_DIR (default: a temp directory).
set -u
cd "$(dirname "$0")/.."
rounds=${1:-20}
first=${2:-$(( (RANDOM << 15 | RANDOM) % 1000000000 ))}
out_dir=${OUT_DIR:-$(mktemp -d -t run-invariants.XXXXXX)}
py=.venv/bin/python
passed=0
failed_seeds=()
start=$(date +%s)
for ((i = 0; i < rounds; i++)); do
    seed=$((first + i))
    t0=$(date +%s)
    if GUILD_JUPYTER_INVARIANT_SEED=$seed "$py" -m pytest -q -p no:cacheprovider -rA \
        tests/reliability/test_invariants.py::test_random_interleavings_keep_the_invariants >"$out_dir/round-$i-seed-$seed.log" 2>&1; then
        passed=$((passed + 1))
        verdict=pass
    else
        failed_seeds+=("$seed")
        verdict=FAIL
    fi
    echo "round $((i + 1))/$rounds seed=$seed $verdict ($(( $(date +%s) - t0 ))s)"
done
echo "passed $passed/$rounds in $(( $(date +%s) - start ))s; logs in $out_dir"
if ((${#failed_seeds[@]})); then
    echo "failed seeds: ${failed_seeds[*]}"
    exit 1
fi
