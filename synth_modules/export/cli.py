"""Command-line entry points of the exporters (wired into `synth-torch` by `add_export_subcommands`).

synth-torch export-pairs OUTPUT_DIR --out PAIRS_DIR [--device cuda] [--jobs N] [--limit N] [--timeout-s S]
                         [--rtol R] [--scale-atol A] [--force]
synth-torch export-hf PAIRS_DIR --out HF_DIR [--push-to-hub REPO] [--private]
synth-torch export-sft PAIRS_DIR --out FILE.jsonl
synth-torch export-seeds OUTPUT_DIR --out SEEDS_DIR

Each run_* function returns the process exit code and prints one summary line (errors go to stderr).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from synth_modules.export.codefmt import RuffMissingError
from synth_modules.sandbox.isolation import UNSAFE_FLAG, SandboxUnavailableError

_UNSAFE_HELP = (
    "run untrusted programs even where Landlock is unavailable (prints a warning; see docs/sandbox.md)"
)


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def run_export_pairs(
    output_dir: str | Path,
    out: str | Path,
    device: str = "cuda",
    jobs: int | None = None,
    limit: int | None = None,
    timeout_s: float | None = None,
    fresh_interpreter: bool = False,
    rtol: float | None = None,
    scale_atol: float | None = None,
    progress: bool = True,
    force: bool = False,
    allow_unsandboxed: bool = False,
) -> int:
    """Capture and verify pairs; exit 2 (with the reason) before any work when no CUDA device or no sandbox
    (Landlock) is there, or PAIRS_DIR was verified with other settings (or is in use by another export)."""
    import torch

    from synth_modules.config import ConfigError
    from synth_modules.export.pairing import CheckSettings
    from synth_modules.export.pairs import (
        DEFAULT_TIMEOUT_S,
        CudaRequiredError,
        ExportSettings,
        export_pairs,
        format_rejected,
    )
    from synth_modules.sandbox.compare import Tolerance, tolerance

    check = CheckSettings()
    if rtol is not None or scale_atol is not None:  # one override for every floating dtype
        table = tolerance(torch.float32)
        check.tolerance = Tolerance(
            table.rtol if rtol is None else rtol, table.scale_atol if scale_atol is None else scale_atol
        )
    settings = ExportSettings(
        device=device,
        jobs=jobs,
        limit=limit,
        timeout_s=DEFAULT_TIMEOUT_S if timeout_s is None else timeout_s,
        fresh_interpreter=fresh_interpreter,
        check=check,
        progress=progress,
        force=force,
        allow_unsandboxed=allow_unsandboxed,
    )
    try:
        summary = export_pairs(output_dir, out, settings)
    except (
        CudaRequiredError,
        RuffMissingError,
        FileNotFoundError,
        ConfigError,
        SandboxUnavailableError,
    ) as error:
        return _error(str(error))
    print(
        f"export-pairs: {summary.verified}/{summary.attempted} verified in {summary.seconds:.0f} s "
        f"({summary.pairs_per_minute:.1f} pairs/min); rejected: {format_rejected(summary.rejected)}; "
        f"{summary.total_pairs} pairs in {out}"
    )
    return 0 if summary.verified or summary.attempted == 0 else 1


def run_export_hf(
    pairs_dir: str | Path,
    out: str | Path,
    push_to_hub: str | None = None,
    private: bool = False,
    license_id: str = "apache-2.0",
) -> int:
    """Write the Hub layout; with `push_to_hub`, upload it (token from HF_TOKEN, checked before any work)."""
    from synth_modules.export.hf import HubTokenMissingError, export_hf, hub_token
    from synth_modules.export.hf import push_to_hub as upload

    try:
        token = hub_token() if push_to_hub else None
        result = export_hf(pairs_dir, out, license_id=license_id)
    except (HubTokenMissingError, FileNotFoundError) as error:
        return _error(str(error))
    print(f"export-hf: {result.rows} rows in {len(result.shards)} shard(s) + {result.card.name} in {out}")
    if push_to_hub:
        url = upload(out, push_to_hub, private=private, token=token)
        print(f"export-hf: pushed to {url}")
    return 0


def run_export_sft(pairs_dir: str | Path, out: str | Path) -> int:
    from synth_modules.export.sft import export_sft

    try:
        count = export_sft(pairs_dir, out)
    except FileNotFoundError as error:
        return _error(str(error))
    print(f"export-sft: {count} records in {out}")
    return 0


def run_export_seeds(
    output_dir: str | Path,
    out: str | Path,
    profile: str = "cpu",
    device: str | None = None,
    jobs: int = 1,
    timeout_s: float = 300.0,
    limit: int | None = None,
    allow_unsandboxed: bool = False,
) -> int:
    from synth_modules.export.pairs import CudaRequiredError
    from synth_modules.export.seeds import export_seeds
    from synth_modules.export.seeds_measured import export_measured_seeds

    if profile != "cpu" and device is None:
        return _error(f"--profile {profile} measures the tasks: give --device cuda (or cpu for a dry run)")
    try:
        if device is None:
            result = export_seeds(output_dir, out, allow_unsandboxed=allow_unsandboxed)
        else:
            result = export_measured_seeds(output_dir, out, profile, device, jobs, timeout_s, limit)
    except (FileNotFoundError, CudaRequiredError, SandboxUnavailableError) as error:
        return _error(str(error))
    print(f"export-seeds: {len(result.tasks)} tasks in {out} ({len(result.skipped)} skipped, see index.json)")
    return 0 if result.tasks or not result.skipped else 1


def add_export_subcommands(subparsers: argparse._SubParsersAction) -> None:
    """Register export-pairs/-hf/-sft/-seeds; each parser's `handler(args)` returns the exit code."""
    pairs = subparsers.add_parser("export-pairs", help="capture + verify PyTorch->Triton pairs on a CUDA GPU")
    pairs.add_argument("output_dir", help="run directory (program files + manifest.jsonl)")
    pairs.add_argument("--out", required=True, help="PAIRS_DIR to write (resumes if it has ledgers)")
    pairs.add_argument("--device", default="cuda", help="cuda (all visible GPUs) or cuda:N")
    pairs.add_argument("--jobs", type=int, default=None, help="worker processes (default: one per GPU)")
    pairs.add_argument("--limit", type=int, default=None, help="export at most this many programs")
    pairs.add_argument("--timeout-s", type=float, default=None, help="per-program limit (default 180)")
    pairs.add_argument(
        "--rtol", type=float, default=None, help="override the per-dtype table: tolerance relative to |ref|"
    )
    pairs.add_argument(
        "--scale-atol",
        "--atol",
        dest="scale_atol",
        type=float,
        default=None,
        help="override the per-dtype table: absolute tolerance as a fraction of each output's max |ref|",
    )
    pairs.add_argument(
        "--force", action="store_true", help="resume PAIRS_DIR even if it was verified with other settings"
    )
    pairs.add_argument(
        "--fresh-interpreter",
        action="store_true",
        help="a new worker process per program (slow; comparison only)",
    )
    pairs.add_argument("--no-progress", action="store_true")
    pairs.add_argument(UNSAFE_FLAG, dest="allow_unsandboxed", action="store_true", help=_UNSAFE_HELP)
    pairs.set_defaults(
        handler=lambda a: run_export_pairs(
            a.output_dir,
            a.out,
            device=a.device,
            jobs=a.jobs,
            limit=a.limit,
            timeout_s=a.timeout_s,
            fresh_interpreter=a.fresh_interpreter,
            rtol=a.rtol,
            scale_atol=a.scale_atol,
            progress=not a.no_progress,
            force=a.force,
            allow_unsandboxed=a.allow_unsandboxed,
        )
    )

    hf = subparsers.add_parser("export-hf", help="pairs -> Hugging Face dataset folder (parquet + card)")
    hf.add_argument("pairs_dir")
    hf.add_argument("--out", required=True, help="HF_DIR to write")
    hf.add_argument("--push-to-hub", metavar="REPO", default=None, help="also upload to this dataset repo")
    hf.add_argument("--private", action="store_true", help="create the Hub repo as private")
    hf.add_argument("--license", default="apache-2.0", help="license id for the dataset card")
    hf.set_defaults(
        handler=lambda a: run_export_hf(
            a.pairs_dir, a.out, push_to_hub=a.push_to_hub, private=a.private, license_id=a.license
        )
    )

    sft = subparsers.add_parser("export-sft", help="pairs -> instruction/input/output JSONL")
    sft.add_argument("pairs_dir")
    sft.add_argument("--out", required=True, help="JSONL file to write")
    sft.set_defaults(handler=lambda a: run_export_sft(a.pairs_dir, a.out))

    seeds = subparsers.add_parser("export-seeds", help="programs -> KernelBench-format task files")
    seeds.add_argument("output_dir", help="run directory (program files + manifest.jsonl)")
    seeds.add_argument("--out", required=True, help="SEEDS_DIR to write")
    seeds.add_argument("--profile", choices=("cpu", "gpu"), default="cpu", help="size profile of the tasks")
    seeds.add_argument("--device", default=None, help="measure on this device (cuda, cuda:N; cpu: a dry run)")
    seeds.add_argument("--jobs", type=int, default=1, help="worker processes (timing is serialized)")
    seeds.add_argument("--timeout-s", type=float, default=300.0, help="per-program limit")
    seeds.add_argument("--limit", type=int, default=None, help="at most N programs")
    seeds.add_argument(UNSAFE_FLAG, dest="allow_unsandboxed", action="store_true", help=_UNSAFE_HELP)
    seeds.set_defaults(
        handler=lambda a: run_export_seeds(
            a.output_dir, a.out, a.profile, a.device, a.jobs, a.timeout_s, a.limit, a.allow_unsandboxed
        )
    )


def main(argv: list[str] | None = None) -> int:
    """`python -m synth_modules.export.cli export-pairs ...` (the same subcommands as synth-torch)."""
    parser = argparse.ArgumentParser(prog="synth-torch-export")
    add_export_subcommands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = [
    "add_export_subcommands",
    "main",
    "run_export_hf",
    "run_export_pairs",
    "run_export_seeds",
    "run_export_sft",
]
