"""Where repository code comes from: a repos list plus local folders and archives in a download dir.

A source is a folder, a `.zip` (GitHub's archive format) or a `.tar.gz`/`.tgz` (a PyPI sdist). Archives are read
in place, never unpacked to disk, and a single top-level folder (`repo-<sha>/`, `pkg-1.0/`) is stripped so that
paths look like the repository's own.
"""

from __future__ import annotations

import json
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz")
MAX_FILE_BYTES = 2_000_000  # generated or vendored giants are not model code


@dataclass
class RepoInfo:
    """One repository's identity and provenance (the columns KernelBook rows carry)."""

    name: str
    url: str = ""
    sha: str = ""
    stars: int = 0
    licenses: list[str] = field(default_factory=list)
    path: str = ""  # local folder or archive holding the code

    @property
    def repo_link(self) -> str:
        """Link to the exact tree the code was taken from, when the URL and sha are known."""
        if self.url and self.sha:
            return f"{self.url.rstrip('/')}/tree/{self.sha}"
        return self.url

    @property
    def key(self) -> str:
        """File-system safe name (`owner/name` -> `owner__name`)."""
        return archive_stem(self.name)

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("path")
        return data

    @classmethod
    def from_dict(cls, data: dict) -> RepoInfo:
        licenses = data.get("licenses") or []
        if isinstance(licenses, str):
            licenses = [licenses]
        return cls(
            name=str(data["name"]),
            url=str(data.get("url") or ""),
            sha=str(data.get("sha") or ""),
            stars=int(data.get("stars") or 0),
            licenses=[str(x) for x in licenses],
            path=str(data.get("path") or ""),
        )


def archive_stem(name: str) -> str:
    return name.replace("/", "__")


def load_repos_json(path: str | Path) -> list[RepoInfo]:
    """Read a repos list: a JSON array of objects with name, url, sha, stars, licenses."""
    data = json.loads(Path(path).read_text())
    if isinstance(data, dict):
        data = data.get("repos", [])
    return [RepoInfo.from_dict(item) for item in data]


def write_repos_json(path: str | Path, repos: list[RepoInfo]) -> None:
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps([r.to_dict() for r in repos], indent=2) + "\n")
    tmp.replace(target)


def _source_stem(path: Path) -> str:
    name = path.name
    for suffix in ARCHIVE_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def discover_repos(download_dir: str | Path, repos: list[RepoInfo] | None = None) -> list[RepoInfo]:
    """Pair every folder/archive in `download_dir` with its entry in the repos list (or a bare one).

    An entry matches a source whose stem is its `owner__name` or its bare `name`. Sources without an entry
    are indexed too, named after the file, so a folder of unpacked sdists works without any list.
    """
    root = Path(download_dir)
    by_stem: dict[str, RepoInfo] = {}
    for info in repos or []:
        by_stem.setdefault(info.key, info)
        by_stem.setdefault(info.name.split("/")[-1], info)
    found: list[RepoInfo] = []
    for path in sorted(root.iterdir()):
        if path.name.startswith("."):
            continue
        is_archive = path.is_file() and path.name.endswith(ARCHIVE_SUFFIXES)
        if not (is_archive or path.is_dir()):
            continue
        stem = _source_stem(path)
        info = by_stem.get(stem)
        if info is None:
            info = RepoInfo(name=stem)
        found.append(RepoInfo(**{**asdict(info), "path": str(path)}))
    return found


def _strip_common_root(names: list[str]) -> str:
    """The single top-level folder every member lives under, or ''."""
    tops = {n.split("/", 1)[0] for n in names if "/" in n}
    singles = [n for n in names if "/" not in n]
    if len(tops) == 1 and not singles:
        return tops.pop() + "/"
    return ""


def iter_python_files(repo: RepoInfo) -> Iterator[tuple[str, str]]:
    """Yield (relative path, text) for every `.py` file of a repo source, sorted by path."""
    path = Path(repo.path)
    if path.is_dir():
        for file in sorted(path.rglob("*.py")):
            if file.is_file() and file.stat().st_size <= MAX_FILE_BYTES:
                yield file.relative_to(path).as_posix(), file.read_text(errors="replace")
    elif path.name.endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            infos = [i for i in archive.infolist() if not i.is_dir()]
            prefix = _strip_common_root([i.filename for i in infos])
            for info in sorted(infos, key=lambda i: i.filename):
                if info.filename.endswith(".py") and info.file_size <= MAX_FILE_BYTES:
                    text = archive.read(info).decode(errors="replace")
                    yield info.filename[len(prefix) :], text
    elif path.name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(path, "r:gz") as archive:
            members = [m for m in archive.getmembers() if m.isfile()]
            prefix = _strip_common_root([m.name for m in members])
            for member in sorted(members, key=lambda m: m.name):
                if member.name.endswith(".py") and member.size <= MAX_FILE_BYTES:
                    handle = archive.extractfile(member)
                    if handle is not None:
                        yield member.name[len(prefix) :], handle.read().decode(errors="replace")
    else:
        raise ValueError(f"not a folder or supported archive: {path}")
