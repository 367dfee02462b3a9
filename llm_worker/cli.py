"""The ``llm-worker`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .errors import CommandError, SettingsError


def _review(args: argparse.Namespace) -> int:
    from .local_review import review_local_diff

    return review_local_diff(
        repo=args.repo, base=args.base, timeout=args.timeout, threads=args.threads
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(
        prog="llm-worker",
        description="Run and inspect the LLM job worker.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    review = commands.add_parser(
        "review",
        help="review a local diff with the LLM and print the comments",
        description=(
            "Review the changes of a local git checkout against BASE: each changed file is "
            "sent to review_chunk, the reference git worker answers the model's tool calls "
            "from the checkout, and the comments are printed. Runs both workers in this "
            "process; needs Redis (or RabbitMQ) and an LLM."
        ),
        epilog="example: llm-worker review --base main --repo .",
    )
    review.add_argument("--base", default="main", help="commit or branch to diff against")
    review.add_argument("--repo", default=".", help="the git checkout (default: .)")
    review.add_argument("--timeout", type=float, default=900, help="seconds to wait in all")
    review.add_argument("--threads", type=int, default=4, help="worker threads")
    review.set_defaults(func=_review)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        status: int = args.func(args)
    except (CommandError, SettingsError) as exc:
        print(f"llm-worker: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
