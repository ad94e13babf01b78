"""`synth-torch`: one console command for generating, validating, reporting and exporting.

synth-torch generate .parallel num_total_samples=1000     (or: synth-torch .parallel ...)
synth-torch validate PATH... [--json]
synth-torch report OUTPUT_DIR
synth-torch export-pairs | export-hf | export-sft | export-seeds ...
"""

from __future__ import annotations

import argparse
import sys

from synth_modules.config import ConfigError

_GENERATE_WORDS = {"generate", "gen"}


def generate_main(argv: list[str]) -> int:
    """Popcorn-style generation entry (also used by scripts/generate_synth_torch.py)."""
    from synth_modules.cli.args import config_from_argv, usage

    if any(arg in {"-h", "--help", "help"} for arg in argv):
        print(usage())
        return 0
    from synth_modules.sandbox.isolation import UNSAFE_FLAG, SandboxUnavailableError, require_landlock

    if UNSAFE_FLAG in argv:  # the flag spelling of allow_unsandboxed=true
        argv = [a for a in argv if a != UNSAFE_FLAG] + ["allow_unsandboxed=true"]
    try:
        config = config_from_argv(argv)
        require_landlock(config.allow_unsandboxed)  # refuse before any work
        from synth_modules.run.pipeline import run_generation

        summary = run_generation(config)
    except (ConfigError, SandboxUnavailableError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume", file=sys.stderr)
        return 130
    return 0 if summary.accepted or summary.samples == 0 else 1


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synth-torch", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser(
        "generate", help="generate programs (popcorn syntax: .preset key=value ...)", add_help=False
    )

    from synth_modules.cli.validate import add_arguments as add_validate_arguments

    add_validate_arguments(
        sub.add_parser("validate", help="validate program files or folders in the sandbox")
    )

    report = sub.add_parser("report", help="write report.md (+ plots) for a run directory")
    report.add_argument("output_dir")

    try:
        from synth_modules.export.cli import add_export_subcommands
    except ImportError:
        add_export_subcommands = None
    if add_export_subcommands is not None:
        add_export_subcommands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and (argv[0] in _GENERATE_WORDS or argv[0].startswith(".") or "=" in argv[0]):
        return generate_main(argv[1:] if argv[0] in _GENERATE_WORDS else argv)
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command == "validate":
        from synth_modules.cli.validate import run_validate_args

        return run_validate_args(args)
    if args.command == "report":
        from synth_modules.report import run_report

        return run_report(args.output_dir)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.error(f"unknown command {args.command}")
    return int(handler(args))
