#!/usr/bin/env bash
# The sandbox's GPU must-show in one device call (docs/benchmarks.md, "export-pairs in the sandbox"):
#   bash benchmarks/sandbox_export_gpu_run.sh OUT [BASELINE_TREE] [DEADLINE_S]
# Generates 60 programs there, runs benchmarks/sandbox_export.py (hostile + normal programs with fake
# secrets, then the 60) and, with what is left of DEADLINE_S (default 200 s), export-pairs of the same 60
# with BASELINE_TREE's code (a checkout without this sandbox) for the throughput comparison.
set -u
OUT=$1; BASE=${2:-}; DEADLINE=${3:-200}
T0=$(date +%s)
left() { echo $(( DEADLINE - ($(date +%s) - T0) )); }
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u; uname -r; id; nproc
  python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
  python3 -c "from synth_modules.sandbox import landlock; print('landlock abi', landlock.abi_version())"
  python3 -c "import psutil; print('MemTotal GiB', psutil.virtual_memory().total / 2**30)"
  CG=/sys/fs/cgroup$(cut -d: -f3 /proc/self/cgroup | tail -1); echo "cgroup $CG"
  cat "$CG/cgroup.subtree_control" "$CG/memory.max" 2>&1; ls -la /dev/nvidia* 2>&1 | head -8; } > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
UNSAFE=$(python3 -c "from synth_modules.sandbox import landlock; print('' if landlock.abi_version() else 'allow_unsandboxed=true')")
( time timeout "$(left)" python3 scripts/generate_synth_torch.py .parallel num_total_samples=60 num_worker=14 \
  output_dir=/tmp/run dedup=false progress=false $UNSAFE ) > "$OUT/generate.log" 2>&1
tail -4 "$OUT/generate.log"
timeout 60 python3 benchmarks/sandbox_gpu_preflight.py > "$OUT/preflight.log" 2>&1; cat "$OUT/preflight.log"
timeout "$(left)" python3 benchmarks/sandbox_export.py /tmp/run --out /tmp/work --jobs 14 --hostile-jobs 6 \
  --json "$OUT/sandbox_export.json" > "$OUT/sandbox_export.log" 2>&1
tail -c 6000 "$OUT/sandbox_export.log"
for f in /tmp/work/*/logs/worker-*.log; do echo "== $f"; tail -c 1500 "$f"; done > "$OUT/worker_logs.txt" 2>&1
if [ -n "$BASE" ] && [ "$(left)" -gt 20 ]; then
  (cd "$BASE" && PYTHONPATH="$PWD:${PYTHONPATH#*:}" timeout "$(left)" python3 -c "
import dataclasses, json
from synth_modules.export.pairs import ExportSettings, export_pairs
s = export_pairs('/tmp/run', '/tmp/base_pairs', ExportSettings(jobs=14, progress=False))
print(json.dumps(dataclasses.asdict(s), default=str))") > "$OUT/baseline.json" 2> "$OUT/baseline.err"
  tail -c 1500 "$OUT/baseline.json"; tail -3 "$OUT/baseline.err"
fi
