"""Size profiles and the rescaling step: one program at the cpu and gpu sizes.

    from synth_modules.scaling import GPU, scale_source, estimate_source
    scaled = scale_source(source, GPU, lambda text: estimate_source(text, entry_point), dtype="bfloat16")

`constants` finds a program's size constants and rewrites them, `estimate` measures a program's FLOPs, bytes
and memory on the meta device, `profiles` holds the budgets, `search` grows the sizes.
"""

from synth_modules.scaling.constants import SizeConstant, find_size_constants, rewrite_constants, role_of
from synth_modules.scaling.estimate import Estimate, estimate_source
from synth_modules.scaling.profiles import CPU, GPU, PROFILES, Profile, get_profile
from synth_modules.scaling.search import Scaled, scale_source

__all__ = [
    "CPU",
    "GPU",
    "PROFILES",
    "Estimate",
    "Profile",
    "Scaled",
    "SizeConstant",
    "estimate_source",
    "find_size_constants",
    "get_profile",
    "rewrite_constants",
    "role_of",
    "scale_source",
]
