#!/usr/bin/env bash
# The kernel evaluator's GPU evidence in one device call (docs/benchmarks.md, "Kernel evaluator"):
#   bash benchmarks/kernel_search_gpu_run.sh OUT SEEDS_DIR [DEADLINE_S]
# SEEDS_DIR: export-seeds output (tasks). In parallel, each step writing its rows as they come, all within
# DEADLINE_S (default 110 s): the hack corpus on CUDA; Inductor's code for every task as ModelNew, then
# eval-all over the tasks and the noise figure (5 repeated measurements of 3 candidates; timing is serialised
# by the evaluator's device lock).
set -u
OUT=$1; SEEDS=$2; DEADLINE=${3:-110}
T0=$(date +%s)
left() { echo $(( DEADLINE - ($(date +%s) - T0) )); }
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
CACHE=/tmp/ks-cache
LOGS=/tmp/ks-logs; mkdir -p $LOGS
NVCC=$(command -v nvcc || ls /usr/local/cuda*/bin/nvcc 2>/dev/null | head -1)
[ -z "$NVCC" ] && NVCC=$(python3 -c "import glob, site; print(next(iter(sorted(p for s in site.getsitepackages() for p in glob.glob(s + '/nvidia/**/bin/nvcc', recursive=True))), ''))")
[ -n "$NVCC" ] && export CUDA_HOME=$(dirname "$(dirname "$NVCC")")
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; date -u;
  python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)";
  echo "cores $(nproc) CUDA_HOME=${CUDA_HOME:-none}"; } > "$OUT/env.txt" 2>&1
timeout "$(left)" python3 benchmarks/kernel_search_gpu.py corpus --out "$OUT/corpus_cuda.json" --jobs 4 \
  --cache-dir $CACHE > "$LOGS/corpus.log" 2>&1 &
CORPUS=$!
timeout 40 python3 -m kernel_search inductor-candidates "$SEEDS" --out /tmp/cands --jobs 10 > "$LOGS/capture.log" 2>&1
cp /tmp/cands/index.json "$LOGS/capture_index.json" 2>/dev/null
timeout "$(left)" python3 benchmarks/kernel_search_gpu.py noise "$SEEDS" /tmp/cands --out "$OUT/noise.json" \
  --jobs 3 --cache-dir $CACHE > "$LOGS/noise.log" 2>&1 &
NOISE=$!
timeout "$(left)" python3 -m kernel_search eval-all "$SEEDS" /tmp/cands --out /tmp/R --jobs 10 \
  --baselines compile --baseline-timeout-s 35 --cache-dir $CACHE > "$LOGS/eval_all.log" 2>&1
cp /tmp/R/results.jsonl /tmp/R/summary.md "$OUT/" 2>/dev/null
wait $CORPUS $NOISE
tar czf "$OUT/cands.tgz" -C /tmp cands 2>/dev/null
tar czf "$OUT/logs.tgz" -C $LOGS . 2>/dev/null
echo "total $(( $(date +%s) - T0 )) s" >> "$OUT/env.txt"
exit 0
