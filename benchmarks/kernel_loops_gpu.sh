#!/usr/bin/env bash
# The loops' GPU evidence in one device call (docs/benchmarks.md, "Kernel-search loops"):
#   bash benchmarks/kernel_loops_gpu.sh OUT [DEADLINE_S]
# Every loop offline (refine, beam, priority, evolve) over 12 GPU-sized tasks, all (loop, task) runs at once
# (timing serialised by the evaluator's device lock), and the offline research demo beside it; everything is
# written as it finishes and packed into OUT. Needs .whl/duckdb-*.whl (carried).
set -u
OUT=$1; DEADLINE=${2:-90}
T0=$(date +%s)
left() { echo $(( DEADLINE - ($(date +%s) - T0) )); }
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
LOGS=/tmp/logs; mkdir -p $LOGS
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; date -u;
  python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)";
  echo "cores $(nproc)"; } > "$OUT/env.txt" 2>&1
python3 benchmarks/kernel_loops_tasks.py /tmp/tasks --scale 1024 >> "$OUT/env.txt" 2>&1
timeout "$(( $(left) - 8 ))" python3 -m kernel_search demo --device cuda --out /tmp/demo --max-evals 1 \
  --budget-s 0.05 --timeout-s 60 --cache-dir /tmp/ks-cache > $LOGS/demo.log 2>&1 &
DEMO=$!
timeout "$(( $(left) - 6 ))" python3 -m kernel_search loops /tmp/tasks --loops refine,beam,priority,evolve \
  --max_attempts 3 --beam 2 --rounds 1 --ideas 1 --initial 1 --children 1 --islands 2 --generations 1 \
  --num_correct_trials 3 --num_perf_trials 30 --budget-s 0.05 --timeout-s 60 --baselines compile \
  --max-seconds "$(( $(left) - 50 ))" --jobs 48 --capture-jobs 12 --cache-dir /tmp/ks-cache --out /tmp/loops \
  --verbose > $LOGS/loops.log 2>&1
echo "loops exit $? at $(( $(date +%s) - T0 )) s" >> "$OUT/env.txt"
wait $DEMO; echo "demo exit $? at $(( $(date +%s) - T0 )) s" >> "$OUT/env.txt"
cp /tmp/loops/results/summary.md "$OUT/loops_summary.md" 2>/dev/null
cp /tmp/demo/results/summary.md "$OUT/demo_summary.md" 2>/dev/null
tar czf "$OUT/loops.tgz" -C /tmp loops 2>/dev/null
tar czf "$OUT/demo.tgz" -C /tmp demo 2>/dev/null
tar czf "$OUT/logs.tgz" -C $LOGS . 2>/dev/null
exit 0
