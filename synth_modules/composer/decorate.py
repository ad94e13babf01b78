"""Decorations that make programs varied: repeats, learnable scales/biases, residual connections, positional
embeddings and a second output. Mixed into the Composer (planner.py), whose placement machinery they use."""

from __future__ import annotations

import operators
from operators.spec import Args, Kind, OpSpec, Values
from synth_modules.composer.graph import Node, OperandChoice
from synth_modules.composer.placement import Placement
from synth_modules.composer.semantics import OperandInfo, check, prepare_args
from synth_modules.composer.state import TensorState, new_key

_REPEATABLE = {"activation", "math", "clamp", "norm", "pool", "arithmetic"}


class Decorations:
    """Composer methods that add ops beyond the sampled pattern (all recorded in the final pattern)."""

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
        picked = self.operands.of_kind(spec, state, "tensor")
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
