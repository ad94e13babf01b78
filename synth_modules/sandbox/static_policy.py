"""What a program may touch, as data: the allow-lists the static checks enforce.

One checker (static_checks), several policies. `program` is the program file contract (generated and
LLM-written code): the contract's imports, the torch / nn / F / math / typing names model code uses, and the
attribute names of tensors, modules and Python builtins. `repository` (github_index) extends it with the
pure-Python packages real repositories import (einops, numpy, functools, ...) and leaves attributes of values
free, since real code reads arbitrary config objects. Both come from synth_modules/data/static_allowlist.json,
which scripts/derive_static_allowlist.py regenerates; changes to it are reviewed like code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

ALLOWLIST_FILE = "static_allowlist.json"


@dataclass(frozen=True)
class StaticPolicy:
    """An allow-list. `modules` maps a dotted module path to the names a program may read from it; a name
    whose dotted path is itself a key is a submodule. `value_attributes` None means any attribute of a value
    (not of a module) is allowed, still subject to the checker's fixed floor (dunders, frames, host access)."""

    name: str
    imports: frozenset[str]
    star_imports: frozenset[str]
    dunder_methods: frozenset[str]
    modules: dict[str, frozenset[str]]
    value_attributes: frozenset[str] | None

    def is_module(self, path: str) -> bool:
        return path in self.modules

    def allows(self, module: str, name: str) -> bool:
        return name in self.modules.get(module, frozenset())


def _load_data() -> dict:
    text = resources.files("synth_modules").joinpath("data", ALLOWLIST_FILE).read_text()
    return json.loads(text)["policies"]


def _build(name: str, data: dict[str, dict]) -> StaticPolicy:
    entry = data[name]
    base = _build(entry["extends"], data) if entry.get("extends") else None
    modules = {k: frozenset(v) for k, v in (base.modules if base else {}).items()}
    for key, names in entry["modules"].items():
        modules[key] = modules.get(key, frozenset()) | frozenset(names)
    values = entry.get("value_attributes")
    return StaticPolicy(
        name=name,
        imports=frozenset(entry["imports"]) | (base.imports if base else frozenset()),
        star_imports=frozenset(entry["star_imports"]),
        dunder_methods=frozenset(entry["dunder_methods"]) | (base.dunder_methods if base else frozenset()),
        modules=modules,
        value_attributes=None if values is None else frozenset(values),
    )


@cache
def policy_named(name: str) -> StaticPolicy:
    """The policy called `name` ("program" or "repository"); an unknown name lists the valid ones."""
    data = _load_data()
    if name not in data:
        raise ValueError(f"unknown static policy {name!r}; choose from {sorted(data)}")
    return _build(name, data)


POLICY_NAMES = ("program", "repository")
