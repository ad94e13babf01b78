"""The pairs table: KernelBook's columns first (same names and meaning), then ours.

One list of columns drives pairs.jsonl rows, the parquet schema and the dataset card's `features`, so the
three never drift apart.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from synth_modules.export.programs import ProgramRecord
from synth_modules.program import declared_dtype


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    description: str


KERNELBOOK_COLUMNS: tuple[Column, ...] = (
    Column("uuid", pa.int64(), "stable integer id (from the program id)"),
    Column("entry_point", pa.string(), "class name of the PyTorch module"),
    Column("original_triton_code", pa.string(), "Inductor's output code exactly as captured"),
    Column("python_code", pa.string(), "the PyTorch program (module, get_inputs, get_init_inputs)"),
    Column("triton_code", pa.string(), "cleaned Triton kernels + call() + <entry_point>New(nn.Module)"),
    Column("repo_name", pa.string(), "source repository (null for synthetic programs)"),
    Column("module_name", pa.string(), "module class name in its source"),
    Column("synthetic", pa.bool_(), "true when the program was generated, not crawled"),
    Column("licenses", pa.list_(pa.string()), "licenses of the source repository"),
    Column("stars", pa.int64(), "stars of the source repository (null for synthetic programs)"),
    Column("sha", pa.string(), "commit of the source repository"),
    Column("repo_link", pa.string(), "URL of the source repository"),
)
OWN_COLUMNS: tuple[Column, ...] = (
    Column("id", pa.string(), "program id in the run directory's manifest"),
    Column("ops", pa.list_(pa.string()), "operators the program uses (final pattern)"),
    Column(
        "dtype",
        pa.string(),
        "precision the program states and both sides compute in (float32, bfloat16, float16)",
    ),
    Column("kernel_count", pa.int32(), "number of Triton kernels in triton_code"),
    Column("torch_version", pa.string(), "torch that generated the kernels"),
    Column("triton_version", pa.string(), "triton that compiled them"),
    Column("gpu_name", pa.string(), "GPU the pair was captured and verified on"),
    Column(
        "max_abs_error",
        pa.float64(),
        "largest absolute PyTorch-vs-Triton difference on the verification inputs",
    ),
    Column("max_rel_error", pa.float64(), "largest relative error over the verification inputs"),
    Column(
        "capture_info", pa.string(), "JSON: call() argument order, output mapping, launch configs, tolerances"
    ),
)
COLUMNS: tuple[Column, ...] = KERNELBOOK_COLUMNS + OWN_COLUMNS
COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)
PAIR_SCHEMA = pa.schema([pa.field(c.name, c.type) for c in COLUMNS])
# Added by `kernel-search tune-pairs` (a pairs file has all of them or none); null where no variant was measured.
TUNED_COLUMNS: tuple[Column, ...] = (
    Column("tuned_triton_code", pa.string(), "triton_code with the fastest verified launch configuration"),
    Column("tuned_launch_config", pa.string(), "JSON: that configuration (<kernel>.XBLOCK, .num_warps, ...)"),
    Column("tuned_runtime_us", pa.float64(), "median runtime of tuned_triton_code (microseconds, GPU)"),
    Column("default_runtime_us", pa.float64(), "median runtime of triton_code as exported, same run"),
    Column(
        "tuned_speedup_vs_default",
        pa.float64(),
        "default_runtime_us / tuned_runtime_us (1.0: Inductor's pick)",
    ),
)


def columns_for(rows: list[dict[str, Any]]) -> tuple[Column, ...]:
    """The table's columns: the pair columns, plus the tuned ones when the rows carry them."""
    return COLUMNS + TUNED_COLUMNS if rows and TUNED_COLUMNS[0].name in rows[0] else COLUMNS


# Provenance columns a crawled program's manifest line may carry (github_index); synthetic programs have none.
_PROVENANCE = ("repo_name", "module_name", "licenses", "stars", "sha", "repo_link")


def stable_uuid(program_id: str) -> int:
    """A 60-bit integer from the program id: stable across exports, fits int64 like KernelBook's uuid."""
    return int(hashlib.sha256(program_id.encode()).hexdigest()[:15], 16)


def pair_row(program: ProgramRecord, result: dict[str, Any]) -> dict[str, Any]:
    """One pairs.jsonl row from a program and its worker result (every column, in table order)."""
    manifest = program.manifest
    env = result.get("env", {})
    synthetic = bool(manifest.get("synthetic", "repo_name" not in manifest))
    row: dict[str, Any] = {
        "uuid": stable_uuid(program.id),
        "entry_point": program.entry_point,
        "original_triton_code": result["original_triton_code"],
        "python_code": program.source,
        "triton_code": result["triton_code"],
        "repo_name": None,
        "module_name": program.entry_point,
        "synthetic": synthetic,
        "licenses": [],
        "stars": None,
        "sha": None,
        "repo_link": None,
        "id": program.id,
        "ops": list(program.ops),
        "dtype": declared_dtype(program.source),
        "kernel_count": int(result["kernel_count"]),
        "torch_version": env.get("torch_version"),
        "triton_version": env.get("triton_version"),
        "gpu_name": env.get("gpu_name"),
        "max_abs_error": float(result["max_abs_error"]),
        "max_rel_error": float(result["max_rel_error"]),
        "capture_info": json.dumps(result["capture_info"], sort_keys=True),
    }
    row.update({key: manifest[key] for key in _PROVENANCE if manifest.get(key) is not None})
    return {name: row[name] for name in COLUMN_NAMES}


def check_row(row: dict[str, Any], names: tuple[str, ...] = COLUMN_NAMES) -> None:
    """Raise ValueError if `row` lacks a column or has one the table does not know."""
    missing = [n for n in names if n not in row]
    extra = [n for n in row if n not in names]
    if missing or extra:
        raise ValueError(f"pair row columns: missing {missing}, unexpected {extra}")


def rows_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    columns = columns_for(rows)
    for row in rows:
        row.setdefault(
            "dtype", declared_dtype(row.get("python_code") or "")
        )  # rows exported before the column
        check_row(row, tuple(c.name for c in columns))
    return pa.Table.from_pylist(rows, schema=pa.schema([pa.field(c.name, c.type) for c in columns]))


def _feature(data_type: pa.DataType) -> dict[str, Any]:
    if pa.types.is_list(data_type):
        return {"sequence": _feature(data_type.value_type)["dtype"]}
    names = {pa.string(): "string", pa.int64(): "int64", pa.int32(): "int32", pa.bool_(): "bool"}
    names[pa.float64()] = "float64"
    return {"dtype": names[data_type]}


def feature_label(column: Column) -> str:
    """A column's type as the Hub writes it: `string`, `int64`, `sequence of string`, ..."""
    feature = _feature(column.type)
    return feature.get("dtype") or f"sequence of {feature['sequence']}"


def card_features(columns: tuple[Column, ...] = COLUMNS) -> list[dict[str, Any]]:
    """`dataset_info.features` for the dataset card, in the Hub's YAML form."""
    return [{"name": c.name, **_feature(c.type)} for c in columns]
