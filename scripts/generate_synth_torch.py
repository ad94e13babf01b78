#!/usr/bin/env python3
"""Popcorn-compatible entry point: `python scripts/generate_synth_torch.py .parallel num_total_samples=1000`.

Works from any working directory, installed or straight from a checkout.
"""

import sys
from pathlib import Path

try:
    import synth_modules  # noqa: F401
except ImportError:  # running from a checkout without `pip install`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from synth_modules.cli import generate_main

if __name__ == "__main__":
    raise SystemExit(generate_main(sys.argv[1:]))
