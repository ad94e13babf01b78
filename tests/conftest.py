"""Test-session setup shared by every test module."""

from __future__ import annotations

import os

from synth_modules.sandbox import landlock
from synth_modules.sandbox.isolation import UNSAFE_ENV

# On a kernel without Landlock the sandbox refuses to run untrusted code. The suite then runs with the explicit
# unsafe switch (and prints the warning); tests/test_sandbox_isolation.py shows the refusal, and the tests whose
# containment needs Landlock skip.
if landlock.abi_version() == 0:
    os.environ[UNSAFE_ENV] = "1"
