"""HTTP servers standing in for the LLM (OpenAI protocol) and for Core."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted answer of a fake server.

    ``content`` is the assistant's text (a dict is JSON-encoded); ``body``
    replaces the whole response body; ``delay`` is slept before answering.
    """

    content: Any = None
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class FakeHTTPServer:
    """A threaded HTTP server on 127.0.0.1 that records requests and can go down."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.port = 0
        self._server: _Server | None = None
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        """Start listening (again, on the same port after :meth:`down`)."""
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                request = {
                    "method": self.command,
                    "path": self.path,
                    "json": body,
                    "headers": dict(self.headers),
                    "at": time.time(),
                }
                with owner.lock:
                    owner.requests.append(request)
                reply = owner.respond(request)
                if reply.delay:
                    time.sleep(reply.delay)
                payload = json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._server = _Server(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self) -> None:
        """Stop listening: new connections are refused."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def respond(self, request: dict[str, Any]) -> Reply:
        raise NotImplementedError

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()


def whitespace_tokens(text: str) -> list[int]:
    """A toy tokenizer: one token per whitespace-separated word."""
    return [len(word) for word in text.split()]


class FakeLLM(FakeHTTPServer):
    """An OpenAI-compatible ``/v1/chat/completions`` endpoint with scripted answers.

    Answers come from :attr:`script` first (FIFO), then from :attr:`answers`
    keyed by the requested schema name; probes (``max_tokens=1``) get "pong"
    unless a :attr:`fallback` is set; anything else gets the fallback or a 500.
    """

    def __init__(self) -> None:
        self.script: deque[Reply] = deque()
        self.answers: dict[str, Any] = {}
        self.fallback: Callable[[dict[str, Any]], Reply] | None = None
        #: Serve llama.cpp's ``/tokenize`` (``{"content"}`` -> ``{"tokens"}``); 404 when off.
        self.serves_tokenize = False
        super().__init__()

    def tokenize(self, body: dict[str, Any]) -> Reply:
        if not self.serves_tokenize or "content" not in body:
            return Reply(status=404, body={"error": "not found"})
        return Reply(body={"tokens": whitespace_tokens(body["content"])})

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def push(self, *replies: Reply | dict[str, Any] | str) -> None:
        for reply in replies:
            self.script.append(reply if isinstance(reply, Reply) else Reply(content=reply))

    def chat_requests(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r["path"].endswith("/chat/completions")]

    def respond(self, request: dict[str, Any]) -> Reply:
        if request["path"] == "/tokenize":
            return self.tokenize(request["json"] or {})
        with self.lock:
            reply = self.script.popleft() if self.script else None
        if reply is None:
            body = request["json"] or {}
            name = ((body.get("response_format") or {}).get("json_schema") or {}).get("name")
            if name in self.answers:
                reply = Reply(content=self.answers[name])
            elif body.get("max_tokens") == 1 and self.fallback is None:
                reply = Reply(content="pong")  # a health probe
            elif self.fallback is not None:
                reply = self.fallback(request)
            else:
                reply = Reply(status=500, body={"error": {"message": "no scripted answer"}})
        if reply.body is None:
            content = reply.content
            text = content if isinstance(content, str) else json.dumps(content)
            reply.body = {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": (request["json"] or {}).get("model", "test"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
            }
        return reply


class FakeCore(FakeHTTPServer):
    """A recording Core API: job updates, image tags and open tasks."""

    def __init__(self) -> None:
        self.tasks: dict[int, list[dict[str, Any]]] = {}
        self.failures: deque[int] = deque()
        super().__init__()

    def respond(self, request: dict[str, Any]) -> Reply:
        with self.lock:
            if self.failures:
                return Reply(status=self.failures.popleft(), body={"detail": "scripted failure"})
        path = request["path"]
        if request["method"] == "GET" and path.startswith("/users/"):
            user_id = int(path.split("/")[2])
            return Reply(body=self.tasks.get(user_id, []))
        return Reply(body={"ok": True})

    def job_updates(self, job_id: Any = None) -> list[dict[str, Any]]:
        with self.lock:
            return [
                r["json"]
                for r in self.requests
                if r["method"] == "PATCH" and (job_id is None or r["path"] == f"/jobs/{job_id}")
            ]
