"""Monte Carlo tree search over the parameters in order: depth d of the tree fixes parameter d.

Selection follows UCT on rewards in [0, 1] (a score's rank among the successful scores seen before it, so the
objective's scale does not matter; failures reward 0). A node with untried values expands one at random, and
the rest of the path is drawn at random (the rollout), every node kept. A leaf is a full config; seen, pending
or invalid leaves are marked exhausted, and exhaustion propagates up, so the search never proposes a config
twice and ends when the space is spent.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

from kernel_search.strategies.base import SearchStrategy
from kernel_search.tuning.search_space import Config, config_key

_ATTEMPTS_PER_PROPOSAL = 1000


@dataclass
class _Node:
    depth: int
    children: dict[int, _Node] = field(default_factory=dict)  # value index -> child
    visits: int = 0
    reward: float = 0.0
    exhausted: bool = False


class MonteCarloTreeSearch(SearchStrategy):
    name = "mcts"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.root = _Node(depth=0)
        self.paths: dict[str, list[_Node]] = {}
        self._sorted_scores: list[float] = []

    def propose(self) -> list[Config]:
        batch: list[Config] = []
        for _ in range(max(1, self.settings.batch_size)):
            config = self._select_leaf()
            if config is None:
                break
            batch.append(config)
        return batch

    def _select_leaf(self) -> Config | None:
        names = self.space.names
        for _ in range(_ATTEMPTS_PER_PROPOSAL):
            if self.root.exhausted:
                return None
            node, path, indices = self.root, [self.root], []
            while node.depth < len(names):
                index = self._choose_child(node, len(self.space.parameters[names[node.depth]]))
                if index is None:  # every child exhausted: so is this node
                    node.exhausted = True
                    break
                child = node.children.setdefault(index, _Node(depth=node.depth + 1))
                indices.append(index)
                path.append(child)
                node = child
            else:
                config = self.space.from_indices(indices)
                node.exhausted = True  # pending or spent: never chosen again
                self._propagate_exhaustion(path)
                if self.space.is_valid(config) and not self.seen(config):
                    self.paths[config_key(config)] = path
                    return config
        return None

    def _choose_child(self, node: _Node, width: int) -> int | None:
        open_indices = [i for i in range(width) if not (i in node.children and node.children[i].exhausted)]
        if not open_indices:
            return None
        untried = [i for i in open_indices if i not in node.children]
        if untried:
            return self.rng.choice(untried)
        total = math.log(max(1, node.visits))

        def uct(index: int) -> float:
            child = node.children[index]
            mean = child.reward / child.visits if child.visits else 0.5
            return mean + self.settings.exploration * math.sqrt(total / max(1, child.visits))

        best = max(uct(i) for i in open_indices)
        return self.rng.choice([i for i in open_indices if uct(i) == best])

    def _propagate_exhaustion(self, path: list[_Node]) -> None:
        for depth in range(len(path) - 2, -1, -1):
            node = path[depth]
            width = len(self.space.parameters[self.space.names[node.depth]])
            if len(node.children) == width and all(child.exhausted for child in node.children.values()):
                node.exhausted = True
            else:
                break

    def observe(self, config: Config, score: float) -> None:
        super().observe(config, score)
        if math.isfinite(score):
            below = bisect.bisect_left(self._sorted_scores, score)
            equal = bisect.bisect_right(self._sorted_scores, score) - below
            seen = len(self._sorted_scores)
            reward = (below + 0.5 * equal) / seen if seen else 0.5
            bisect.insort(self._sorted_scores, score)
        else:
            reward = 0.0
        for node in self.paths.pop(config_key(config), []):
            node.visits += 1
            node.reward += reward
