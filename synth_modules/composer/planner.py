"""The composition algorithm: order the sampled ops, pick an input, place each op (inserting adapters where the
shape or values do not fit), and decorate with repeats, residual connections and learnable constants.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import operators
from operators.shapes import MAX_PARAMS, fits, numel
from operators.spec import Args, Kind, OpSpec, Values
from synth_modules.composer.adapters import Move, breaker_moves, domain_moves, shape_moves
from synth_modules.composer.graph import Graph, Node, OperandChoice
from synth_modules.composer.semantics import OperandInfo, check, prepare_args, transfer
from synth_modules.composer.state import Pending, TensorState, new_key

MIN_NUMEL = 4  # no op may produce fewer elements (a 1-element output is trivially "constant")
INPUT_NUMEL = 65_536
_PARAM_VALUES = {
    "small": Values(0.0, 0.02),
    "unit": Values(0.0, 1.0),
    "ones_jitter": Values(1.0, 0.1),
    "positive": Values(1.0, 0.29, 0.5, 1.5),
}
_REPEATABLE = {"activation", "math", "clamp", "norm", "pool", "arithmetic"}


@dataclass
class Placement:
    """An op ready to be added: prepared args, output shape, operand and what it must switch off."""

    spec: OpSpec
    args: Args
    out_shape: tuple[int, ...]
    operand: OperandChoice | None = None
    operand_info: OperandInfo | None = None
    neutralize: list[Pending] = field(default_factory=list)


def _overlaps(a: Values, b: Values) -> bool:
    """The typical ranges of two tensors overlap by a fair margin (so max/min take from both)."""
    lo = max(a.mean - 1.5 * a.std, b.mean - 1.5 * b.std)
    hi = min(a.mean + 1.5 * a.std, b.mean + 1.5 * b.std)
    return hi - lo > 0.5 * min(a.std, b.std)


class Composer:
    """Writes one program graph from a sampled pattern; all randomness comes from `rng`."""

    def __init__(self, rng: random.Random, attempt: int = 0) -> None:
        self.rng = rng
        self.graph = Graph()
        self.neutralized: set[tuple[int, str]] = set()
        self.module_bias = rng.choice((0.25, 0.5, 0.75))
        self.calm = 1.0 / (1.0 + attempt)  # later attempts decorate less
        self.dropped: list[str] = []
        self.last_reason = ""
        self._next_node = 0
        self._positional: set[int] = set()  # values that are not activations (positional tables)

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
        for _ in range(1 if raw is not None else tries):
            drawn = dict(raw) if raw else spec.make_args(self.rng, state.shape)
            if drawn is None:
                self.last_reason = "args"
                continue
            args = prepare_args(spec, state, drawn)
            choice, info = None, None
            if spec.operand is not None:
                picked = self._operand(spec, state)
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

    # ------------------------------------------------------------------------------------------ operands

    def _operand(self, spec: OpSpec, state: TensorState) -> tuple[OperandChoice, OperandInfo] | None:
        rng = self.rng
        assert spec.operand is not None
        kinds = list(spec.operand.kinds)
        rng.shuffle(kinds)
        weights = {"tensor": 0.45, "param": 0.5, "scalar": 0.4, "self": 0.35}
        kinds.sort(key=lambda k: -weights[k] * rng.random())
        for kind in kinds:
            picked = self._operand_of_kind(spec, state, kind)
            if picked is not None:
                return picked
        return None

    def _operand_of_kind(
        self, spec: OpSpec, state: TensorState, kind: str
    ) -> tuple[OperandChoice, OperandInfo] | None:
        rng = self.rng
        operand = spec.operand
        assert operand is not None
        if kind == "self":
            return OperandChoice("self"), OperandInfo("self", state.values, state=state)
        if kind == "tensor":
            options = [
                vid
                for vid, st in self.graph.states.items()
                if vid not in self._positional
                and st.dtype == "float"
                and st.shape == state.shape
                and st.affine_key != state.affine_key
                and st.elementwise_key != state.elementwise_key
                and st.key != state.key
                and self._is_defined(vid)
                and (not operand.overlap or _overlaps(st.values, state.values))
            ]
            if not options:
                return None
            vid = rng.choice(options[-4:])
            other = self.graph.states[vid]
            return OperandChoice("tensor", value=vid), OperandInfo("tensor", other.values, state=other)
        if kind == "scalar":
            lo, hi = operand.scalar_range
            value = rng.uniform(lo, hi)
            if operand.signed and rng.random() < 0.3:
                value = -value
            value = float(f"{value:.3g}")
            choice = OperandChoice("scalar", scalar=value, inline=rng.random() < 0.3)
            return choice, OperandInfo("scalar", Values(value, 0.0, value, value))
        shape, axes = self._param_shape(state, full=operand.param_full)
        if numel(shape) > MAX_PARAMS:
            return None
        init, values = operand.param_init, _PARAM_VALUES.get(operand.param_init)
        if init == "centered":  # drawn around the data so max/min pick from both sides
            mean, std = float(f"{state.values.mean:.3g}"), float(f"{max(state.values.std, 1e-2):.3g}")
            init, values = f"centered:{mean}:{std}", Values(mean, std)
        assert values is not None
        choice = OperandChoice("param", param_shape=shape, param_init=init, inline=rng.random() < 0.25)
        return choice, OperandInfo("param", values, axes=axes)

    def _is_defined(self, vid: int) -> bool:
        return vid in self.graph.producers or any(i.value == vid for i in self.graph.inputs)

    def _param_shape(self, state: TensorState, full: bool) -> tuple[tuple[int, ...], frozenset[int]]:
        rank, shape = state.rank, state.shape
        options: list[tuple[tuple[int, ...], frozenset[int]]] = [
            (tuple(shape[1:]), frozenset(range(1, rank)))
        ]
        if not full:
            options.append(((shape[-1],), frozenset({rank - 1})))
            options.append(((1,), frozenset()))
            if rank >= 3:
                options.append(((shape[1],) + (1,) * (rank - 2), frozenset({1})))
                options.append(((shape[1],) + (1,) * (rank - 2), frozenset({1})))
        return self.rng.choice(options)

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

    # ------------------------------------------------------------------------------------------ decoration

    def _decorate(self, spec: OpSpec, x: int) -> int:
        rng = self.rng
        if spec.kind == Kind.SUPPORTING and spec.category in _REPEATABLE and rng.random() < 0.1 * self.calm:
            again = self._try(spec, self.graph.states[x], tries=4)
            if again is not None:
                x = self._apply(again, x)
        if spec.kind != Kind.SUPPORTING and rng.random() < 0.15 * self.calm:
            x = self._learnable_affine(x)
        if rng.random() < 0.22 * self.calm:
            x = self._residual(x)
        return x

    def _learnable_affine(self, x: int) -> int:
        name = self.rng.choice(("mul", "add", "mul"))
        spec = operators.get(name)
        state = self.graph.states[x]
        for _ in range(4):
            placement = self._try(spec, state, tries=1)
            if (
                placement is not None
                and placement.operand is not None
                and placement.operand.kind in ("param", "scalar")
            ):
                return self._apply(placement, x)
        return x

    def _residual(self, x: int) -> int:
        state = self.graph.states[x]
        spec = operators.get(self.rng.choice(("add", "add", "add", "mul", "sub")))
        picked = self._operand_of_kind(spec, state, "tensor")
        if picked is None:
            return x
        choice, info = picked
        args = prepare_args(spec, state, {})
        args["_y"] = info.values
        args["_operand"] = "tensor"
        verdict = check(spec, state, args, self.neutralized)
        if not verdict.ok:
            return x
        return self._apply(Placement(spec, args, state.shape, choice, info, verdict.neutralize), x)

    def _positional_embedding(self, spec: OpSpec, x: int) -> int | None:
        """x (B, L, D) + Embedding(arange(L)): an Embedding used as a learned positional table."""

        def fits_rank3(st: TensorState) -> Placement | None:
            ok = st.dtype == "float" and st.rank == 3 and st.shape[-1] <= 512 and st.shape[1] <= 1024
            return Placement(spec, {}, st.shape) if ok else None

        state = self.graph.states[x]
        if fits_rank3(state) is None:
            path = self._search(state, fits_rank3)
            if path is None:
                return None
            for move in path[0]:
                real = self._recheck(move, self.graph.states[x])
                if real is None:
                    return None
                x = self._apply(real, x)
            state = self.graph.states[x]
        seq, dim = state.shape[1], state.shape[2]
        args: Args = {"num_embeddings": seq + self.rng.choice((0, 0, 8, 32)), "embedding_dim": dim}
        node_id = self._next_node
        self._next_node += 1
        key = new_key()
        table = TensorState(
            shape=(seq, dim), values=Values(0.0, 1.0), key=key, affine_key=key, elementwise_key=key
        )
        pos = self.graph.new_value(table)
        self._positional.add(pos)
        style = self._style(spec, args)
        arange = "torch.arange({x}.size(1), device={x}.device)"
        form = f"{{m}}({arange})" if style == "module" else f"F.embedding({arange}, {{weight}})"
        derived = {}
        source = state.source(2)
        if source is not None and self.graph.node(source[0]).args.get(source[1]) == dim:
            derived["embedding_dim"] = source
        self.graph.add_node(Node(node_id, spec, args, style, form, x, pos, derived=derived))
        add = operators.get("add")
        info = OperandInfo("tensor", table.values, state=table)
        args_add = prepare_args(add, state, {})
        args_add["_y"] = info.values
        args_add["_operand"] = "tensor"
        return self._apply(Placement(add, args_add, state.shape, OperandChoice("tensor", value=pos), info), x)

    # ------------------------------------------------------------------------------------------ finishing

    def _fallback(self, x: int) -> int:
        """Guarantee at least one op and a float output (only when every sampled op was dropped)."""
        for name in ("Linear", "Tanh", "ReLU"):
            y = self._place(operators.get(name), x)
            if y is not None:
                return y
        return x

    def _maybe_second_output(self, x: int) -> None:
        if self.rng.random() >= 0.06 * self.calm:
            return
        final = self.graph.states[x]
        options = [
            vid
            for vid in self.graph.producers
            if vid != x
            and vid not in self._positional
            and self.graph.states[vid].affine_key != final.affine_key
            and self.graph.node(self.graph.producers[vid]).spec.effect.value not in ("identity", "layout")
        ]
        if options:
            self.graph.outputs.append(self.rng.choice(options))
