"""synth_modules: synthesize, validate, filter and export PyTorch programs as kernel-writing training data."""

__version__ = "0.1.0"
