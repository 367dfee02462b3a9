"""Context tools over a local git checkout: read a file, find a definition, search code.

Nothing runs through a shell: ``git`` is executed with an argument list.
Paths that resolve outside the repository are refused and every answer is
capped.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    """

    root: Path
    max_chars: int = 20_000
    timeout: float = 10.0

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
        if not target.is_file():
            raise ToolError(f"no such file: {path}")
        return target

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
        command = ["git", "-C", str(self.root), "grep", "-n", "-I", "--no-color", *args]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=self.timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise ToolError("the search took too long") from None
        if done.returncode == 1:
            return ""
        if done.returncode != 0:
            raise ToolError(f"git grep failed: {done.stderr.strip()[:300]}")
        return done.stdout

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
