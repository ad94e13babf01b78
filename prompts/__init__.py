"""Prompt templates live as TOML files in this folder so that wording changes never touch Python code.

Each file has `system` and `user` templates plus optional `[fragments]` (reusable pieces such as the program
contract) and `[hints]` (short texts keyed by a name). Templates use `string.Template` syntax (`$name`), which
leaves the braces of Python code examples alone; a missing variable is an error, never a silent blank.
"""

from __future__ import annotations

import hashlib
import string
import sys
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = ["PromptTemplate", "RenderedPrompt", "load_prompt", "substitute"]


def substitute(template: str, values: dict[str, str], where: str = "template") -> str:
    """Fill `$name` placeholders; a placeholder without a value raises ValueError naming it."""
    try:
        return string.Template(template).substitute(values)
    except KeyError as error:
        raise ValueError(f"{where} needs a value for ${error.args[0]}") from None


@dataclass(frozen=True)
class RenderedPrompt:
    """A prompt ready to send: chat APIs use system + user, completion APIs and hashing use `text`."""

    system: str
    user: str

    @property
    def text(self) -> str:
        return f"{self.system}\n\n{self.user}" if self.system else self.user

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    version: int
    system: str
    user: str
    fragments: dict[str, str] = field(default_factory=dict)
    hints: dict[str, str] = field(default_factory=dict)

    def render(self, **values: str) -> RenderedPrompt:
        return RenderedPrompt(
            system=substitute(self.system, values, f"prompt {self.name}.system"),
            user=substitute(self.user, values, f"prompt {self.name}.user"),
        )

    def fragment(self, key: str, **values: str) -> str:
        """A named fragment, with its own placeholders filled when values are given."""
        if key not in self.fragments:
            raise KeyError(f"prompt {self.name} has no fragment {key!r}")
        text = self.fragments[key]
        return substitute(text, values, f"prompt {self.name}.fragments.{key}") if values else text

    def hint(self, key: str) -> str:
        return self.hints.get(key, self.hints.get("default", ""))


@cache
def load_prompt(name: str) -> PromptTemplate:
    """Load `prompts/<name>.toml` (shipped as package data)."""
    resource = resources.files(__name__).joinpath(f"{name}.toml")
    if not resource.is_file():
        raise FileNotFoundError(f"no prompt template named {name!r} (expected prompts/{name}.toml)")
    data = tomllib.loads(resource.read_text(encoding="utf-8"))
    missing = [key for key in ("system", "user") if not isinstance(data.get(key), str)]
    if missing:
        raise ValueError(f"prompts/{name}.toml lacks {', '.join(missing)}")
    return PromptTemplate(
        name=name,
        version=int(data.get("version", 1)),
        system=data["system"],
        user=data["user"],
        fragments={str(k): str(v) for k, v in data.get("fragments", {}).items()},
        hints={str(k): str(v) for k, v in data.get("hints", {}).items()},
    )
