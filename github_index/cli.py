"""Command line (paritybench / popcorn flags): --download, --generate-all, --evaluate-all, report."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from github_index.generate import REPOS_FILE, Selection
from synth_modules.sandbox.isolation import UNSAFE_FLAG, SandboxUnavailableError, require_landlock


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m github_index", description=__doc__)
    actions = parser.add_argument_group("actions (any combination, run in this order)")
    actions.add_argument("--download", action="store_true", help="crawl GitHub and download archives")
    actions.add_argument(
        "--generate-all", action="store_true", help="extract classes and deduce their inputs"
    )
    actions.add_argument(
        "--evaluate-all", action="store_true", help="validate deduced programs in the sandbox"
    )
    actions.add_argument("--report", action="store_true", help="(re)write report.json / report.md only")
    parser.add_argument("--download-dir", default="runs/github/download")
    parser.add_argument("--run-dir", default="runs/github/run")
    parser.add_argument(
        "--synthetic-data-dir", "--synthetic_data_dir", dest="synthetic_data_dir", default=None
    )
    parser.add_argument("--repos-json", default=None, help="repos list (name, url, sha, stars, licenses)")
    parser.add_argument("--compile-mode", default="dynamo")
    parser.add_argument("--backend", default="inductor")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    parser.add_argument("--shard-num", type=int, default=0)
    parser.add_argument("--shard-total", type=int, default=1)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--filter", default=None, help="regex or substring over repo/path:Class")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per program in the sandbox")
    parser.add_argument("--deduce-timeout", type=float, default=60.0, help="seconds of search per class")
    parser.add_argument("--memory-limit-mb", type=int, default=4096)
    parser.add_argument(
        "--degenerate-checks", action="store_true", help="also reject input-independent output"
    )
    parser.add_argument(
        "--allow-graph-breaks",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="count a model Dynamo splits into several graphs as compiled (default; paritybench's rule); "
        "--no-allow-graph-breaks rejects it as graph_break",
    )
    crawl = parser.add_argument_group("crawling (--download)")
    crawl.add_argument("--query", default="language:Python torch.nn stars:>100")
    crawl.add_argument("--max-repos", type=int, default=100)
    crawl.add_argument("--api-url", default="https://api.github.com")
    crawl.add_argument("--token", default=None, help="GitHub token (default: $GITHUB_TOKEN)")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument(
        UNSAFE_FLAG,
        dest="allow_unsandboxed",
        action="store_true",
        help="run repository code even where Landlock is unavailable (prints a warning; see docs/sandbox.md)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not (args.download or args.generate_all or args.evaluate_all or args.report):
        print("nothing to do: pass --download, --generate-all, --evaluate-all or --report", file=sys.stderr)
        return 2
    if not 0 <= args.shard_num < args.shard_total:
        print("--shard-num must be in [0, --shard-total)", file=sys.stderr)
        return 2
    if args.generate_all or args.evaluate_all:
        try:  # repository code runs in both: refuse before any work when it cannot be confined
            require_landlock(args.allow_unsandboxed)
        except SandboxUnavailableError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    download_dir, run_dir = Path(args.download_dir), Path(args.run_dir)
    selection = Selection(args.filter, args.limit, args.shard_num, args.shard_total)
    progress = not args.quiet
    if args.download:
        from github_index.crawl import GitHubClient, crawl_and_download

        client = GitHubClient(args.api_url, token=args.token or os.environ.get("GITHUB_TOKEN"))
        repos = crawl_and_download(client, download_dir, args.query, args.max_repos, args.repos_json)
        print(f"downloaded {len(repos)} repositories into {download_dir}")
    if args.generate_all:
        from github_index.generate import generate_all
        from github_index.sources import discover_repos, load_repos_json

        listed = args.repos_json or (
            download_dir / REPOS_FILE if (download_dir / REPOS_FILE).exists() else None
        )
        repos = discover_repos(download_dir, load_repos_json(listed) if listed else None)
        rows = generate_all(
            repos,
            run_dir,
            selection,
            jobs=args.jobs,
            timeout_s=args.deduce_timeout,
            memory_limit_mb=args.memory_limit_mb,
            progress=progress,
            allow_unsandboxed=args.allow_unsandboxed,
        )
        deduced = sum(1 for r in rows if r.get("deduced"))
        print(f"{len(rows)} nn.Module classes in {len(repos)} sources; {deduced} deduced -> {run_dir}")
    if args.evaluate_all:
        from github_index.evaluate import evaluate_all, sandbox_options

        try:
            options = sandbox_options(
                args.device,
                args.backend,
                args.compile_mode,
                args.timeout,
                args.memory_limit_mb,
                args.degenerate_checks,
                allow_unsandboxed=args.allow_unsandboxed,
                allow_graph_breaks=args.allow_graph_breaks,
            )
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
        data_dir = Path(args.synthetic_data_dir) if args.synthetic_data_dir else run_dir / "accepted"
        counts = evaluate_all(run_dir, data_dir, selection, options, jobs=args.jobs, progress=progress)
        print(
            f"evaluated {counts['evaluated']} (skipped {counts['skipped_done']} done); matched {counts['matched']}"
        )
    from github_index.report import write_report

    report = write_report(run_dir) if run_dir.exists() else None
    if report is not None:
        print(
            f"found {report['modules_found']} extracted {report['extracted']} deduced {report['deduced']} "
            f"eager_ok {report['eager_ok']} compiled_ok {report['compiled_ok']} matched {report['matched']} "
            f"({report['matched_of_found']:.1%} of found) -> {run_dir / 'report.md'}"
        )
    return 0
