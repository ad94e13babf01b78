"""Supporting ops: activations, element-wise arithmetic, clamps, norms, pooling, padding, reductions, reshapes,
upsampling and dropout."""

from __future__ import annotations

from operators.spec import OpSpec
from operators.supporting.activations import ACTIVATIONS, SOFTMAX_FAMILY
from operators.supporting.arithmetic import ARITHMETIC
from operators.supporting.layout import LAYOUT
from operators.supporting.norms import NORMS
from operators.supporting.padding import PADDING
from operators.supporting.pooling import POOLING
from operators.supporting.reductions import REDUCTIONS
from operators.supporting.resampling import DROPOUT, RESAMPLING

SUPPORTING_OPS: tuple[OpSpec, ...] = (
    *ACTIVATIONS,
    *SOFTMAX_FAMILY,
    *ARITHMETIC,
    *NORMS,
    *POOLING,
    *PADDING,
    *REDUCTIONS,
    *LAYOUT,
    *RESAMPLING,
    *DROPOUT,
)
