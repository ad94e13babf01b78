"""The generator's command line: `synth-torch` (generate, validate, report, exports) and its popcorn parser."""

from synth_modules.cli.main import generate_main, main

__all__ = ["generate_main", "main"]
