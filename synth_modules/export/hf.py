"""export-hf: a pairs directory -> a Hugging Face Hub dataset folder (parquet shards + dataset card).

Layout: HF_DIR/data/train-00000-of-0000N.parquet and HF_DIR/README.md whose YAML front matter declares the
`default` config (data_files data/train-*), the features, split sizes and license, so
`datasets.load_dataset(HF_DIR)` reads it offline and the Hub shows it without a loading script. The card body
records how the pairs were made: counts, rejection categories, verification tolerances, versions, GPU and the
source run's generation settings.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import yaml

from synth_modules.export.pairs import format_rejected, read_meta, read_pairs
from synth_modules.export.schema import COLUMNS, card_features, columns_for, feature_label, rows_to_table

DATA_DIR = "data"
CARD_FILE = "README.md"
DEFAULT_ROWS_PER_SHARD = 2000


class HubTokenMissingError(RuntimeError):
    """push_to_hub needs a write token in HF_TOKEN."""


@dataclass
class HfExport:
    rows: int
    shards: list[Path]
    card: Path


def _card_yaml(
    rows: int, num_bytes: int, download_size: int, license_id: str, pretty_name: str, columns: tuple = COLUMNS
) -> str:
    header = {
        "license": license_id,
        "pretty_name": pretty_name,
        "task_categories": ["text-generation"],
        "tags": ["code", "triton", "pytorch", "gpu-kernels", "synthetic"],
        "size_categories": [_size_category(rows)],
        "configs": [
            {"config_name": "default", "data_files": [{"split": "train", "path": f"{DATA_DIR}/train-*"}]}
        ],
        "dataset_info": {
            "features": card_features(columns),
            "splits": [{"name": "train", "num_bytes": num_bytes, "num_examples": rows}],
            "download_size": download_size,
            "dataset_size": num_bytes,
        },
    }
    return yaml.safe_dump(header, sort_keys=False, allow_unicode=True)


def _size_category(rows: int) -> str:
    for limit, label in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
    ):
        if rows < limit:
            return label
    return "n>1M"


def _tolerance_text(settings: dict[str, Any]) -> str:
    """The comparison rule as the card states it (older PAIRS_DIRs recorded a fixed rtol/atol)."""
    tolerances = settings.get("tolerances")
    if not tolerances:
        return f"rtol {settings.get('rtol')}, atol {settings.get('atol')}"
    parts = ", ".join(
        f"{dtype} rtol {t['rtol']:g} + {t['scale_atol']:g} x max |output|" for dtype, t in tolerances.items()
    )
    return f"weights randomized (seed {settings.get('weight_seed')}); per element |error| <= {parts}"


def _card_body(pretty_name: str, rows: int, meta: dict[str, Any], columns: tuple = COLUMNS) -> str:
    counts = meta.get("counts", {})
    rejected = counts.get("rejected", {})
    settings = meta.get("settings", {})
    versions = meta.get("versions", {})
    run_config = meta.get("source", {}).get("run", {}).get("config", {})
    lines = [
        f"# {pretty_name}",
        "",
        "PyTorch `nn.Module` programs paired with the Triton code that TorchInductor generated for them on a CUDA "
        "GPU, made with synth-torch. Each `triton_code` is the captured output cleaned (launch parameters inlined, "
        "autotuning scaffolding and comments removed, ruff-formatted) and wrapped as `<entry_point>New(nn.Module)` "
        "with the original `__init__`; every row was verified numerically against its PyTorch module on fresh "
        "random inputs before it was kept.",
        "",
        "## Contents",
        "",
        f"- rows: {rows}",
        f"- programs attempted: {counts.get('attempted', rows)}; rejected: {format_rejected(rejected)}",
        f"- verification: {_tolerance_text(settings)}, "
        f"{len(settings.get('verification_seeds', []))} fresh inputs per pair, TF32 off",
        f"- torch {versions.get('torch_version')}, triton {versions.get('triton_version')}, "
        f"GPU {versions.get('gpu_name')}",
        "",
        "## Columns",
        "",
        "| column | type | meaning |",
        "| --- | --- | --- |",
        *(f"| `{c.name}` | {feature_label(c)} | {c.description} |" for c in columns),
        "",
        "The first twelve columns are KernelBook's; the rest are synth-torch metadata.",
        "",
        "## Usage",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        'pairs = load_dataset("path/or/hub-id", split="train")',
        'print(pairs[0]["triton_code"])',
        "```",
        "",
        "## Generation settings",
        "",
        "Configuration of the synth-torch run that produced the programs:",
        "",
        "```json",
        json.dumps(run_config, indent=2, sort_keys=True),
        "```",
        "",
    ]
    return "\n".join(lines)


def export_hf(
    pairs_dir: str | Path,
    out: str | Path,
    rows_per_shard: int = DEFAULT_ROWS_PER_SHARD,
    license_id: str = "apache-2.0",
    pretty_name: str = "synth-torch PyTorch-Triton pairs",
) -> HfExport:
    """Write the Hub layout for PAIRS_DIR into `out` (old shards there are replaced)."""
    rows = read_pairs(pairs_dir)
    meta = read_meta(pairs_dir)
    table = rows_to_table(rows)
    out = Path(out)
    data_dir = out / DATA_DIR
    data_dir.mkdir(parents=True, exist_ok=True)
    for old in data_dir.glob("train-*.parquet"):
        old.unlink()
    n_shards = max(1, math.ceil(len(rows) / rows_per_shard))
    shards: list[Path] = []
    for index in range(n_shards):
        shard = data_dir / f"train-{index:05d}-of-{n_shards:05d}.parquet"
        pq.write_table(table.slice(index * rows_per_shard, rows_per_shard), shard)
        shards.append(shard)
    download_size = sum(s.stat().st_size for s in shards)
    card = out / CARD_FILE
    columns = columns_for(rows)  # tuned-pair columns (kernel-search tune-pairs) when the rows carry them
    text = (
        "---\n"
        + _card_yaml(len(rows), table.nbytes, download_size, license_id, pretty_name, columns)
        + "---\n\n"
    )
    card.write_text(text + _card_body(pretty_name, len(rows), meta, columns), encoding="utf-8")
    return HfExport(rows=len(rows), shards=shards, card=card)


def hub_token() -> str:
    token = os.environ.get("HF_TOKEN")
    if not token:
        raise HubTokenMissingError(
            "--push-to-hub needs a Hugging Face write token in the HF_TOKEN environment variable "
            "(create one at https://huggingface.co/settings/tokens)"
        )
    return token


def push_to_hub(hf_dir: str | Path, repo_id: str, private: bool = False, token: str | None = None) -> str:
    """Create (if needed) the dataset repo and upload HF_DIR; returns the repo URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token or hub_token())
    url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    api.upload_folder(
        folder_path=str(hf_dir), repo_id=repo_id, repo_type="dataset", commit_message="synth-torch export-hf"
    )
    return str(url)
