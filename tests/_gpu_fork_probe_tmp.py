import os, sys
sys.path.insert(0, ".")
import torch
from synth_modules.sandbox import worker, child  # noqa
from synth_modules.sandbox.warmup import warm_up
warm_up("inductor", (), gpu=True)
pid = os.fork()
if pid == 0:
    print("child bad fork:", torch._C._cuda_isInBadFork(), flush=True); os._exit(0)
os.waitpid(pid, 0)
