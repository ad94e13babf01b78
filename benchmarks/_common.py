"""What the export-pairs benchmarks share (they run as scripts and put the repository root on sys.path)."""

from __future__ import annotations

import argparse
from pathlib import Path


def run_dir_parser(doc: str | None) -> argparse.ArgumentParser:
    """RUN_DIR and --out WORK_DIR, described by the script's docstring: what every export benchmark takes."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    return parser
