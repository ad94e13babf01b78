"""CUDA libdevice functions written with `tl.math` builtins, so Inductor kernels run in Triton's CPU interpreter.

`triton.language.extra.libdevice` only holds stubs that the GPU compiler resolves; under TRITON_INTERPRET=1
they return nothing. Tests that run GPU-captured kernels on CPU bind the kernel module's `libdevice` name to this
module instead. The formulas are the textbook ones; the numeric check that follows uses real tolerances.
"""

import triton
import triton.language as tl


@triton.jit
def exp(x):
    return tl.math.exp(x)


@triton.jit
def log(x):
    return tl.math.log(x)


@triton.jit
def sqrt(x):
    return tl.math.sqrt(x)


@triton.jit
def rsqrt(x):
    return tl.math.rsqrt(x)


@triton.jit
def erf(x):
    return tl.math.erf(x)


@triton.jit
def log1p(x):
    return tl.math.log(1.0 + x)


@triton.jit
def expm1(x):
    return tl.math.exp(x) - 1.0


@triton.jit
def tanh(x):
    return 2.0 / (1.0 + tl.math.exp(-2.0 * x)) - 1.0


@triton.jit
def pow(x, y):
    return tl.math.exp(y * tl.math.log(x))


@triton.jit
def floor(x):
    return tl.math.floor(x)


@triton.jit
def ceil(x):
    return tl.math.ceil(x)


@triton.jit
def abs(x):
    return tl.math.abs(x)


@triton.jit
def isnan(x):
    return x != x
