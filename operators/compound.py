"""Compound ops: layers that already hold several ops (embeddings, attention, transformer and recurrent layers)."""

from __future__ import annotations

import random
from typing import Any

from operators.shapes import MAX_FLOPS, MAX_NUMEL, MAX_PARAMS, last_axis, numel
from operators.spec import Args, Effect, Kind, Operand, OpSpec, ParamSpec, Shape, Values, fallback

_ATTENTION_FALLBACK = fallback(
    "the attention core lowers to ATen's fused scaled-dot-product kernel (an extern call, e.g. "
    "_scaled_dot_product_flash_attention_for_cpu); Inductor generates the projections and element-wise parts"
)

_DIMS = (8, 16, 24, 32, 48, 64, 96, 128)
_HIDDEN = (8, 16, 24, 32, 48, 64, 96, 128)
_SEQ_OR_SELF = Operand(kinds=("self", "tensor"))


def _heads(rng: random.Random, embed: int, odd: bool = False) -> int | None:
    """Head counts dividing `embed`. Odd counts keep MultiheadAttention/TransformerEncoderLayer off their eval
    fast path, which hands the whole layer to one fused ATen kernel (no generated kernels to learn from) and
    whose fake kernel breaks torch.compile on some shapes."""
    ok = [h for h in ((1, 3, 5, 7) if odd else (1, 2, 4, 8)) if embed % h == 0 and embed // h >= 2]
    return rng.choice(ok) if ok else None


# ------------------------------------------------------------------------------------------------ embeddings


def _embedding_args(rng: random.Random, shape: Shape) -> Args | None:
    rows = numel(shape)
    dims = [d for d in _DIMS if rows * d <= MAX_NUMEL]
    if not dims:
        return None
    args: Args = {
        "num_embeddings": rng.choice((16, 32, 50, 64, 100, 128, 256, 512, 1000)),
        "embedding_dim": rng.choice(dims),
    }
    if rng.random() < 0.15:
        args["padding_idx"] = 0
    return args


def _embedding(name: str, hint: str, ranks: frozenset[int], **fields: Any) -> OpSpec:
    """nn.Embedding and nn.EmbeddingBag: learnable tables looked up by the program's integer input."""
    return OpSpec(
        name=name,
        kind=Kind.COMPOUND,
        category="embedding",
        ranks=ranks,
        prompt_hint=hint,
        module=f"nn.{name}",
        positional=("num_embeddings", "embedding_dim"),
        effect=Effect.BLOCK,
        out_dims={-1: "embedding_dim"},
        input_dtype="long",
        learnable=True,
        **fields,
    )


EMBEDDING = _embedding(
    "Embedding",
    "nn.Embedding(num_embeddings, embedding_dim): integer indices (*) -> (*, embedding_dim)",
    frozenset({1, 2, 3}),
    make_args=_embedding_args,
    out_shape=lambda s, a: (*s, a["embedding_dim"]),
    functional=("F.embedding({x}, {weight})",),
    params=lambda a: {"weight": ParamSpec(("num_embeddings", "embedding_dim"), init="unit")},
    values=lambda v, a: Values(0.0, 1.0),
    attr="embedding",
    aliases=("embedding",),
)


def _bag_args(rng: random.Random, shape: Shape) -> Args | None:
    if len(shape) != 2:
        return None
    dims = [d for d in _DIMS if shape[0] * d <= MAX_NUMEL]
    bag = shape[1]
    # A bag that covers most of the table pools (nearly) the whole table: the output stops depending on the input.
    tables = [n for n in (32, 64, 100, 256, 500, 1000) if n >= 8 * bag]
    if not tables:
        return None
    mode = rng.choice(("mean", "sum", "max") if bag <= 16 else ("mean", "sum"))
    return {"num_embeddings": rng.choice(tables), "embedding_dim": rng.choice(dims), "mode": mode}


EMBEDDING_BAG = _embedding(
    "EmbeddingBag",
    "nn.EmbeddingBag(num_embeddings, embedding_dim, mode='mean'): indices (B, bag) -> (B, embedding_dim)",
    frozenset({2}),
    make_args=_bag_args,
    out_shape=lambda s, a: (s[0], a["embedding_dim"]),
    defaults={"mode": "mean"},
    values=lambda v, a: Values(0.0, 1.0 if a["mode"] != "sum" else 3.0),
    head_only=True,
    attr="bag",
    inductor=fallback("aten._embedding_bag has no Inductor lowering; it runs as an ATen fallback kernel"),
)


# ------------------------------------------------------------------------------------------------- attention


def _attention_args(rng: random.Random, shape: Shape) -> Args | None:
    if len(shape) != 3:
        return None
    b, seq, embed = shape
    if not 4 <= embed <= 256 or not 2 <= seq <= 256:  # one token: softmax over one key, q/k weights unused
        return None
    heads = _heads(rng, embed, odd=True)
    if heads is None or b * heads * seq * seq > MAX_NUMEL:
        return None
    if 2 * b * seq * embed * embed * 4 > MAX_FLOPS * 2:
        return None
    args: Args = {"embed_dim": embed, "num_heads": heads, "batch_first": True}
    if rng.random() < 0.15:
        args["bias"] = False
    return args


MULTIHEAD_ATTENTION = OpSpec(
    name="MultiheadAttention",
    kind=Kind.COMPOUND,
    category="attention",
    ranks=frozenset({3}),
    make_args=_attention_args,
    out_shape=lambda s, a: s,
    prompt_hint="nn.MultiheadAttention(embed_dim, num_heads, batch_first=True): q,k,v (B, L, E) -> (B, L, E) (take [0])",
    module="nn.MultiheadAttention",
    positional=("embed_dim", "num_heads"),
    defaults={"bias": True},
    call="{m}({x}, {y}, {y}, need_weights=False)[0]",
    operand=_SEQ_OR_SELF,
    needs_contiguous=True,  # the eval fast path's fake kernel assumes contiguous inputs under torch.compile
    domain="calm",
    effect=Effect.BLOCK,
    values=lambda v, a: Values(0.0, max(0.3 * v.rms, 0.05)),
    learnable_affine={"shift": "bias"},
    affine_axes=lambda s, a: last_axis(s),
    derived={"embed_dim": -1},
    learnable=True,
    attr="attn",
    inductor=_ATTENTION_FALLBACK,
    aliases=("MHA", "multi_head_attention"),
)


def _sdpa_args(rng: random.Random, shape: Shape) -> Args | None:
    if len(shape) not in (3, 4):
        return None
    seq, embed = shape[-2], shape[-1]
    rows = numel(shape[:-2])
    if seq < 2 or seq > 256 or embed > 256 or rows * seq * seq > MAX_NUMEL:
        return None
    return {"is_causal": seq >= 4 and rng.random() < 0.3}


SDPA = OpSpec(
    name="scaled_dot_product_attention",
    kind=Kind.COMPOUND,
    category="attention",
    ranks=frozenset({3, 4}),
    make_args=_sdpa_args,
    out_shape=lambda s, a: s,
    prompt_hint="F.scaled_dot_product_attention(q, k, v, is_causal=False): (..., L, E) -> (..., L, E)",
    functional=lambda a: (
        ("F.scaled_dot_product_attention({x}, {y}, {y}, is_causal=True)",)
        if a["is_causal"]
        else ("F.scaled_dot_product_attention({x}, {y}, {y})",)
    ),
    operand=_SEQ_OR_SELF,
    domain="attention_calm",  # q.k / sqrt(E) must stay moderate, or every row attends to one key
    effect=Effect.BLOCK,
    values=lambda v, a: Values(v.mean, max(0.5 * v.std, 0.05), v.lo, v.hi),
    inductor=_ATTENTION_FALLBACK,
    aliases=("sdpa", "ScaledDotProductAttention"),
)


def _transformer_args(rng: random.Random, shape: Shape, decoder: bool = False) -> Args | None:
    if len(shape) != 3:
        return None
    b, seq, d = shape
    if not 4 <= d <= 256 or not 2 <= seq <= 128:
        return None
    heads = _heads(rng, d, odd=not decoder)
    if heads is None or b * heads * seq * seq > MAX_NUMEL:
        return None
    ff = rng.choice(
        [f for f in (16, 32, 64, 128, 256, 512) if b * seq * f <= MAX_NUMEL and d * f <= MAX_PARAMS] or [16]
    )
    args: Args = {"d_model": d, "nhead": heads, "dim_feedforward": ff, "dropout": 0.0, "batch_first": True}
    if rng.random() < 0.3:
        args["activation"] = "gelu"
    if rng.random() < 0.3:
        args["norm_first"] = True
    return args


def _transformer_spec(name: str, decoder: bool) -> OpSpec:
    what = "tgt (B, L, E), memory (B, S, E) -> (B, L, E)" if decoder else "(B, L, E) -> (B, L, E)"
    return OpSpec(
        name=name,
        kind=Kind.COMPOUND,
        category="transformer",
        ranks=frozenset({3}),
        make_args=lambda rng, shape: _transformer_args(rng, shape, decoder),
        out_shape=lambda s, a: s,
        prompt_hint=f"nn.{name}(d_model, nhead, dim_feedforward, dropout=0.0, batch_first=True): {what}",
        module=f"nn.{name}",
        positional=("d_model", "nhead"),
        defaults={"activation": "relu", "norm_first": False, "bias": True},
        call="{m}({x}, {y})" if decoder else "{m}({x})",
        operand=_SEQ_OR_SELF if decoder else None,
        needs_contiguous=True,  # the eval fast path's fake kernel assumes contiguous inputs under torch.compile
        domain="calm",
        effect=Effect.BLOCK,
        values=lambda v, a: Values(0.0, 1.0),
        # post-norm layers end with a LayerNorm over the features
        facts=lambda a: () if a.get("norm_first") else ("mean_const", "var_const", "norm_const"),
        fact_axes=lambda s, a: last_axis(s),
        constant_if=("uniform",),
        axes=lambda s, a: last_axis(s),
        learnable_affine={"shift": "bias", "scale": None},
        affine_axes=lambda s, a: last_axis(s),
        derived={"d_model": -1},
        learnable=True,
        attr="decoder_layer" if decoder else "encoder_layer",
        inductor=_ATTENTION_FALLBACK,
    )


# ------------------------------------------------------------------------------------------------- recurrent

_RNN_FALLBACK = fallback(
    "TorchDynamo does not trace nn.RNN/LSTM/GRU modules (allow_rnn=False): the layer runs eagerly between "
    "compiled graphs"
)


def _rnn_args(cell: bool):
    def make(rng: random.Random, shape: Shape) -> Args | None:
        if len(shape) != (2 if cell else 3):
            return None
        fin = shape[-1]
        if fin > 512 or (not cell and not 2 <= shape[1] <= 64):
            return None  # a one-step sequence never uses weight_hh
        rows = numel(shape[:-1])
        ok = [h for h in _HIDDEN if rows * h * 2 <= MAX_NUMEL and 4 * fin * h <= MAX_PARAMS]
        if not ok:
            return None
        args: Args = {"input_size": fin, "hidden_size": rng.choice(ok)}
        if not cell:
            if rng.random() < 0.3:
                args["num_layers"] = 2
            args["batch_first"] = True
            if rng.random() < 0.25:
                args["bidirectional"] = True
            # The last step of a reverse direction has seen one element only: take it from one-way layers.
            args["_output"] = "sequence" if args.get("bidirectional") else rng.choice(("sequence", "last"))
        if rng.random() < 0.1:
            args["bias"] = False
        return args

    return make


def _rnn_shape(s: Shape, a: Args) -> Shape:
    width = a["hidden_size"] * (2 if a.get("bidirectional") else 1)
    return (s[0], width) if a["_output"] == "last" else (s[0], s[1], width)


def _rnn_spec(name: str, nonlinear_arg: bool) -> OpSpec:
    def make(rng: random.Random, shape: Shape) -> Args | None:
        args = _rnn_args(False)(rng, shape)
        if args is not None and nonlinear_arg and rng.random() < 0.3:
            args["nonlinearity"] = "relu"
        return args

    return OpSpec(
        name=name,
        kind=Kind.COMPOUND,
        category="recurrent",
        ranks=frozenset({3}),
        make_args=make,
        out_shape=_rnn_shape,
        prompt_hint=f"nn.{name}(input_size, hidden_size, batch_first=True): (B, L, H_in) -> output (B, L, H) (take [0])",
        module=f"nn.{name}",
        positional=("input_size", "hidden_size"),
        defaults={"num_layers": 1, "bias": True, "bidirectional": False, "nonlinearity": "tanh"},
        call=lambda a: "{m}({x})[0][:, -1]" if a["_output"] == "last" else "{m}({x})[0]",
        domain="calm",  # saturated gates make the output (nearly) input-independent
        effect=Effect.BLOCK,
        facts=lambda a: (
            ("floor",) * (a.get("nonlinearity") == "relu") + ("split",) * bool(a.get("bidirectional"))
        ),
        fact_axes=lambda s, a: tuple(range(len(_rnn_shape(s, a)))),
        values=lambda v, a: (
            Values(0.3, 0.3, 0.0, float("inf"))
            if a.get("nonlinearity") == "relu"
            else Values(0.0, 0.3, -1.0, 1.0)
        ),
        derived={"input_size": -1},
        learnable=True,
        attr=name.lower(),
        inductor=_RNN_FALLBACK,
    )


def _cell_spec(name: str) -> OpSpec:
    return OpSpec(
        name=name,
        kind=Kind.COMPOUND,
        category="recurrent",
        ranks=frozenset({2}),
        make_args=_rnn_args(True),
        out_shape=lambda s, a: (s[0], a["hidden_size"]),
        prompt_hint=f"nn.{name}(input_size, hidden_size): (B, input_size)[, state] -> (B, hidden_size)"
        + (" (returns (h, c))" if name == "LSTMCell" else ""),
        module=f"nn.{name}",
        positional=("input_size", "hidden_size"),
        defaults={"bias": True},
        # Two steps (the second from the first's state): a single step from a zero state never uses weight_hh.
        call="{m}({x}, {m}({x}))[0]" if name == "LSTMCell" else "{m}({x}, {m}({x}))",
        domain="calm",
        effect=Effect.BLOCK,
        values=lambda v, a: Values(0.0, 0.3, -1.0, 1.0),
        derived={"input_size": -1},
        out_dims={-1: "hidden_size"},
        learnable=True,
        attr=name.lower().replace("cell", "_cell"),
    )


COMPOUND_OPS: tuple[OpSpec, ...] = (
    EMBEDDING,
    EMBEDDING_BAG,
    MULTIHEAD_ATTENTION,
    SDPA,
    _transformer_spec("TransformerEncoderLayer", decoder=False),
    _transformer_spec("TransformerDecoderLayer", decoder=True),
    _rnn_spec("RNN", nonlinear_arg=True),
    _rnn_spec("LSTM", nonlinear_arg=False),
    _rnn_spec("GRU", nonlinear_arg=False),
    _cell_spec("RNNCell"),
    _cell_spec("LSTMCell"),
    _cell_spec("GRUCell"),
)
