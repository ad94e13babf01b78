"""export-pairs on a GPU with hostile programs and fake secrets: nothing leaks, normal programs still pair.

    python benchmarks/sandbox_export.py RUN_DIR --out WORK_DIR [--jobs 14] [--json result.json]

1. Stages the corpus's CUDA-armed programs (harmless where CUDA is hidden, hostile where it is visible) plus a
   few always-armed and normal ones into WORK_DIR/hostile (class renamed to the file stem, as a folder of
   programs needs), sets fake secrets in the environment (HF_TOKEN, OPENAI_API_KEY, ...), runs export-pairs
   on them and checks: no file written outside (markers, the run folder, site-packages, the shared header
   dir, HOME), no secret in any output or log, no `sleep 4242` left, the normal programs became pairs.
2. Runs export-pairs on RUN_DIR (a generated run) with the same secrets: pairs/min, worker seconds per program
   and how many programs the integrity check rejected (0 expected for generated programs).
Without Landlock the sandbox refuses; the refusal is recorded and the export repeated with the unsafe flag.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import sys
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import psutil
from sandbox_corpus import CORPUS_DIR, ESCAPE_MARKER_GLOB, SLEEPER_ARG, load_corpus

import synth_modules.export.pairs as pairs_module
from benchmarks._common import run_dir_parser
from synth_modules.export.gpu_workers import WorkerPool
from synth_modules.export.pairs import ExportSettings, export_pairs
from synth_modules.run.store import read_jsonl
from synth_modules.sandbox import landlock
from synth_modules.sandbox.isolation import SandboxUnavailableError

SECRET = f"sk-sandbox-test-{uuid.uuid4().hex}"
SECRET_NAMES = ("HF_TOKEN", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "AWS_SECRET_ACCESS_KEY",
                "MY_SERVICE_PW", "DATABASE_URL")  # fmt: skip
ALSO = ("env_secret", "file_write", "good_linear_softmax", "good_conv_gelu")


POOL_STATS: list[Any] = []


class _RecordingPool(WorkerPool):
    """export-pairs' own pool, remembered so the report can show its isolation layers and restarts."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        POOL_STATS.append(self.stats)


pairs_module.WorkerPool = _RecordingPool  # type: ignore[misc]


def stage(folder: Path) -> list[str]:
    """Copy the hostile and normal programs, each class renamed to its file stem (a folder's entry point)."""
    folder.mkdir(parents=True, exist_ok=True)
    names = [p.name for p in load_corpus() if p.armed == "cuda"] + list(ALSO)
    for name in names:
        source = (CORPUS_DIR / f"{name}.py").read_text()
        (folder / f"{name}.py").write_text(re.sub(r"\bclass Model\(", f"class {name}(", source))
    return names


def escapes(hostile: Path, had_manifest: bool = False) -> list[str]:
    """Files the hostile programs try to create outside their scratch directory (none may exist)."""
    site = [p for p in sys.path if p.endswith("site-packages")]
    found = glob.glob(ESCAPE_MARKER_GLOB) + glob.glob(str(hostile / "synth_sandbox_escape_*"))
    found += [p for s in site for p in glob.glob(os.path.join(s, "synth_sandbox_escape_*"))]
    found += glob.glob(f"/tmp/synth-torch-sandbox-{os.geteuid()}/synth_sandbox_escape_*")
    found += glob.glob(os.path.expanduser("~/synth_sandbox_escape_*"))
    if not had_manifest and (hostile / "manifest.jsonl").exists():
        found.append(str(hostile / "manifest.jsonl"))
    return found


def secret_hits(root: Path) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and SECRET.encode() in path.read_bytes():
            hits.append(str(path))
    return hits


def sleepers() -> list[int]:
    return [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if (p.info.get("cmdline") or [])[:2] == ["sleep", SLEEPER_ARG]
    ]


def export(run_dir: Path, out: Path, jobs: int, result: dict[str, Any]) -> dict[str, Any]:
    """export-pairs, fail-closed first; on a kernel without Landlock, again with the unsafe flag."""
    shutil.rmtree(out, ignore_errors=True)
    try:
        summary = export_pairs(run_dir, out, ExportSettings(jobs=jobs, progress=False))
    except SandboxUnavailableError as error:
        result["refused_without_landlock"] = str(error)
        summary = export_pairs(
            run_dir, out, ExportSettings(jobs=jobs, progress=False, allow_unsandboxed=True)
        )
    return {**asdict(summary), "pool": asdict(POOL_STATS[-1]) if POOL_STATS else {}}


def main() -> None:
    parser = run_dir_parser(__doc__)
    parser.add_argument("--jobs", type=int, default=14)
    parser.add_argument("--hostile-jobs", type=int, default=4)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    for name in SECRET_NAMES:
        os.environ[name] = SECRET if name != "DATABASE_URL" else f"postgres://u:{SECRET}@db/x"
    for marker in glob.glob(ESCAPE_MARKER_GLOB):
        os.remove(marker)
    result: dict[str, Any] = {"landlock_abi": landlock.abi_version(), "uid": os.geteuid()}
    hostile = args.out / "hostile"
    names = stage(hostile)
    result["hostile_summary"] = export(hostile, args.out / "hostile_pairs", args.hostile_jobs, result)
    pairs = {r["entry_point"]: r for r in read_jsonl(args.out / "hostile_pairs" / "pairs.jsonl")}
    rejected = {r["entry_point"]: r for r in read_jsonl(args.out / "hostile_pairs" / "rejected.jsonl")}
    result["hostile"] = {
        n: "pair"
        if n in pairs
        else f"{rejected[n]['category']}: {rejected[n]['message'][:300]}"
        if n in rejected
        else "missing"
        for n in names
    }
    result["escaped_files"] = escapes(hostile)
    result["secret_in_outputs"] = secret_hits(args.out / "hostile_pairs")
    result["sleepers_left"] = sleepers()
    result["normal_programs_paired"] = all(n in pairs for n in ALSO if n.startswith("good_"))
    print(json.dumps(result, indent=2), flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    run = export(args.run_dir, args.out / "run_pairs", args.jobs, result)
    run_rejected = list(read_jsonl(args.out / "run_pairs" / "rejected.jsonl"))
    result["run_summary"] = run
    result["run_integrity_rejections"] = [r for r in run_rejected if r["category"] == "unsafe_code"]
    result["run_secret_in_outputs"] = secret_hits(args.out / "run_pairs")
    result["run_escaped_files"] = escapes(args.run_dir, had_manifest=True)
    print(
        json.dumps({k: result[k] for k in ("run_summary", "run_integrity_rejections")}, indent=2), flush=True
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
