#!/usr/bin/env bash
# The GPU session behind docs/benchmarks.md's "GPU data" section, on a 16-core H200 host, in lanes of pinned
# cores: (1) cores 0-7: a default-config run -> export-seeds --profile gpu --device cuda; (2) cores 8-10 and
# 11-13: a bfloat16 and a float16 run -> export-pairs once export-seeds is done (its timing needs the GPU to
# itself; the 2026-12-02 session predates this wait); (3) cores 14-15: validation throughput of the cpu profile,
# before (main's tree, if given) and after. Sizes and time limits come from the environment so one script serves
# the debug run and the full one:
#
#   N_DEFAULT=8 N_HALF=12 PROGRAMS=0 bash benchmarks/gpu_data_session.sh OUT [MAIN_TREE]
set -u
OUT=$1
MAIN=${2:-}
W=$(pwd)
: "${N_DEFAULT:=110}" "${N_HALF:=150}" "${PROGRAMS:=40}" "${T_GEN:=45}" "${T_SEEDS:=125}"
: "${T_HALF_GEN:=95}" "${T_HALF:=170}" "${SEED_CORES:=0-7}" "${SEED_JOBS:=8}" "${GEN_WORKERS:=8}"
export PYTHONUNBUFFERED=1
if ls whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$W PATH=/tmp/site/bin:$PATH
fi
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; date -u; nproc;
  python3 -c "import torch, triton; print(torch.__version__, triton.__version__)"; } > "$OUT/machine.txt" 2>&1
gen() {  # cores samples workers dir timeout [key=value...]
  local cores=$1 n=$2 w=$3 dir=$4 t=$5; shift 5
  timeout -k 5 "$t" taskset -c "$cores" python3 scripts/generate_synth_torch.py .parallel num_total_samples="$n" \
    num_worker="$w" output_dir="$dir" dedup=false progress=false "$@"
  echo "generate $dir exit $? at $SECONDS s"
}
half() {  # cores dtype: a run, then (once export-seeds is done: its timing needs a quiet GPU) its pairs
  gen "$1" "$N_HALF" 3 "/tmp/run_$2" "$T_HALF_GEN" dtype="$2"
  while [ ! -e /tmp/seeds.done ] && [ "$SECONDS" -lt "$T_HALF" ]; do sleep 1; done
  timeout -k 5 $((T_HALF - SECONDS > 10 ? T_HALF - SECONDS : 10)) taskset -c "$1" python3 -m synth_modules.cli export-pairs "/tmp/run_$2" \
    --out "/tmp/pairs_$2" --device cuda --jobs 3
  echo "export-pairs $2 exit $? at $SECONDS s"
}
(
  gen "$SEED_CORES" "$N_DEFAULT" "$GEN_WORKERS" /tmp/run "$T_GEN"
  timeout -k 10 "$T_SEEDS" taskset -c "$SEED_CORES" python3 -m synth_modules.cli export-seeds /tmp/run \
    --out /tmp/seeds --profile gpu --device cuda --jobs "$SEED_JOBS"
  echo "export-seeds exit $? at $SECONDS s"
  touch /tmp/seeds.done
) > "$OUT/lane_seeds.log" 2>&1 &
if [ "$N_HALF" -gt 0 ]; then
  half 8-10 bfloat16 > "$OUT/lane_bf16.log" 2>&1 &
  half 11-13 float16 > "$OUT/lane_fp16.log" 2>&1 &
fi
(
  if [ "$PROGRAMS" -gt 0 ]; then
    [ -n "$MAIN" ] && (cd "$MAIN" && export PYTHONPATH=/tmp/site && echo BEFORE && taskset -c 14,15 python3 benchmarks/validation_throughput.py \
      --skip-fresh --programs "$PROGRAMS")
    echo AFTER && taskset -c 14,15 python3 benchmarks/validation_throughput.py --skip-fresh --programs "$PROGRAMS"
  fi
) > "$OUT/throughput.log" 2>&1 &
wait
python3 benchmarks/gpu_data_summary.py --seeds /tmp/seeds --run /tmp/run --run /tmp/run_bfloat16 \
  --run /tmp/run_float16 --pairs /tmp/pairs_bfloat16 --pairs /tmp/pairs_float16 > "$OUT/summary.json" 2>&1
cp /tmp/seeds/index.json "$OUT/seeds_index.json" 2>/dev/null
tar czf "$OUT/artifacts.tgz" /tmp/seeds/*.py /tmp/seeds/logs /tmp/pairs_*/rejected.jsonl /tmp/pairs_*/meta.json \
  /tmp/pairs_*/logs /tmp/run*/rejected.jsonl /tmp/run*/stats.json 2>/dev/null
echo "session done at $SECONDS s"
