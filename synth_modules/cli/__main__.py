"""`python -m synth_modules.cli ...` runs the `synth-torch` command."""

from synth_modules.cli.main import main

raise SystemExit(main())
