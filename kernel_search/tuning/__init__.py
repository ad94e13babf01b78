"""Config search: the `Tuner` over a config space, its settings, the objective that measures one config, the
drivers that run every target times every strategy into a run directory, and their command line and report.

Strategies (kernel_search/strategies) and spaces (kernel_search/spaces) plug into it by name.
"""
