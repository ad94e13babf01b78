"""github_index crawler against a loopback HTTP server standing in for the GitHub API and archive endpoints."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import parse_qs, urlparse

import pytest

from github_index.crawl import CrawlError, GitHubClient, crawl_and_download
from github_index.sources import discover_repos, iter_python_files, load_repos_json

RESET_AT = 1_000_000.0  # the fake clock's epoch seconds when the rate limit resets


def _zip_bytes(name: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as handle:
        handle.writestr(f"{name}-abc/model.py", "from torch import nn\n\nclass M(nn.Module):\n    pass\n")
    return buffer.getvalue()


class FakeGitHub(BaseHTTPRequestHandler):
    calls: ClassVar[list[str]] = []
    search_refusals = 1  # first search request answers 403 rate-limited
    archive_failures: ClassVar[dict[str, int]] = {
        "octo/beta": 2
    }  # archive requests answering 500 before the zip

    def log_message(self, *args):  # keep test output quiet
        pass

    def _json(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urlparse(self.path)
        type(self).calls.append(url.path)
        if url.path == "/search/repositories":
            if type(self).search_refusals > 0:
                type(self).search_refusals -= 1
                self._json(
                    403,
                    {"message": "rate limited"},
                    {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(RESET_AT))},
                )
                return
            page = int(parse_qs(url.query)["page"][0])
            names = {1: ["octo/alpha"], 2: ["octo/beta"]}[page]
            items = [
                {
                    "full_name": n,
                    "html_url": f"https://github.com/{n}",
                    "stargazers_count": 100 - page,
                    "default_branch": "main",
                    "license": {"spdx_id": "MIT"},
                }
                for n in names
            ]
            headers = {}
            if page == 1:
                next_url = f"http://{self.headers['Host']}/search/repositories?page=2"
                headers["Link"] = f'<{next_url}>; rel="next"'
            self._json(200, {"items": items}, headers)
        elif url.path.startswith("/repos/") and "/commits/" in url.path:
            name = url.path.split("/")[2] + "/" + url.path.split("/")[3]
            self._json(200, {"sha": f"sha-{name.split('/')[1]}"})
        elif url.path.startswith("/repos/") and "/zipball/" in url.path:
            name = url.path.split("/")[2] + "/" + url.path.split("/")[3]
            if type(self).archive_failures.get(name, 0) > 0:
                type(self).archive_failures[name] -= 1
                self._json(500, {"message": "try again"})
                return
            body = _zip_bytes(name.split("/")[1])
            self.send_response(200)
            self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self._json(404, {"message": "not found"})


@pytest.fixture
def server():
    FakeGitHub.calls = []
    FakeGitHub.search_refusals = 1
    FakeGitHub.archive_failures = {"octo/beta": 2}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeGitHub)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_search_paginates_waits_for_rate_limit_and_retries_archives(server, tmp_path):
    sleeps: list[float] = []
    client = GitHubClient(server, token="t", sleep=sleeps.append, clock=lambda: RESET_AT - 30, backoff_s=0.01)
    repos = crawl_and_download(client, tmp_path, "language:Python torch", max_repos=10)
    assert [r.name for r in repos] == ["octo/alpha", "octo/beta"]
    assert sleeps[0] == pytest.approx(31.0)  # waited until X-RateLimit-Reset (+1 s)
    assert len([s for s in sleeps[1:] if s < 1]) == 2  # two backoffs for the two archive 500s
    assert FakeGitHub.calls.count("/search/repositories") == 3  # refused, page 1, page 2
    listed = load_repos_json(tmp_path / "repos.json")
    assert [(r.name, r.sha, r.stars, r.licenses) for r in listed] == [
        ("octo/alpha", "sha-alpha", 99, ["MIT"]),
        ("octo/beta", "sha-beta", 98, ["MIT"]),
    ]
    found = discover_repos(tmp_path, listed)
    assert [r.repo_link for r in found] == [
        "https://github.com/octo/alpha/tree/sha-alpha",
        "https://github.com/octo/beta/tree/sha-beta",
    ]
    assert [path for path, _ in iter_python_files(found[1])] == ["model.py"]


def test_persistent_failure_raises_after_retries(server):
    FakeGitHub.archive_failures = {"octo/beta": 99}
    client = GitHubClient(server, sleep=lambda s: None, retries=2)
    with pytest.raises(CrawlError, match="after 3 attempts"):
        client.get(f"{server}/repos/octo/beta/zipball/x")


def test_long_rate_limit_is_an_error_not_a_hang(server):
    client = GitHubClient(server, sleep=lambda s: None, clock=lambda: RESET_AT - 10_000)
    with pytest.raises(CrawlError, match="rate limited"):
        client.search_repositories("q", 5)
