"""github_index end to end: --generate-all then --evaluate-all in the real sandbox, report and manifest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from github_index.cli import main
from github_index.sources import RepoInfo, write_repos_json
from synth_modules.run.store import read_jsonl

TOY = Path(__file__).parent / "fixtures" / "github_repos" / "toy_models"


def test_rejects_unknown_compile_mode(tmp_path, capsys):
    code = main(["--evaluate-all", "--compile-mode", "aot_inductor", "--run-dir", str(tmp_path / "r")])
    assert code == 2
    assert "unsupported --compile-mode" in capsys.readouterr().err


@pytest.mark.slow
def test_generate_evaluate_report(tmp_path):
    download = tmp_path / "download"
    shutil.copytree(TOY, download / "someone__toy_models")
    write_repos_json(
        download / "repos.json",
        [RepoInfo("someone/toy_models", "https://github.com/someone/toy_models", "c0ffee", 7, ["MIT"])],
    )
    run, data = tmp_path / "run", tmp_path / "data"
    common = ["--download-dir", str(download), "--run-dir", str(run), "--quiet"]
    assert main(["--generate-all", *common, "--jobs", "2"]) == 0
    index = list(read_jsonl(run / "index.jsonl"))
    assert len(index) == 9
    assert {r["class_name"] for r in index if r.get("deduced")} >= {
        "Block",
        "Mixer",
        "Attention",
        "ConfigHead",
    }
    timm = next(r for r in index if r["class_name"] == "UsesTimm")
    assert not timm.get("deduced") and timm["category"] == "import_error"

    flags = ["--compile-mode", "dynamo", "--backend", "inductor", "--device", "cpu", "--jobs", "1"]
    selection = ["--filter", "layers.py:Mixer|other/attention.py"]
    assert main(["--evaluate-all", *common, *flags, *selection, "--synthetic_data_dir", str(data)]) == 0
    manifest = list(read_jsonl(data / "manifest.jsonl"))
    assert {m["module_name"] for m in manifest} == {"Mixer", "Attention"}
    for row in manifest:
        assert row["repo_name"] == "someone/toy_models" and row["sha"] == "c0ffee" and row["stars"] == 7
        assert (
            row["licenses"] == ["MIT"]
            and row["repo_link"] == "https://github.com/someone/toy_models/tree/c0ffee"
        )
        assert row["checks"]["fp64_reference"] == "ok"
        source = (data / row["file"]).read_text()
        assert f"class {row['entry_point']}(" in source and "def get_init_inputs" in source

    report = json.loads((run / "report.json").read_text())
    assert report["modules_found"] == 9 and report["evaluated"] == 2 and report["matched"] == 2
    assert report["deduced"] >= 7 and report["eager_ok"] == report["compiled_ok"] == 2
    assert any(g["category"] == "import_error" for g in report["errors"])
    assert "| matched | 2 |" in (run / "report.md").read_text()

    # Resuming evaluates nothing twice.
    assert main(["--evaluate-all", *common, *flags, *selection, "--synthetic-data-dir", str(data)]) == 0
    assert len(list(read_jsonl(run / "evaluated.jsonl"))) == 2
