"""The dataset formats built from pairs: Hugging Face folder (round trip through `datasets`), dataset card,
SFT JSONL, KernelBench-format seed tasks, and the export-hf/-sft/-seeds command plumbing."""

from __future__ import annotations

import argparse
import ast
import json
import re
from pathlib import Path

import pytest
import torch
import yaml

from synth_modules.export.cli import add_export_subcommands, run_export_hf, run_export_seeds, run_export_sft
from synth_modules.export.hf import export_hf
from synth_modules.export.programs import init_inputs, load_programs
from synth_modules.export.schema import COLUMN_NAMES, KERNELBOOK_COLUMNS
from synth_modules.export.seeds import SeedError, export_seeds, flat_init_inputs
from synth_modules.export.sft import export_sft
from synth_modules.run.store import read_jsonl
from synth_modules.sandbox.loading import import_file

ROOT = Path(__file__).resolve().parents[1]
PAIRS = ROOT / "tests" / "fixtures" / "pairs"
PROGRAMS = ROOT / "tests" / "fixtures" / "programs"
ROWS = list(read_jsonl(PAIRS / "pairs.jsonl"))


def _front_matter(card: Path) -> dict:
    text = card.read_text(encoding="utf-8")
    match = re.match(r"^---\n(.*?)\n---\n", text, re.DOTALL)
    assert match, "card must start with YAML front matter"
    return yaml.safe_load(match.group(1))


def _load_offline(path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch):
    import datasets

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    return datasets.load_dataset(str(path), split="train", cache_dir=str(cache))


def test_hf_folder_round_trips_through_datasets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = export_hf(PAIRS, tmp_path / "hf", rows_per_shard=4)
    names = sorted(p.name for p in (tmp_path / "hf" / "data").iterdir())
    assert names == [f"train-0000{i}-of-00003.parquet" for i in range(3)] and result.rows == len(ROWS)
    loaded = _load_offline(tmp_path / "hf", tmp_path / "cache", monkeypatch)
    assert loaded.column_names == list(COLUMN_NAMES)
    assert loaded.column_names[: len(KERNELBOOK_COLUMNS)] == [c.name for c in KERNELBOOK_COLUMNS]
    assert len(loaded) == len(ROWS)
    by_id = {row["id"]: row for row in ROWS}
    for record in loaded:
        expected = {"dtype": "float32", **by_id[record["id"]]}  # fixture rows predate the dtype column
        assert record == {name: expected[name] for name in COLUMN_NAMES}
    assert loaded.features["licenses"].feature.dtype == "string" and loaded.features["uuid"].dtype == "int64"


