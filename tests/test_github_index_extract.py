"""github_index extraction: sources, nn.Module discovery through aliases and chains, dependency closures."""

from __future__ import annotations

import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest

from github_index.closure import STUB_CLASS, build_closure
from github_index.extract import extract_repo
from github_index.generate import static_verdict
from github_index.sources import (
    RepoInfo,
    discover_repos,
    iter_python_files,
    load_repos_json,
    write_repos_json,
)
from github_index.symbols import RepoIndex, RepoSymbol

FIXTURES = Path(__file__).parent / "fixtures" / "github_repos"
TOY = FIXTURES / "toy_models"


@pytest.fixture(scope="module")
def toy():
    extraction = extract_repo(RepoInfo(name="toy_models", path=str(TOY)))
    return {(c.path, c.class_name): c for c in extraction.classes}


def test_finds_modules_through_aliases_and_base_chains(toy):
    found = sorted(toy)
    assert ("toy/layers.py", "Block") in found  # base is `Base = nn.Module`
    assert ("toy/layers.py", "DeepBlock") in found  # base is Block
    assert ("toy/layers.py", "Mixer") in found  # base is `tnn.Module` (import torch.nn as tnn)
    assert all(name != "Plain" for _, name in found)
    assert len(found) == 9


def test_same_named_classes_in_different_files_stay_distinct(toy):
    first = toy[("toy/attention.py", "Attention")]
    second = toy[("toy/other/attention.py", "Attention")]
    assert first.entry_point != second.entry_point
    assert "nn.Conv2d" in second.source and "nn.Conv2d" not in first.source
    # The cross-file dependency (Block, its alias base, the helper and the constant) was inlined.
    assert "class Block(Base)" in first.source
    assert "Base = nn.Module" in first.source
    assert "def double_gelu" in first.source and "HIDDEN = 8" in first.source
    assert f"class {first.entry_point}(nn.Module)" in first.source


def test_closure_keeps_allowed_imports_and_stubs_the_rest(toy):
    mixer = toy[("toy/layers.py", "Mixer")]
    assert "from einops import rearrange" in mixer.source
    assert "import torch.nn as tnn" in mixer.source or "from torch import nn as tnn" in mixer.source
    assert mixer.missing == []
    timm = toy[("toy/thirdparty.py", "UsesTimm")]
    assert timm.missing == ["timm.layers.DropPath"]
    assert f"DropPath = {STUB_CLASS}('timm.layers.DropPath')" in timm.source
    pretrained = toy[("toy/pretrained.py", "TinyNet")]
    assert pretrained.missing == ["torch.hub.load_state_dict_from_url"]  # weight downloads never import
    for item in toy.values():
        compile(item.source, item.entry_point, "exec")
        ok, category, message = static_verdict(item.source, item.entry_point)
        assert ok, (item.class_name, category, message)


def test_functions_named_like_globals_are_not_confused_with_locals():
    source = (
        "import torch\nfrom torch import nn\n\nscale = 3\n\n"
        "def scale_fn(x, scale=2):\n    return x * scale\n\n"
        "class M(nn.Module):\n    def forward(self, x):\n        scale = 5\n        return scale_fn(x) + scale\n"
    )
    index = RepoIndex([("m.py", source)])
    closure = build_closure(index, RepoSymbol("m", "M"), "M_1")
    assert "scale = 3" not in closure.source  # only ever shadowed, so not a dependency
    assert "def scale_fn" in closure.source


def test_name_clash_between_files_is_renamed():
    files = [
        ("a.py", "def act(x):\n    return x + 1\n"),
        ("b.py", "def act(x):\n    return x * 2\n"),
        (
            "m.py",
            "from torch import nn\nfrom a import act as act_a\nfrom b import act\n\n"
            "class M(nn.Module):\n    def forward(self, x):\n        return act_a(x) + act(x)\n",
        ),
    ]
    closure = build_closure(RepoIndex(files), RepoSymbol("m", "M"), "M_1")
    namespace: dict = {}
    exec(compile(closure.source, "m", "exec"), namespace)
    import torch

    x = torch.ones(2)
    assert torch.equal(namespace["M_1"]()(x), (x + 1) + (x * 2))


def _pack(kind: str, target: Path) -> Path:
    if kind == "zip":
        archive = target / "toy_models.zip"
        with zipfile.ZipFile(archive, "w") as handle:
            for file in sorted(TOY.rglob("*.py")):
                handle.write(file, f"toy_models-0123abc/{file.relative_to(TOY).as_posix()}")
    else:
        archive = target / "toy_models.tar.gz"
        with tarfile.open(archive, "w:gz") as handle:
            handle.add(TOY, arcname="toy_models-1.0")
    return archive


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_archives_read_like_the_folder(tmp_path, kind):
    _pack(kind, tmp_path)
    write_repos_json(
        tmp_path / "repos.json",
        [RepoInfo("someone/toy_models", "https://github.com/someone/toy_models", "0123abc", 42, ["MIT"])],
    )
    repos = discover_repos(tmp_path, load_repos_json(tmp_path / "repos.json"))
    assert len(repos) == 1 and repos[0].stars == 42 and repos[0].licenses == ["MIT"]
    assert repos[0].repo_link == "https://github.com/someone/toy_models/tree/0123abc"
    folder = dict(iter_python_files(RepoInfo("x", path=str(TOY))))
    assert dict(iter_python_files(repos[0])) == folder


def test_unparsable_files_are_reported_not_fatal(tmp_path):
    shutil.copytree(TOY, tmp_path / "repo")
    (tmp_path / "repo" / "py2.py").write_text("print 'hello'\n")
    extraction = extract_repo(RepoInfo("repo", path=str(tmp_path / "repo")))
    assert [path for path, _ in extraction.syntax_errors] == ["py2.py"]
    assert len(extraction.classes) == 9
