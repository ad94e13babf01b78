"""The research pipeline (PyTorch-Scientist style): literature discovery, ideas with a novelty check, config
search, experiments on the evaluator and a summary, into one run directory. See pipeline.py."""
