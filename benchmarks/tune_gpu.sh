#!/usr/bin/env bash
# The tuner's GPU measurements in one device call (run from the copied worktree; see docs/kernel_search.md):
# Helion probes (which release runs on this torch, and why its autotuner finds no config), then an exhaustive
# inductor-small search (16 configs) of GPU-sized seed tasks, measured once and kept in the run database.
# Usage: bash benchmarks/tune_gpu.sh SEEDS_DIR WHEELS_DIR OUT_DIR TUNE_SECONDS
set -u
SEEDS=$1; WHL=$2; OUT=$3; TUNE_S=${4:-220}
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$WHL"/duckdb-*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
for v in h14 h151; do
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/$v "$WHL"/$v/*.whl "$WHL"/dep/*.whl
done
nvidia-smi --query-gpu=name,driver_version,clocks.sm --format=csv > "$OUT/gpu.txt" 2>&1
python3 -c "import torch, triton; print(torch.__version__, triton.__version__)" >> "$OUT/gpu.txt"
# Helion probes in parallel (each capped), before the tune so they do not share the GPU with its timing.
( timeout 25 python3 benchmarks/helion_probe.py /tmp/h151 --variant import &
  timeout 35 python3 benchmarks/helion_probe.py /tmp/h14 --variant fixed &
  timeout 40 python3 benchmarks/helion_probe.py /tmp/h14 --variant autotune --budget-s 15 &
  timeout 40 python3 benchmarks/helion_probe.py /tmp/h14 --variant autotune-inprocess --budget-s 15 &
  wait ) > "$OUT/helion.jsonl" 2> "$OUT/helion.err"
tail -c 4000 "$OUT/helion.err" > "$OUT/helion_err_tail.txt"; rm -f "$OUT/helion.err"
timeout "$TUNE_S" python3 -m kernel_search.cli tune "$SEEDS"/*.py --space inductor-small --strategy random \
  --max-evals 16 --jobs 16 --batch-scale 64 --timing-budget-s 0.3 --timeout-s 150 \
  --cache-dir /tmp/ks-cache --out /tmp/run --no-progress > "$OUT/tune.log" 2>&1
echo "tune exit $?" >> "$OUT/tune.log"
tar czf "$OUT/run.tgz" -C /tmp run
