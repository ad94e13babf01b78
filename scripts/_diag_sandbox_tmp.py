import sys, os
sys.path.insert(0, ".")
from synth_modules.sandbox import SandboxPool, SandboxOptions, ValidationJob
src = open("tests/fixtures/sandbox_corpus/good_linear_softmax.py").read()
for compile_ in (False, True):
    with SandboxPool(1, SandboxOptions(compile=compile_, timeout_s=200)) as pool:
        v = pool.submit(ValidationJob(id="d", source=src)).result()
        print(compile_, v.ok, v.stage, v.category, v.message[:1500], pool.isolation, flush=True)
