#!/usr/bin/env bash
# The tuner's GPU measurements in one device call (run from the copied worktree; see docs/kernel_search.md):
# Helion probes (which release runs on this torch, and why its autotuner finds no config), then an exhaustive
# inductor-small search (16 configs) of GPU-sized seed tasks, measured once and kept in the run database.
# Usage: bash benchmarks/tune_gpu.sh SEEDS_DIR WHEELS_DIR OUT_DIR TUNE_SECONDS
set -u
SEEDS=$1; WHL=$2; OUT=$3; TUNE_S=${4:-220}; DEADLINE=${5:-280}
T0=$(date +%s)
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$WHL"/duckdb-*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
for v in h14 h151; do
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/$v "$WHL"/$v/*.whl "$WHL"/dep/*.whl
done
nvidia-smi --query-gpu=name,driver_version,clocks.sm --format=csv > "$OUT/gpu.txt" 2>&1
python3 -c "import torch, triton; print(torch.__version__, triton.__version__)" >> "$OUT/gpu.txt"
# Helion probes in parallel (each capped), before the tune so they do not share the GPU with its timing.
H=/tmp/helion_logs; mkdir -p $H
( timeout 25 python3 benchmarks/helion_probe.py /tmp/h151 --variant import 2> $H/import151.err &
  timeout 35 python3 benchmarks/helion_probe.py /tmp/h14 --variant fixed 2> $H/fixed14.err &
  HELION_AUTOTUNE_LOG_LEVEL=INFO timeout 40 python3 benchmarks/helion_probe.py /tmp/h14 --variant autotune \
    --budget-s 15 2> $H/autotune14.err &
  HELION_AUTOTUNE_LOG_LEVEL=INFO timeout 40 python3 benchmarks/helion_probe.py /tmp/h14 \
    --variant autotune-inprocess --budget-s 15 2> $H/inprocess14.err &
  wait ) > "$OUT/helion.jsonl"
tar czf "$OUT/helion_logs.tgz" -C $H .
timeout "$TUNE_S" python3 -m kernel_search.cli tune "$SEEDS"/*.py --space inductor-small --strategy random \
  --max-evals 16 --jobs 12 --parallel-tasks 2 --batch-scale 64 --timing-budget-s 0.3 --timeout-s 150 \
  --cache-dir /tmp/ks-cache --out /tmp/run --no-progress > "$OUT/tune.log" 2>&1
echo "tune exit $? after $(( $(date +%s) - T0 )) s" >> "$OUT/tune.log"
LEFT=$(( DEADLINE - ($(date +%s) - T0) ))
if [ "$LEFT" -gt 40 ]; then  # what is left: tune-pairs on the committed fixture pairs
  timeout "$LEFT" python3 -m kernel_search.cli tune-pairs tests/fixtures/pairs --limit 4 --strategy ga \
    --set ga.population_size=4 --max-evals 8 --jobs 8 --timing-budget-s 0.3 --timeout-s 100 \
    --cache-dir /tmp/ks-cache --out /tmp/run/pairs --no-progress >> "$OUT/tune.log" 2>&1
  echo "tune-pairs exit $?" >> "$OUT/tune.log"
fi
tar czf "$OUT/run.tgz" -C /tmp run
