"""Paritybench-style indexing of real GitHub PyTorch code: crawl, extract, deduce, evaluate, report.

Entry point: `python -m github_index --generate-all / --evaluate-all ...` (see cli.py).
"""