def test_dataset_card_declares_config_features_and_settings(tmp_path: Path) -> None:
    export_hf(PAIRS, tmp_path / "hf", license_id="cc-by-4.0")
    card = tmp_path / "hf" / "README.md"
    header = _front_matter(card)
    assert header["license"] == "cc-by-4.0"
    assert header["configs"] == [
        {"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}
    ]
    features = header["dataset_info"]["features"]
    assert [f["name"] for f in features] == list(COLUMN_NAMES)
    assert {"name": "licenses", "sequence": "string"} in features and {
        "name": "uuid",
        "dtype": "int64",
    } in features
    assert header["dataset_info"]["splits"][0]["num_examples"] == len(ROWS)
    assert (
        header["dataset_info"]["download_size"]
        == (tmp_path / "hf" / "data" / "train-00000-of-00001.parquet").stat().st_size
    )
    body = card.read_text(encoding="utf-8")
    meta = json.loads((PAIRS / "meta.json").read_text())
    assert f"rtol {meta['settings']['rtol']}" in body and meta["versions"]["gpu_name"] in body
    assert '"model_name": "handwritten"' in body  # the source run's generation settings
    assert "graph_break 1" in body and "unsupported 1" in body


def test_sft_lines_parse_and_hold_the_pair(tmp_path: Path) -> None:
    out = tmp_path / "sft.jsonl"
    assert export_sft(PAIRS, out) == len(ROWS)
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(ROWS)
    for line, row in zip(lines, ROWS, strict=True):
        record = json.loads(line)
        assert set(record) == {"id", "instruction", "input", "output"} and record["id"] == row["id"]
        assert f"{row['entry_point']}New" in record["instruction"] and "{" not in record["instruction"]
        code_in = re.fullmatch(r"```python\n(.*)\n```", record["input"], re.DOTALL)
        code_out = re.fullmatch(r"```python\n(.*)\n```", record["output"], re.DOTALL)
        assert code_in and code_out
        assert (
            code_in.group(1) == row["python_code"].strip() and code_out.group(1) == row["triton_code"].strip()
        )
        ast.parse(code_out.group(1))


def test_seed_tasks_import_and_match_the_programs(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    result = export_seeds(PROGRAMS, tmp_path)
    programs = load_programs(PROGRAMS)
    index = json.loads((tmp_path / "index.json").read_text())
    assert index["count"] == len(programs) == len(result.tasks) and index["skipped"] == []
    for task, program in zip(index["tasks"], programs, strict=True):
        assert task["file"] == f"{task['index']}_{program.entry_point}.py"
        seed = import_file(tmp_path / task["file"])
        flat = seed.get_init_inputs()
        assert isinstance(flat, list) and not any(isinstance(v, dict) for v in flat)
        original = import_file(program.path)
        args, kwargs = init_inputs(original)
        torch.manual_seed(0)
        reference = getattr(original, program.entry_point)(*args, **kwargs).eval()
        torch.manual_seed(0)
        model = seed.Model(*flat).eval()  # the KernelBench harness's call
        assert model.state_dict().keys() == reference.state_dict().keys()
        torch.manual_seed(1)
        inputs = seed.get_inputs()
        with torch.no_grad():
            got, want = model(*inputs), reference(*inputs)
        got = got if isinstance(got, tuple) else (got,)
        want = want if isinstance(want, tuple) else (want,)
        assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))


def test_flat_init_inputs_binds_kwargs_in_signature_order() -> None:
    class Layer(torch.nn.Module):
        def __init__(self, a, b=2, c=3, *, d=4):
            super().__init__()

    assert flat_init_inputs(Layer, [1], {"c": 5}) == [1, 2, 5]
    assert flat_init_inputs(Layer, [], {"a": 7}) == [7]
    with pytest.raises(SeedError, match="positionally"):
        flat_init_inputs(Layer, [1], {"d": 9})
    with pytest.raises(SeedError, match="does not fit"):
        flat_init_inputs(Layer, [1], {"zz": 0})


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_export_subcommands(parser.add_subparsers(dest="command", required=True))
    return parser


def test_push_to_hub_without_token_fails_before_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    args = _parser().parse_args(
        ["export-hf", str(PAIRS), "--out", str(tmp_path / "hf"), "--push-to-hub", "org/pairs", "--private"]
    )
    assert (args.pairs_dir, args.push_to_hub, args.private) == (str(PAIRS), "org/pairs", True)
    assert args.handler(args) == 2
    assert "HF_TOKEN" in capsys.readouterr().err
    assert not (tmp_path / "hf").exists()


def test_export_commands_write_their_outputs(tmp_path: Path) -> None:
    assert run_export_hf(PAIRS, tmp_path / "hf") == 0 and (tmp_path / "hf" / "README.md").exists()
    assert run_export_sft(PAIRS, tmp_path / "sft.jsonl") == 0
    assert run_export_seeds(PROGRAMS, tmp_path / "seeds") == 0
    args = _parser().parse_args(["export-sft", str(PAIRS), "--out", str(tmp_path / "again.jsonl")])
    assert args.handler(args) == 0
    assert (tmp_path / "again.jsonl").read_text() == (tmp_path / "sft.jsonl").read_text()
    assert run_export_sft(tmp_path / "missing", tmp_path / "x.jsonl") == 2
