"""First guesses for constructor arguments and forward inputs, from names, type hints, defaults and the code.

Every value is a Python expression string, evaluated in the extracted module's namespace, so what the search
tests is exactly what the program file's get_init_inputs()/get_inputs() will contain.
"""

from __future__ import annotations

import ast
import inspect
import re
import typing
from dataclasses import dataclass, field

SMALL_DIM = 16
SMALL_CHANNELS = 4
IMAGE_SIZE = 32
SEQ_LEN = 8
BATCH = 2


def _tokens(*words: str) -> str:
    """A pattern matching names that contain one of `words` as an underscore-separated token."""
    return rf"(?:.*_)?(?:{'|'.join(words)})(?:_.*)?"


# (name pattern, candidate expressions best first). First match wins; patterns match the whole lowered name.
_NAME_RULES: list[tuple[str, list[str]]] = [
    (_tokens("pretrained", "load_weights", "download", "from_pretrained"), ["False"]),
    (_tokens("weights_path", "checkpoint", "ckpt", "pretrained_path", "weights_file"), ["None"]),
    (
        _tokens("dim_head", "head_dim", "d_head", "dim_heads", "head_size", "dim_per_head", "head_dims"),
        ["8", "4", "16"],
    ),
    (
        _tokens(
            "heads", "num_heads", "n_heads", "n_head", "nhead", "nheads", "num_attention_heads", "attn_heads"
        ),
        ["2", "1", "4"],
    ),
    (
        _tokens(
            "depth",
            "num_layers",
            "n_layers",
            "n_layer",
            "layers",
            "num_blocks",
            "n_blocks",
            "nlayers",
            "num_hidden_layers",
            "depths",
        ),
        ["1", "2"],
    ),
    (
        _tokens(
            "dropout",
            "drop",
            "drop_rate",
            "drop_prob",
            "prob",
            "p_drop",
            "dropout_rate",
            "attn_drop",
            "proj_drop",
            "drop_path",
        ),
        ["0.0", "0.5"],
    ),
    (r"p", ["0.5", "2", "1"]),
    (_tokens("eps", "epsilon"), ["1e-05"]),
    (
        _tokens(
            "classes", "num_classes", "n_classes", "num_labels", "n_class", "num_class", "nclass", "labels"
        ),
        ["10", "4"],
    ),
    (
        _tokens(
            "tokens", "num_tokens", "vocab", "vocab_size", "n_vocab", "ntoken", "num_embeddings", "n_tokens"
        ),
        ["20", "16"],
    ),
    (
        _tokens(
            "image_size",
            "img_size",
            "image_res",
            "resolution",
            "input_size",
            "img_res",
            "image_height",
            "image_width",
            "image",
            "img",
        ),
        ["32", "(32, 32)", "16"],
    ),
    (
        _tokens("patch_size", "patch", "patch_res", "patch_height", "patch_width", "patch_sizes"),
        ["8", "4", "(8, 8)"],
    ),
    (_tokens("window_size", "window", "ws", "window_sizes"), ["4", "2", "(4, 4)"]),
    (_tokens("kernel_size", "kernel", "ksize", "k", "filter_size", "kernel_sizes"), ["3", "1", "(3, 3)"]),
    (_tokens("stride", "strides"), ["1", "2"]),
    (_tokens("padding", "pad"), ["1", "0"]),
    (_tokens("dilation"), ["1", "2"]),
    (_tokens("groups", "num_groups", "n_groups", "group"), ["1", "2", "4"]),
    (
        _tokens(
            "seq_len",
            "max_seq_len",
            "max_len",
            "max_length",
            "seq_length",
            "context_len",
            "num_positions",
            "max_positions",
            "n_ctx",
            "block_size",
            "num_patches",
            "max_seq_length",
            "len",
            "length",
        ),
        ["8", "16", "32"],
    ),
    (
        _tokens(
            "in_channels",
            "in_chans",
            "in_ch",
            "in_planes",
            "inplanes",
            "input_channels",
            "channels_in",
            "inp",
            "c_in",
            "chans",
            "channels",
            "nc",
            "in_c",
            "num_channels",
            "channel",
        ),
        ["4", "3", "16"],
    ),
    (
        _tokens(
            "out_channels",
            "out_chans",
            "out_ch",
            "out_planes",
            "planes",
            "output_channels",
            "channels_out",
            "oup",
            "c_out",
            "filters",
            "out_c",
        ),
        ["4", "8", "16"],
    ),
    (
        _tokens("mult", "ratio", "expansion", "expand_ratio", "factor", "reduction", "r", "mults", "expand"),
        ["2", "4", "1"],
    ),
    (
        _tokens(
            "scale",
            "alpha",
            "beta",
            "gamma",
            "temperature",
            "temp",
            "tau",
            "lam",
            "margin",
            "momentum",
            "lr",
            "std",
            "mean",
            "theta",
            "init_value",
            "init_values",
            "value",
            "base",
        ),
        ["1.0", "0.5", "2"],
    ),
    (
        _tokens(
            "dim",
            "dims",
            "d_model",
            "hidden",
            "hidden_dim",
            "hidden_size",
            "embed_dim",
            "emb_dim",
            "embedding_dim",
            "features",
            "in_features",
            "out_features",
            "n_embd",
            "width",
            "d_ff",
            "ff_dim",
            "mlp_dim",
            "inner_dim",
            "latent_dim",
            "units",
            "d",
            "nf",
            "ndf",
            "ngf",
            "feat",
            "feature_dim",
            "emb",
            "nhid",
            "ninp",
            "in_dim",
            "out_dim",
            "d_inner",
            "z_dim",
            "state_dim",
            "action_dim",
            "hid",
            "embed",
            "size",
            "sizes",
            "input_dim",
            "output_dim",
        ),
        ["16", "8", "32"],
    ),
    (
        _tokens(
            "num",
            "n",
            "count",
            "steps",
            "iters",
            "iterations",
            "levels",
            "buckets",
            "bucket_size",
            "n_hashes",
            "codebook_size",
            "num_latents",
            "latents",
            "slots",
            "experts",
            "num_experts",
            "topk",
            "top_k",
            "k",
        ),
        ["4", "2", "8"],
    ),
    (
        r"(use|is|has|with|enable|return|add|apply|learn|learned|causal|residual|normalize|norm_first|flash|shared|tie)(_.*)?",
        ["False", "True"],
    ),
    (
        _tokens("bias", "affine", "batch_first", "inplace", "trainable", "elementwise_affine"),
        ["True", "False"],
    ),
    (
        _tokens(
            "act",
            "activation",
            "nonlinearity",
            "act_fn",
            "act_layer",
            "activation_fn",
            "norm_layer",
            "norm_fn",
            "norm_cls",
            "norm_class",
            "layer_cls",
            "block_cls",
            "nonlin",
            "activation_layer",
        ),
        ["torch.nn.GELU", "torch.nn.Identity()", "torch.nn.LayerNorm"],
    ),
    (
        _tokens(
            "fn",
            "func",
            "function",
            "module",
            "model",
            "net",
            "network",
            "layer",
            "encoder",
            "decoder",
            "backbone",
            "sublayer",
            "submodule",
            "body",
            "head",
            "block",
            "transformer",
            "vit",
            "teacher",
            "student",
            "attn",
            "ff",
            "wrapped",
        ),
        ["torch.nn.Identity()", "torch.nn.Identity"],
    ),
    (
        _tokens(
            "config",
            "cfg",
            "args",
            "opt",
            "opts",
            "hparams",
            "params",
            "conf",
            "hp",
            "options",
            "settings",
            "configs",
        ),
        ["_mock_config()"],
    ),
    (_tokens("shape"), ["(16, 16)", "[16, 16]", "16"]),
    (
        _tokens(
            "mode",
            "type",
            "kind",
            "method",
            "name",
            "pool",
            "pooling",
            "norm",
            "padding_mode",
            "attn_type",
            "style",
            "variant",
        ),
        ["None"],
    ),
]
_INT_FALLBACK = ["4", "2", "1", "8", "16", "32", "(4, 4)", "[4, 4]"]
_ANY_FALLBACK = ["4", "None", "1.0", "False", "torch.nn.Identity()", "(4, 4)", "_mock_config()"]


