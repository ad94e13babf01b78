"""Verify committed GPU pairs on CPU with Triton's interpreter: `python tests/triton_cpu_check.py PAIRS_DIR [N]`.

Run as its own process because TRITON_INTERPRET must be set before Triton is imported. Each pair's triton_code
is retargeted to CPU buffers, its `libdevice` bound to tests/triton_cpu_libdevice.py, and the New module checked
against the PyTorch program with the same verification (fresh inputs, tolerances) export-pairs uses on the GPU,
on the first N of its verification seeds (default 1: the interpreter is slow). Prints one JSON line per pair;
a kernel that trips Triton 3.6's interpreter on NumPy >= 2.4 (triton-lang/triton#9171: `range()` over a value
assigned inside the kernel) is reported as `"interpreter_bug"` instead of `"ok"`.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

os.environ["TRITON_INTERPRET"] = "1"

import torch
from triton.runtime.errors import InterpreterError

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import triton_cpu_libdevice  # noqa: E402

from synth_modules.export.programs import import_file  # noqa: E402
from synth_modules.export.verify import retarget_to_cpu, verify_pair  # noqa: E402
from synth_modules.export.wrap import new_class_name  # noqa: E402
from synth_modules.run.store import read_jsonl  # noqa: E402

_NUMPY_INDEX_BUG = "only 0-dimensional arrays can be converted to Python scalars"


def main(pairs_dir: str, n_seeds: int = 1) -> int:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        for row in read_jsonl(Path(pairs_dir) / "pairs.jsonl"):
            info = json.loads(row["capture_info"])
            program_path = Path(tmp) / f"{row['entry_point']}.py"
            program_path.write_text(row["python_code"], encoding="utf-8")
            pair_path = Path(tmp) / f"{row['entry_point']}_pair.py"
            pair_path.write_text(retarget_to_cpu(row["triton_code"]), encoding="utf-8")
            pair = import_file(pair_path, prefix="interpret_pair")
            pair.libdevice = triton_cpu_libdevice
            try:
                result = verify_pair(
                    import_file(program_path, prefix="interpret_program"),
                    row["entry_point"],
                    getattr(pair, new_class_name(row["entry_point"])),
                    "cpu",
                    seeds=tuple(info["seeds"][:n_seeds]),
                    rtol=info["rtol"],
                    atol=info["atol"],
                )
            except InterpreterError as error:
                if _NUMPY_INDEX_BUG not in str(error):
                    raise
                print(
                    json.dumps({"entry_point": row["entry_point"], "interpreter_bug": str(error)}), flush=True
                )
                continue
            print(json.dumps({"entry_point": row["entry_point"], **vars(result)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1], *(int(a) for a in sys.argv[2:3])))
