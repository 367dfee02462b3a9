"""The reference git worker's tools show the model only what git tracks, bounded.

A prompt-injected diff can make the model ask for any path; these tests ask for what
it must never get: untracked and ignored files, ``.git``, paths out of the checkout,
links, option-like arguments and output too large to hold.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gitworker.tools import GitTools, ToolError
from tests.support import git, make_git_repo

SECRET = "OPENAI_API_KEY=sk-secret-value"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A checkout with a tracked app.py, an ignored .env, an untracked notes file, a link
    out of the checkout and a tracked link to a tracked file."""
    repo = make_git_repo(tmp_path / "repo")
    (repo / ".gitignore").write_text(".env\ndata/\n")
    git(repo, "add", ".gitignore")
    (repo / "inside-link").symlink_to("app.py")
    git(repo, "add", "inside-link")
    git(repo, "commit", "-q", "-m", "ignore and link")
    (repo / ".env").write_text(SECRET + "\n")
    (repo / "data").mkdir()
    (repo / "data" / "appendonly.aof").write_text(SECRET + "\n")
    (repo / "notes.txt").write_text(SECRET + "\n")
    (tmp_path / "outside.txt").write_text(SECRET + "\n")
    (repo / "outside-link").symlink_to(tmp_path / "outside.txt")
    return repo


def test_a_tracked_file_is_read(repo):
    answer = GitTools(repo).run("read_file", {"path": "app.py", "start_line": 1, "end_line": 1})
    assert answer.startswith("app.py lines 1-1:\n1: ")


@pytest.mark.parametrize(
    "path",
    [
        ".env",  # ignored
        "data/appendonly.aof",  # ignored folder
        "notes.txt",  # untracked
        ".git/config",
        ".git/HEAD",
        "outside-link",  # an untracked link out of the checkout
        "inside-link",  # a tracked link: git tracks the link, not the file
        "../outside.txt",
        "./../repo/.env",
        "data/../.env",
    ],
)
def test_what_git_does_not_track_is_refused_as_absent(repo, path):
    with pytest.raises(ToolError) as refused:
        GitTools(repo).run("read_file", {"path": path})
    assert SECRET not in str(refused.value)
    assert "no such file" in str(refused.value) or "outside the repository" in str(refused.value)


def test_an_absolute_path_is_refused(repo):
    with pytest.raises(ToolError, match="relative"):
        GitTools(repo).run("read_file", {"path": str(repo / "app.py")})


def test_searches_never_see_untracked_or_ignored_files(repo):
    tools = GitTools(repo)
    for tool, arguments in (
        ("search_code", {"query": "sk-secret-value"}),
        ("search_code", {"query": "OPENAI_API_KEY"}),
    ):
        with pytest.raises(ToolError, match="nothing matches"):
            tools.run(tool, arguments)


@pytest.mark.parametrize(
    "option", ["--output={out}", "-O{out}", "--open-files-in-pager=touch {out}"]
)
def test_option_like_queries_are_searched_for_as_text(repo, tmp_path, option):
    out = tmp_path / "written"
    with pytest.raises(ToolError, match="nothing matches"):
        GitTools(repo).run("search_code", {"query": option.format(out=out)})
    assert not out.exists()


@pytest.mark.parametrize("path", ["-n", "--stage", ":(glob)*"])
def test_option_like_or_magic_paths_are_plain_names(repo, path):
    with pytest.raises(ToolError, match="no such file"):
        GitTools(repo).run("read_file", {"path": path})


def test_an_answer_too_large_to_hold_is_refused_while_read(repo):
    (repo / "big.py").write_text("const needle = 1\n" * 50_000)
    git(repo, "add", "big.py")
    tools = GitTools(repo, max_output_bytes=64 * 1024)
    with pytest.raises(ToolError, match="over 65536 bytes"):
        tools.run("find_definition", {"symbol": "needle"})  # -A 15 for every line: megabytes