def _annotation_candidates(annotation: object) -> list[str] | None:
    if annotation is inspect.Parameter.empty:
        return None
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", repr(annotation))
    text = str(text).replace("typing.", "")
    if text.startswith(("Optional[", "Union[")) or " | None" in text:
        inner = re.sub(r"^(Optional|Union)\[|\]$|\s*\|\s*None|,\s*None", "", text)
        return _annotation_candidates(inner) or ["None"]
    if text in {"int"}:
        return _INT_FALLBACK[:6]
    if text in {"float"}:
        return ["1.0", "0.0", "0.5"]
    if text in {"bool"}:
        return ["False", "True"]
    if text.startswith(("Tuple[int", "tuple[int", "tuple", "Tuple", "Sequence[int", "List[int", "list[int")):
        return ["(4, 4)", "[4, 4]", "(2, 2)"]
    if text in {"str"}:
        return None
    if "Module" in text or "Callable" in text:
        return ["torch.nn.Identity()", "torch.nn.GELU"]
    if "Tensor" in text:
        return [f"torch.rand([{SMALL_DIM}])"]
    return None


def string_literals_for(func: object, name: str) -> list[str]:
    """String constants `name` is compared with in `func`'s source (`assert pool in {'cls', 'mean'}`)."""
    try:
        tree = ast.parse(inspect.cleandoc("\n" + inspect.getsource(func)))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return []
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(
            isinstance(n, ast.Name) and n.id == name for n in [node.left, *node.comparators]
        ):
            for sub in ast.walk(node):
                if (
                    isinstance(sub, ast.Constant)
                    and isinstance(sub.value, str)
                    and repr(sub.value) not in found
                ):
                    found.append(repr(sub.value))
    return found


