"""Program analysis: op sequences read from code, op-name normalization, canonical forms, KernelBench facts."""
