"""Run orchestration: the generation pipeline, the run directory's ledgers, stats, progress and run.json."""
