"""Optuna's TPE sampler as a strategy (optional extra: `pip install 'synth-torch[tune]'`).

Optuna only proposes here: each parameter is a categorical over its value indices, trials are asked and told
through an in-memory study, and the Tuner keeps the record as for every other strategy.
"""

from __future__ import annotations

import math

from kernel_search.search_space import Config, config_key
from kernel_search.strategies.base import SearchStrategy


class OptunaTPE(SearchStrategy):
    name = "optuna"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        try:
            import optuna
        except ImportError:
            raise ValueError(
                "strategy 'optuna' needs the optuna package: pip install 'synth-torch[tune]'"
            ) from None
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = optuna.samplers.TPESampler(
            seed=self.rng.randrange(2**31), n_startup_trials=self.settings.n_startup_trials
        )
        self._optuna = optuna
        self.study = optuna.create_study(direction="maximize", sampler=sampler)
        self.distributions = {
            name: optuna.distributions.CategoricalDistribution(list(range(len(values))))
            for name, values in self.space.parameters.items()
        }
        self.pending: dict[str, list] = {}

    def propose(self) -> list[Config]:
        batch: list[Config] = []
        for _ in range(max(1, self.settings.batch_size)):
            trial = self.study.ask(self.distributions)
            config = self.space.from_indices([trial.params[name] for name in self.space.names])
            self.pending.setdefault(config_key(config), []).append(trial)
            batch.append(config)
        return batch

    def observe(self, config: Config, score: float) -> None:
        super().observe(config, score)
        for trial in self.pending.pop(config_key(config), []):
            if math.isfinite(score):
                self.study.tell(trial, score)
            else:
                self.study.tell(trial, state=self._optuna.trial.TrialState.FAIL)
