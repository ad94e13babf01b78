"""The composition algorithm: order the sampled ops, pick an input, place each op (inserting adapters where the
shape or values do not fit), and decorate with repeats, residual connections and learnable constants.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable

import operators
from operators.shapes import fits, numel
from operators.spec import Args, OpSpec, Values
from synth_modules.analysis.opnames import normalize_ops
from synth_modules.composer.adapters import Move, breaker_moves, domain_moves, shape_moves
from synth_modules.composer.decorate import Decorations
from synth_modules.composer.dtypes import cpu_unsupported
from synth_modules.composer.graph import Graph, Node, OperandChoice
from synth_modules.composer.operands import OperandPicker
from synth_modules.composer.placement import Placement
from synth_modules.composer.semantics import check, prepare_args, transfer
from synth_modules.composer.state import Pending, TensorState, new_key

MIN_NUMEL = 4  # no op may produce fewer elements (a 1-element output is trivially "constant")
INPUT_NUMEL = 65_536


class Composer(Decorations):
    """Writes one program graph from a sampled pattern; all randomness comes from `rng`."""

    def __init__(self, rng: random.Random, attempt: int = 0, dtype: str = "float32") -> None:
        self.rng = rng
        self.excluded = cpu_unsupported(dtype)  # ops whose CPU kernels lack this dtype (measured)
        self.graph = Graph()
        self.neutralized: set[tuple[int, str]] = set()
        self.module_bias = rng.choice((0.25, 0.5, 0.75))
        self.calm = 1.0 / (1.0 + attempt)  # later attempts decorate less
        self.dropped: list[str] = []
        self.last_reason = ""
        self._next_node = 0
        self._positional: set[int] = set()  # values that are not activations (positional tables)
        self.operands = OperandPicker(rng, self.graph, self._positional)

    # ------------------------------------------------------------------------------------------ driver

    def compose(self, core: list[str], compound: list[str], supporting: list[str]) -> Graph:
        plan = self._order(core, compound, supporting)
        x = self._start(plan)
        if self.graph.nodes:  # an integer-input head was placed by _start
            plan = plan[1:]
        queue = deque(plan)
        deferred: set[int] = set()
        while queue:
            spec = queue.popleft()
            y = self._place(spec, x)
            if y is None:
                if id(spec) not in deferred and queue:
                    deferred.add(id(spec))
                    queue.append(spec)
                else:
                    self.dropped.append(spec.name)
                continue
            x = self._decorate(spec, y)
        if not self.graph.nodes or self.graph.states[x].dtype != "float":
            x = self._fallback(x)
        if len(set(normalize_ops(self.graph.pattern()))) < 2:
            x = self._enrich(x)
        self.graph.outputs = [x]
        self._maybe_second_output(x)
        return self.graph

    # ------------------------------------------------------------------------------------------ ordering

    def _order(self, core: list[str], compound: list[str], supporting: list[str]) -> list[OpSpec]:
        rng = self.rng
        mains = [operators.get(n) for n in (*core, *compound)]
        heads = [s for s in mains if s.input_dtype == "long"]
        mains = [s for s in mains if s.input_dtype != "long"]
        head: OpSpec | None = None
        if heads:
            head = next((s for s in heads if s.head_only), heads[0])
            heads.remove(head)
            mains += heads  # a second Embedding becomes a positional embedding
        if rng.random() < 0.3:
            rng.shuffle(mains)
        slots: list[list[OpSpec]] = [[] for _ in range(len(mains) + 1)]
        for name in supporting:
            spec = operators.get(name)
            slot = 0 if (rng.random() < 0.12 or not mains) else rng.randint(1, len(mains))
            slots[slot].append(spec)
        plan: list[OpSpec] = [head] if head else []
        plan += slots[0]
        for main, after in zip(mains, slots[1:], strict=True):
            plan.append(main)
            plan += after
        return plan

    # ------------------------------------------------------------------------------------------ the input

    def _random_shape(self, rank: int) -> tuple[int, ...]:
        rng = self.rng
        for _ in range(50):
            if rank == 1:
                shape: tuple[int, ...] = (rng.choice((16, 32, 64, 128)),)
            elif rank == 2:
                shape = (
                    rng.choice((2, 4, 8, 16, 32, 64, 128)),
                    rng.choice((16, 32, 64, 100, 128, 256, 512, 1024)),
                )
            elif rank == 3:
                shape = (
                    rng.choice((2, 4, 8, 16, 32)),
                    rng.choice((3, 4, 8, 16, 24, 32, 64)),
                    rng.choice((8, 16, 32, 48, 64, 128, 256)),
                )
            elif rank == 4:
                h = rng.choice((8, 12, 16, 24, 28, 32, 48, 64))
                w = h if rng.random() < 0.7 else rng.choice((8, 16, 24, 32, 64))
                shape = (rng.choice((1, 2, 4, 8, 16)), rng.choice((1, 3, 4, 8, 16, 32)), h, w)
            else:
                shape = (
                    rng.choice((1, 2, 4)),
                    rng.choice((1, 3, 4, 8)),
                    rng.choice((4, 6, 8, 12, 16)),
                    rng.choice((8, 12, 16, 24, 32)),
                    rng.choice((8, 12, 16, 24, 32)),
                )
            if numel(shape) <= INPUT_NUMEL and numel(shape) >= 64:
                return shape
        return (2, 16) if rank == 2 else (2,) + (8,) * (rank - 1)

    def _input_state(self, shape: tuple[int, ...], kind: str) -> TensorState:
        values = Values(0.5, 0.29, 0.0, 1.0) if kind == "rand" else Values(0.0, 1.0, -5.0, 5.0)
        key = new_key()
        return TensorState(shape=shape, values=values, key=key, affine_key=key, elementwise_key=key)

    def _start(self, plan: list[OpSpec]) -> int:
        """Create the program input; place an integer-input head (Embedding/EmbeddingBag) right away."""
        rng = self.rng
        if plan and plan[0].input_dtype == "long":
            head = plan[0]
            for _ in range(20):
                shape = (rng.choice((2, 4, 8, 16, 32)), rng.choice((4, 8, 16, 32, 64, 128)))
                key = new_key()
                state = TensorState(
                    shape=shape, values=Values(), dtype="long", key=key, affine_key=key, elementwise_key=key
                )
                placement = self._try(head, state)
                if placement is not None:
                    vid = self.graph.add_input(state, high=placement.args["num_embeddings"], kind="randint")
                    return self._apply(placement, vid)
        target = next((s for s in plan if s.input_dtype != "long"), None)
        kind = "rand" if rng.random() < 0.12 else "randn"
        ranks = sorted(r for r in (target.ranks if target else {2, 3, 4}) if 2 <= r <= 5) or [2, 3, 4]
        for _ in range(40):
            state = self._input_state(self._random_shape(rng.choice(ranks)), kind)
            if target is None or self._try(target, state) is not None:
                return self.graph.add_input(state, kind=kind)
        return self.graph.add_input(self._input_state(self._random_shape(rng.choice(ranks)), kind), kind=kind)

    # ------------------------------------------------------------------------------------------ placing

    def _place(self, spec: OpSpec, x: int) -> int | None:
        if spec.input_dtype == "long":
            return self._positional_embedding(spec, x) if spec.name == "Embedding" else None
        state = self.graph.states[x]
        placement = self._try(spec, state)
        if placement is not None:
            return self._apply(placement, x)
        path = self._search(state, lambda st: self._try(spec, st, tries=6))
        if path is None:
            return None
        moves, hit = path
        for move in moves:
            real = self._recheck(move, self.graph.states[x])
            if real is None:
                return None
            x = self._apply(real, x)
        final = self._recheck(hit, self.graph.states[x]) or self._try(spec, self.graph.states[x], tries=12)
        return None if final is None else self._apply(final, x)

    def _try(
        self, spec: OpSpec, state: TensorState, tries: int = 10, raw: Args | None = None
    ) -> Placement | None:
        """A valid placement of `spec` on `state` (random args, `tries` draws), or None."""
        if state.dtype != spec.input_dtype or state.rank not in spec.ranks:
            self.last_reason = "rank"
            return None
        if spec.name in self.excluded:
            self.last_reason = "dtype"
            return None
        for _ in range(1 if raw is not None else tries):
            drawn = dict(raw) if raw else spec.make_args(self.rng, state.shape)
            if drawn is None:
                self.last_reason = "args"
                continue
            args = prepare_args(spec, state, drawn)
            choice, info = None, None
            if spec.operand is not None:
                picked = self.operands.pick(spec, state)
                if picked is None:
                    self.last_reason = "operand"
                    continue
                choice, info = picked
                args["_y"] = info.values
                args["_operand"] = choice.kind
            out = tuple(spec.out_shape(state.shape, args))
            if not fits(out) or numel(out) < MIN_NUMEL or len(out) > 5:
                self.last_reason = "size"
                continue
            verdict = check(spec, state, args, self.neutralized)
            if not verdict.ok:
                self.last_reason = verdict.reason
                continue
            return Placement(spec, args, out, choice, info, verdict.neutralize)
        return None

    def _recheck(self, placement: Placement, state: TensorState) -> Placement | None:
        verdict = check(placement.spec, state, placement.args, self.neutralized)
        if not verdict.ok:
            return None
        placement.neutralize = verdict.neutralize
        return placement

    def _search(
        self, state: TensorState, target: Callable[[TensorState], Placement | None], depth: int = 3
    ) -> tuple[list[Placement], Placement] | None:
        """Breadth-first search over adapter chains (shortest first) until `target` fits.

        Bounded so composition stays in milliseconds: a few candidates per level, a small frontier.
        """
        rng = self.rng
        reason = self.last_reason
        frontier: list[tuple[TensorState, list[Placement]]] = [(state, [])]
        widths = (18, 10, 8)
        for level in range(depth):
            found: list[tuple[list[Placement], Placement]] = []
            grown: list[tuple[TensorState, list[Placement]]] = []
            for current, path in frontier:
                for move in self._moves(current, reason)[: widths[level]]:
                    placement = self._move_placement(move, current)
                    if placement is None:
                        continue
                    after = transfer(placement.spec, current, placement.args, placement.out_shape, node=-1)
                    hit = target(after)
                    if hit is not None:
                        found.append(([*path, placement], hit))
                        if len(found) >= 3:
                            break
                    grown.append((after, [*path, placement]))
                if len(found) >= 3:
                    break
            if found:
                return rng.choice(found)
            rng.shuffle(grown)
            frontier = grown[: (6 if level == 0 else 4)]
        return None

    def _moves(self, state: TensorState, reason: str) -> list[Move]:
        moves = shape_moves(state)
        rng = self.rng
        rng.shuffle(moves)
        if reason.startswith("domain:"):
            moves = domain_moves(reason.split(":", 1)[1], rng) + moves[:6]
        elif reason.startswith(("constant", "cancels")):
            moves = breaker_moves(rng) + moves[:6]
        return moves

    def _move_placement(self, move: Move, state: TensorState) -> Placement | None:
        name, raw = move
        spec = operators.get(name)
        if spec.operand is not None:
            return None
        saved = self.last_reason
        placement = self._try(spec, state, tries=4, raw=raw or None)
        self.last_reason = saved
        return placement

    # ------------------------------------------------------------------------------------------ applying

    def _apply(self, placement: Placement, x: int) -> int:
        spec, args = placement.spec, placement.args
        for pending in placement.neutralize:
            self._neutralize(pending)
        state = self.graph.states[x]
        node_id = self._next_node
        self._next_node += 1
        out_state = transfer(
            spec, state, args, placement.out_shape, node=node_id, operand=placement.operand_info
        )
        vid = self.graph.new_value(out_state)
        style = self._style(spec, args)
        node = Node(
            id=node_id,
            spec=spec,
            args=args,
            style=style,
            form=self._form(spec, args, style),
            input=x,
            output=vid,
            operand=placement.operand,
            derived=self._derived(spec, state, args),
            literal_args=frozenset(a for a in args if self.rng.random() < 0.12),
            keywords=self.rng.random() < 0.2,
        )
        self.graph.add_node(node)
        return vid

    def _style(self, spec: OpSpec, args: Args) -> str:
        styles = spec.styles
        if not styles:
            raise ValueError(f"{spec.name} has no emission form")
        if len(styles) == 1:
            return styles[0]
        if any(k in spec.module_only and spec.defaults.get(k) != args[k] for k in args):
            return "module"
        return "module" if self.rng.random() < self.module_bias else "functional"

    def _form(self, spec: OpSpec, args: Args, style: str) -> str:
        if style == "module":
            return spec.call_form(args)
        return self.rng.choice(spec.functional_forms(args))

    def _derived(self, spec: OpSpec, state: TensorState, args: Args) -> dict[str, tuple[int, str]]:
        out = {}
        for name, axis in spec.derived.items():
            if name not in args or not state.rank:
                continue
            source = state.source(axis % state.rank)
            if source is None:
                continue
            owner = self.graph.node(source[0])
            if owner.args.get(source[1]) == args[name]:
                out[name] = source
        return out

    def _neutralize(self, pending: Pending) -> None:
        node = self.graph.node(pending.node)
        if pending.switch == "_operand":
            value = 1.0 if pending.kind == "scale" else 0.1
            node.operand = OperandChoice("scalar", scalar=value)
            node.args["_operand"] = "scalar"
            self.neutralized.add((node.id, pending.kind))
            return
        assert pending.switch is not None
        node.args[pending.switch] = False
        for kind, switch in node.spec.learnable_affine.items():
            if switch == pending.switch:
                self.neutralized.add((node.id, kind))
        if node.style == "functional":
            node.form = self.rng.choice(node.spec.functional_forms(node.args))

    # ------------------------------------------------------------------------------------------ finishing

    def _enrich(self, x: int) -> int:
        """One kind of compute op (maybe repeated) plus reshapes is a KernelBench level-1 problem (the
        contamination gate rejects it, on every retry) and has nothing to fuse: follow it with an activation."""
        names = [spec.name for spec in operators.supporting_ops() if spec.category == "activation"]
        self.rng.shuffle(names)
        for name in names[:8]:
            y = self._place(operators.get(name), x)
            if y is not None:
                return y
        return x

    def _fallback(self, x: int) -> int:
        """Guarantee at least one op and a float output (only when every sampled op was dropped)."""
        for name in ("Linear", "Tanh", "ReLU"):
            y = self._place(operators.get(name), x)
            if y is not None:
                return y
        return x
