"""Crawl GitHub: search repositories (paginated, rate-limit aware) and download zip archives with retries.

Writes `repos.json` (name, url, sha, stars, licenses) beside the archives (`owner__name.zip`), which is the
repos list `--generate-all` reads. The API root is configurable so tests can point it at a loopback server.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from github_index.sources import RepoInfo, archive_stem, load_repos_json, write_repos_json

MAX_RATE_LIMIT_WAIT_S = 900.0


class CrawlError(RuntimeError):
    """A request that still failed after its retries."""


class GitHubClient:
    """Thin GitHub REST client: search, commit sha lookup and archive download."""

    def __init__(
        self,
        api_url: str = "https://api.github.com",
        token: str | None = None,
        retries: int = 4,
        backoff_s: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        timeout_s: float = 60.0,
    ):
        self.api_url = api_url.rstrip("/")
        self.retries = retries
        self.backoff_s = backoff_s
        self.sleep = sleep
        self.clock = clock
        self.timeout_s = timeout_s
        self.session = requests.Session()
        self.session.headers["Accept"] = "application/vnd.github+json"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def _rate_limit_wait(self, response: requests.Response) -> float | None:
        """Seconds to wait when the response is a rate-limit refusal, else None."""
        if response.status_code not in (403, 429):
            return None
        if "Retry-After" in response.headers:
            return float(response.headers["Retry-After"])
        if response.headers.get("X-RateLimit-Remaining") == "0" and "X-RateLimit-Reset" in response.headers:
            return max(0.0, float(response.headers["X-RateLimit-Reset"]) - self.clock()) + 1.0
        return None

    def get(self, url: str, params: dict[str, Any] | None = None, stream: bool = False) -> requests.Response:
        """GET with retries on connection errors and 5xx, and waits on rate limits."""
        last = ""
        for attempt in range(self.retries + 1):
            try:
                response = self.session.get(url, params=params, timeout=self.timeout_s, stream=stream)
            except requests.RequestException as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                wait = self._rate_limit_wait(response)
                if wait is not None:
                    if wait > MAX_RATE_LIMIT_WAIT_S:
                        raise CrawlError(f"rate limited for {wait:.0f}s at {url}")
                    self.sleep(wait)
                    continue
                if response.status_code < 500:
                    response.raise_for_status()
                    return response
                last = f"HTTP {response.status_code}"
            self.sleep(self.backoff_s * 2**attempt)
        raise CrawlError(f"GET {url} failed after {self.retries + 1} attempts: {last}")

    def search_repositories(self, query: str, max_repos: int, per_page: int = 100) -> list[dict[str, Any]]:
        """Search results (stars descending), following pages until `max_repos` or the results end."""
        items: list[dict[str, Any]] = []
        page = 1
        while len(items) < max_repos:
            response = self.get(
                f"{self.api_url}/search/repositories",
                {"q": query, "sort": "stars", "order": "desc", "per_page": min(per_page, 100), "page": page},
            )
            batch = response.json().get("items", [])
            items += batch
            if not batch or "next" not in response.links:
                break
            page += 1
        return items[:max_repos]

    def head_sha(self, full_name: str, branch: str) -> str:
        return self.get(f"{self.api_url}/repos/{full_name}/commits/{branch}").json()["sha"]

    def download_archive(self, full_name: str, sha: str, target: Path) -> Path:
        """Download the zip of `full_name` at `sha` to `target` (temp name, then rename)."""
        response = self.get(f"{self.api_url}/repos/{full_name}/zipball/{sha}", stream=True)
        tmp = target.with_name(target.name + ".part")
        with tmp.open("wb") as handle:
            for chunk in response.iter_content(1 << 16):
                handle.write(chunk)
        tmp.replace(target)
        return target


def repo_from_item(item: dict[str, Any], sha: str) -> RepoInfo:
    license_info = item.get("license") or {}
    spdx = license_info.get("spdx_id") or license_info.get("key")
    return RepoInfo(
        name=item["full_name"],
        url=item.get("html_url", ""),
        sha=sha,
        stars=int(item.get("stargazers_count", 0)),
        licenses=[spdx] if spdx and spdx != "NOASSERTION" else [],
    )


def crawl_and_download(
    client: GitHubClient,
    download_dir: Path,
    query: str,
    max_repos: int,
    repos_json: str | Path | None = None,
) -> list[RepoInfo]:
    """Find repositories (or take them from `repos_json`), download each archive, write repos.json."""
    download_dir.mkdir(parents=True, exist_ok=True)
    if repos_json:
        repos = load_repos_json(repos_json)
    else:
        repos = []
        for item in client.search_repositories(query, max_repos):
            sha = client.head_sha(item["full_name"], item.get("default_branch", "main"))
            repos.append(repo_from_item(item, sha))
    downloaded: list[RepoInfo] = []
    for repo in repos:
        target = download_dir / f"{archive_stem(repo.name)}.zip"
        if not target.exists():
            try:
                client.download_archive(repo.name, repo.sha or "HEAD", target)
            except (CrawlError, requests.HTTPError) as exc:
                print(f"skipping {repo.name}: {exc}")
                continue
        downloaded.append(repo)
    write_repos_json(download_dir / "repos.json", downloaded)
    return downloaded
