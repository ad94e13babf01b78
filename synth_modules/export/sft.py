"""export-sft: verified pairs -> instruction/input/output JSON lines (KernelLLM-style supervised fine-tuning).

The wording lives in prompts/export_sft.toml; each record is the instruction (naming the class to write), the
PyTorch program as input and the verified Triton module as output, both in python code fences.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prompts import load_prompt
from synth_modules.export.pairs import read_pairs
from synth_modules.export.wrap import new_class_name

PROMPT_NAME = "export_sft"


def sft_record(row: dict[str, Any]) -> dict[str, str]:
    prompt = load_prompt(PROMPT_NAME)
    values = {
        "entry_point": row["entry_point"],
        "new_entry_point": new_class_name(row["entry_point"]),
        "python_code": row["python_code"].strip(),
        "triton_code": row["triton_code"].strip(),
    }
    rendered = prompt.render(**values)
    return {
        "id": row["id"],
        "instruction": rendered.system,
        "input": rendered.user,
        "output": prompt.fragment("output", **values),
    }


def export_sft(pairs_dir: str | Path, out: str | Path) -> int:
    """Write one SFT record per pair to the JSONL file `out`; returns the number of records."""
    rows = read_pairs(pairs_dir)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(sft_record(row), ensure_ascii=False) + "\n")
    tmp.replace(out)
    return len(rows)