def _dedupe(values: list[str]) -> list[str]:
    seen: list[str] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


def candidates_for(param: inspect.Parameter, owner: object, hints: dict[str, object]) -> list[str]:
    """Ordered candidate expressions for a required constructor parameter."""
    name = param.name.lower().strip("_")
    values: list[str] = []
    literals = string_literals_for(owner, param.name)
    values += literals
    by_type = _annotation_candidates(hints.get(param.name, param.annotation))
    by_name: list[str] = []
    for pattern, exprs in _NAME_RULES:
        if re.fullmatch(pattern, name):
            by_name = exprs
            break
    if by_type and by_name:
        # Keep name-based guesses that agree with the type's family, then the type's own.
        family = {"int": str.isdigit, "float": lambda s: "." in s or "e-" in s}
        first = by_type[0]
        kind = "int" if first.isdigit() else "float" if "." in first else None
        if kind:
            by_name = [v for v in by_name if family[kind](v)]
        values += by_name + by_type
    else:
        values += by_name or by_type or []
    values += _INT_FALLBACK if not values or values[0].isdigit() else []
    values += _ANY_FALLBACK
    return _dedupe(values)


@dataclass
class TensorSpec:
    """One forward input: a float tensor, an integer index tensor or a bool mask of a given shape."""

    shape: list[int]
    kind: str = "float"  # float | int | bool
    high: int = 10

    def expr(self) -> str:
        if self.kind == "int":
            return f"torch.randint(0, {self.high}, {self.shape})"
        if self.kind == "bool":
            return f"torch.ones({self.shape}, dtype=torch.bool)"
        return f"torch.rand({self.shape})"


@dataclass
class InputGuess:
    specs: list[TensorSpec] = field(default_factory=list)


_IMAGE_NAMES = re.compile(r"(img|image|images|imgs|pixel_values|pixels|video|frames|picture)")
_INT_NAMES = re.compile(
    r"(tokens?|input_ids|ids|indices|idx|labels?|targets?|tgt_ids|src_ids|token_ids|seq|text)"
)
_TIME_NAMES = re.compile(r"(t|time|times|timestep|timesteps|noise_level|sigma|sigmas)")
_MASK_NAMES = re.compile(r".*mask.*")


def first_layer_shape(model: object, image_size: int | None) -> TensorSpec | None:
    """Guess the main input from the first shape-defining submodule registered by the model."""
    import torch.nn as nn

    spatial = image_size or SMALL_DIM
    for sub in list(model.modules())[1:]:
        if isinstance(sub, (nn.Conv1d, nn.ConvTranspose1d)):
            return TensorSpec([BATCH, sub.in_channels, 2 * spatial])
        if isinstance(sub, (nn.Conv2d, nn.ConvTranspose2d)):
            return TensorSpec([BATCH, sub.in_channels, spatial, spatial])
        if isinstance(sub, (nn.Conv3d, nn.ConvTranspose3d)):
            return TensorSpec([BATCH, sub.in_channels, 4, 8, 8])
        if isinstance(sub, nn.Embedding):
            return TensorSpec([BATCH, SEQ_LEN], kind="int", high=max(1, min(sub.num_embeddings, 10)))
        if isinstance(sub, nn.Linear):
            return TensorSpec([BATCH, SEQ_LEN, sub.in_features])
        if isinstance(sub, nn.LayerNorm):
            return TensorSpec([BATCH, SEQ_LEN, *sub.normalized_shape])
        if isinstance(sub, nn.BatchNorm2d):
            return TensorSpec([BATCH, sub.num_features, spatial, spatial])
        if isinstance(sub, nn.BatchNorm1d):
            return TensorSpec([BATCH, sub.num_features, SEQ_LEN])
        if isinstance(sub, (nn.LSTM, nn.GRU, nn.RNN)):
            return TensorSpec([BATCH, SEQ_LEN, sub.input_size])
        if isinstance(sub, nn.MultiheadAttention):
            return TensorSpec([BATCH, SEQ_LEN, sub.embed_dim])
    return None


def input_for_name(name: str, main: TensorSpec, image_size: int | None, channels: int | None) -> TensorSpec:
    """A forward parameter's first guess from its name, relative to the main input guess."""
    lowered = name.lower()
    if _MASK_NAMES.fullmatch(lowered):
        return TensorSpec(main.shape[:2], kind="bool")
    if _TIME_NAMES.fullmatch(lowered):
        return TensorSpec([main.shape[0]])
    if _IMAGE_NAMES.fullmatch(lowered):
        size = image_size or IMAGE_SIZE
        return TensorSpec([BATCH, channels or 3, size, size])
    if _INT_NAMES.fullmatch(lowered):
        return TensorSpec(main.shape[:2], kind="int", high=10)
    return TensorSpec(list(main.shape), kind=main.kind, high=main.high)


def type_hints(func: object) -> dict[str, object]:
    """Resolved type hints when possible, else the raw (string) annotations."""
    try:
        return typing.get_type_hints(func)
    except Exception:
        return dict(getattr(func, "__annotations__", {}) or {})
