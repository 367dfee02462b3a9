"""Context tools over a local git checkout: read a file, find a definition, search code.

The model sees only the code under review: what git tracks.  A file git does not track
(untracked or ignored: a ``.env``, a database, a Redis data folder) is refused as if it
did not exist, and so is anything under ``.git``, a path that resolves outside the
checkout, a symlink, and a file that is not a regular one.  ``git grep`` searches
tracked files only.

Nothing runs through a shell: ``git`` is executed with an argument list, every
path and pattern after ``--`` or ``-e`` so none reads as an option.  Every output
is bounded in bytes while it is read, before it is held, and every answer is
capped.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

_SYMBOL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DEFINITION = (
    r"(def|class|function|func|fn|interface|struct|enum|trait|type|const|let|var)"
    r"[[:space:]]+{symbol}([^A-Za-z0-9_]|$)"
)


class ToolError(Exception):
    """The tool call cannot be answered; the message goes back to the model."""


def _line_number(name: str, value: Any, default: int) -> int:
    """A 1-based line number argument, ``default`` when absent."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ToolError(f"{name} must be an integer")
    return value


@dataclass(frozen=True)
class GitTools:
    """Answers tool calls from the checkout at ``root``.

    Parameters:
      root: the repository's working tree.
      max_chars: the longest answer returned; longer ones are cut with a note.
      timeout: seconds a ``git`` command may take.
      max_output_bytes: the most output of one ``git`` command read before it is stopped.
    """

    root: Path
    max_chars: int = 20_000
    timeout: float = 10.0
    #: Most bytes of one ``git`` command's output read; more is refused.
    max_output_bytes: int = 4 * 1024 * 1024

    def run(self, tool: str, arguments: dict[str, Any]) -> str:
        """Run one tool call.

        Raises:
          ToolError: unknown tool, bad arguments, refused path, no result.
        """
        handlers: dict[str, Callable[..., str]] = {
            "read_file": self.read_file,
            "find_definition": self.find_definition,
            "search_code": self.search_code,
        }
        if tool not in handlers:
            raise ToolError(f"unknown tool {tool!r}")
        try:
            text = handlers[tool](**arguments)
        except TypeError as exc:
            raise ToolError(f"bad arguments for {tool}: {exc}") from None
        return self._cap(text)

    def _cap(self, text: str) -> str:
        if len(text) <= self.max_chars:
            return text
        return text[: self.max_chars] + f"\n[... cut at {self.max_chars} characters ...]"

    def _resolve(self, path: str) -> Path:
        if not isinstance(path, str) or not path or "\x00" in path:
            raise ToolError("path must be a non-empty string")
        if Path(path).is_absolute():
            raise ToolError("path must be relative to the repository")
        root = self.root.resolve()
        target = (root / path).resolve()
        if not target.is_relative_to(root) or ".git" in target.relative_to(root).parts:
            raise ToolError("path is outside the repository")
        relative = target.relative_to(root).as_posix()
        if (root / path).is_symlink() or not self._tracked(relative):
            raise ToolError(f"no such file: {path}")  # untracked, ignored or a link
        if not target.is_file():
            raise ToolError(f"no such file: {path}")
        return target

    def _tracked(self, relative: str) -> bool:
        """Whether git tracks the file ``relative`` (to the checkout's root) as a regular
        file: in the index, mode 100644 or 100755 (not a link, not a submodule)."""
        listed = self._git("ls-files", "--stage", "-z", "--", f":(literal){relative}")
        for entry in listed.split("\0"):
            info, _, name = entry.partition("\t")
            if name == relative and info.split(" ")[0] in ("100644", "100755"):
                return True
        return False

    def _git(self, *args: str, ok: tuple[int, ...] = (0,)) -> str:
        """Run ``git -C root args``, its output read up to :attr:`max_output_bytes`.

        Raises:
          ToolError: when git fails, takes longer than :attr:`timeout` or writes more.
        """
        command = ["git", "-C", str(self.root), *args]
        try:
            process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
            )
        except OSError as exc:
            raise ToolError(f"git could not run: {exc}") from None
        try:
            output, errors = _read_bounded(process, self.max_output_bytes, self.timeout)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
        if process.returncode not in ok:
            raise ToolError(f"git {args[0]} failed: {errors.decode(errors='replace')[:300]}")
        return output.decode("utf-8", errors="replace")

    def read_file(
        self, path: str, start_line: int | None = None, end_line: int | None = None
    ) -> str:
        """A file's text, or lines ``start_line`` to ``end_line`` (1-based, inclusive)."""
        target = self._resolve(path)
        with target.open("rb") as handle:
            raw = handle.read(self.max_chars * 4 + 1)
        if b"\x00" in raw[:8000]:
            raise ToolError(f"{path} is a binary file")
        lines = raw.decode("utf-8", errors="replace").splitlines()
        first = max(1, _line_number("start_line", start_line, 1))
        last = min(len(lines), _line_number("end_line", end_line, len(lines)))
        numbered = [f"{n}: {lines[n - 1]}" for n in range(first, last + 1)]
        return f"{path} lines {first}-{last}:\n" + "\n".join(numbered)

    def _grep(self, *args: str) -> str:
        """``git grep`` over tracked files; empty when nothing matches."""
        return self._git("grep", "-n", "-I", "--no-color", *args, ok=(0, 1))

    def find_definition(self, symbol: str) -> str:
        """Where ``symbol`` is defined, with the 15 lines that follow."""
        if not isinstance(symbol, str) or not _SYMBOL.match(symbol):
            raise ToolError("symbol must be an identifier")
        found = self._grep("-E", "-A", "15", "-e", _DEFINITION.format(symbol=symbol), "--")
        if not found:
            raise ToolError(f"no definition of {symbol} found")
        return found

    def search_code(self, query: str) -> str:
        """Lines containing ``query`` (a fixed string), at most 200."""
        if not isinstance(query, str) or not query.strip():
            raise ToolError("query must be a non-empty string")
        found = self._grep("-F", "--max-count", "20", "-e", query, "--")
        if not found:
            raise ToolError(f"nothing matches {query!r}")
        return "\n".join(found.splitlines()[:200])


def _drain(stream: IO[bytes], kept: list[bytes], keep: int = 64 * 1024) -> None:
    """Read ``stream`` to its end, so its writer never blocks on a full pipe, keeping
    its first ``keep`` bytes or so in ``kept``."""
    for chunk in iter(lambda: stream.read(keep), b""):
        if sum(map(len, kept)) < keep:
            kept.append(chunk)


def _read_bounded(
    process: subprocess.Popen[bytes], limit: int, timeout: float
) -> tuple[bytes, bytes]:
    """``process``'s output and errors, reading at most ``limit`` bytes of output.

    Raises:
      ToolError: when it writes more than ``limit`` bytes or runs past ``timeout`` seconds.
    """
    assert process.stdout is not None and process.stderr is not None
    errors: list[bytes] = []
    reader = threading.Thread(target=_drain, args=(process.stderr, errors), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    output = bytearray()
    while True:
        if time.monotonic() > deadline:
            raise ToolError("the search took too long")
        if not select.select([process.stdout], [], [], 0.1)[0]:
            if process.poll() is not None and not select.select([process.stdout], [], [], 0)[0]:
                break
            continue
        chunk = os.read(process.stdout.fileno(), 64 * 1024)
        if not chunk:
            break
        output += chunk
        if len(output) > limit:
            raise ToolError(f"the answer is over {limit} bytes: narrow the query")
    try:
        process.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        raise ToolError("the search took too long") from None
    reader.join(timeout=1)
    return bytes(output), b"".join(errors)
