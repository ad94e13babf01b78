"""Popcorn-style argument parsing and fail-fast config validation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from synth_modules.cli.args import config_from_argv, parse_generate_args
from synth_modules.config import ConfigError

REPO = Path(__file__).resolve().parent.parent


def test_preset_and_overrides_in_any_order(tmp_path):
    out = str(tmp_path / "o")
    a = config_from_argv(
        [".parallel", "num_total_samples=7", f"output_dir={out}", "num_core_ops_range=[1,3]"]
    )
    b = config_from_argv(
        [f"--output_dir={out}", "num_core_ops_range=[1,3]", "--num_total_samples=7", ".parallel"]
    )
    assert a == b
    assert a.num_total_samples == 7
    assert a.num_core_ops_range == [1, 3]


def test_single_debug_preset(tmp_path):
    config = config_from_argv([".single_debug", f"output_dir={tmp_path}"])
    assert config.num_total_samples == 1
    assert config.num_worker == 1
    assert config.verbose is True
    assert config.debug_dir


def test_value_types(tmp_path):
    preset, overrides = parse_generate_args(
        ["p_value=0.25", "seed=3", "verbose=true", "base_url=none", "--force"]
    )
    assert preset is None
    assert overrides == {"p_value": 0.25, "seed": 3, "verbose": True, "base_url": None, "force": True}


def test_sandbox_keys_reach_the_sandbox_options(tmp_path):
    from synth_modules.executors import sandbox_options

    default = sandbox_options(config_from_argv([f"output_dir={tmp_path}"]))
    assert default.cpu_vectorize is False and default.batch_cpu_kernels is True
    chosen = sandbox_options(
        config_from_argv(
            ["cpu_vectorize=true", "timeout_s=30", "memory_limit_mb=2048", f"output_dir={tmp_path}"]
        )
    )
    assert (chosen.cpu_vectorize, chosen.timeout_s, chosen.memory_limit_mb) == (True, 30.0, 2048)
    with pytest.raises(ConfigError, match="cpu_vectorize='maybe' is not valid"):
        config_from_argv(["cpu_vectorize=maybe", f"output_dir={tmp_path}"])


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["p_value=0"], "p_value must be in (0, 1]"),
        (["p_value=1.5"], "p_value must be in (0, 1]"),
        (["num_core_ops_range=[3,1]"], "min 3 > max 1"),
        (["num_supporting_ops_range=[2]"], "must be [min,max]"),
        (["num_worker=0"], "num_worker must be >= 1"),
        (["model_name=not-a-model"], "unknown model_name"),
        (["model_name=local"], "needs base_url"),
        (["num_total_sample=10"], "did you mean num_total_samples"),
        (["num_worker=two"], "num_worker='two' is not valid"),
        ([".nonexistent"], "unknown preset"),
        ([".parallel", ".single_debug"], "two presets"),
        (["seed=1", "seed=2"], "seed is given twice"),
        (["justaword"], "cannot parse argument"),
        (["sampling=random"], "sampling must be"),
        (["contamination=l3"], "contamination must be"),
    ],
)
def test_invalid_config_is_one_clear_error(args, fragment, tmp_path):
    with pytest.raises(ConfigError) as info:
        config_from_argv([*args, f"output_dir={tmp_path}"])
    assert fragment in str(info.value)


def test_unwritable_output_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="not a directory"):
        config_from_argv([f"output_dir={blocker}/sub"])


def test_script_rejects_bad_config_before_any_work(tmp_path):
    """Run from another working directory: the script finds its package and fails fast, writing nothing."""
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "generate_synth_torch.py"), "p_value=7", f"output_dir={out}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "p_value must be in (0, 1]" in proc.stderr
    assert proc.stderr.count("\n") == 1  # one clear line, no traceback
    assert not out.exists()


def test_validate_takes_the_same_sandbox_settings():
    import argparse

    from synth_modules.cli.validate import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["prog.py", "--timeout", "9", "--cpu-vectorize"])
    assert (args.timeout_s, args.cpu_vectorize) == (9.0, True)
    assert parser.parse_args(["prog.py"]).cpu_vectorize is False


@pytest.mark.parametrize(
    "model_name, unset, fragment",
    [
        ("gpt-4o-mini", ["OPENAI_API_KEY"], "set OPENAI_API_KEY"),
        ("gemini-2.5-flash", ["GEMINI_API_KEY", "GOOGLE_API_KEY"], "set GEMINI_API_KEY (or GOOGLE_API_KEY)"),
        ("claude-sonnet-4-5", ["ANTHROPIC_API_KEY"], "set ANTHROPIC_API_KEY"),
        ("grok-4", ["XAI_API_KEY"], "set XAI_API_KEY"),
    ],
)
def test_a_missing_api_key_is_one_error_before_any_work(model_name, unset, fragment, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in unset}
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "generate_synth_torch.py"), f"model_name={model_name}",
         "num_total_samples=1", f"output_dir={out}"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert fragment in proc.stderr and "API key" in proc.stderr
    assert proc.stderr.count("\n") == 1  # one clear line, no traceback
    assert not out.exists()  # refused before the run directory was made
