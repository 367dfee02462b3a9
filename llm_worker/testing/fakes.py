"""HTTP servers standing in for an LLM (OpenAI, Anthropic and Ollama protocols) and for Core.

Used by the tests, the benchmarks and outage drills; not by the worker itself.
"""

from __future__ import annotations

import json
import socket
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
    ``usage`` sets the tokens an answer of ``content`` reports, in each protocol's
    shape: ``prompt_tokens`` (every prompt token), ``completion_tokens`` and
    ``cached_tokens`` (those of the prompt read from a cache); default 11 + 7, none cached.
    """

    content: Any = None
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    usage: dict[str, int] | None = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # hundreds of clients may connect at once


class FakeHTTPServer:
    """A threaded HTTP server on 127.0.0.1 (or ``host``) that records requests and can go
    down."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        #: The address it listens on: loopback, or a test network's own address.
        self.host = host
        #: ``0`` picks a free port; a test that takes the server down and up again while
        #: clients reconnect gives one outside the ephemeral range, which no client's own
        #: outgoing connection can take meanwhile.
        self.port = port
        self._server: _Server | None = None
        self.up()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def up(self) -> None:
        """Start listening (again, on the same port after :meth:`down`)."""
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep connections alive, as real servers do
            disable_nagle_algorithm = True

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
                    "peer": self.client_address,  # one per connection
                    "client": self.client_address[0],
                }
                with owner.lock:
                    owner.requests.append(request)
                owner.enter(request)
                written = False
                try:
                    reply = owner.respond(request)
                    request["status"] = reply.status
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
                        written = True
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                finally:
                    owner.leave(request)
                if written:
                    owner.answered(request, self.connection)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._server = _Server((self.host, self.port), Handler)
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

    def enter(self, request: dict[str, Any]) -> None:
        """Called when a request arrives, before :meth:`respond`."""

    def leave(self, request: dict[str, Any]) -> None:
        """Called once its answer was sent (or the client went away)."""

    def answered(self, request: dict[str, Any], connection: socket.socket) -> None:
        """Called after :meth:`leave` once the whole answer was written to ``connection``
        (a subclass may wait there for the client's host to acknowledge it); the next
        request on that connection waits for it to return."""

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()


def whitespace_tokens(text: str) -> list[int]:
    """A toy tokenizer: one token per whitespace-separated word."""
    return [len(word) for word in text.split()]


#: Request paths of the three protocols the fake LLM speaks.
CHAT_PATHS = ("/v1/chat/completions", "/v1/messages", "/api/chat")


def _is_probe(body: dict[str, Any]) -> bool:
    return body.get("max_tokens") == 1 or (body.get("options") or {}).get("num_predict") == 1


class FakeLLM(FakeHTTPServer):
    """An LLM speaking three protocols with scripted answers: OpenAI chat
    completions (``/v1/chat/completions``), Anthropic messages
    (``/v1/messages``, ``/v1/messages/count_tokens``) and Ollama
    (``/api/chat``).

    Answers come from :attr:`script` first (FIFO), then from :attr:`answers`
    keyed by the requested schema name (OpenAI); probes get "pong" unless a
    :attr:`fallback` is set; anything else gets the fallback or a 500.
    """

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self.script: deque[Reply] = deque()
        self.answers: dict[str, Any] = {}
        self.fallback: Callable[[dict[str, Any]], Reply] | None = None
        #: Serve llama.cpp's ``/tokenize`` (``{"content"}`` -> ``{"tokens"}``); 404 when off.
        self.serves_tokenize = False
        #: Completions in flight above which the server answers :attr:`busy_reply` (0: none).
        self.concurrency_limit = 0
        #: The answer above the limit: a 429, with whatever ``Retry-After`` a test wants.
        self.busy_reply = Reply(status=429, body={"error": {"message": "server busy"}})
        #: Completions in flight now, the most seen at once, and busy answers given.
        self.in_flight = 0
        self.peak_in_flight = 0
        self.busy_answers = 0
        #: Seconds each tokenize request takes.
        self.tokenize_delay = 0.0
        super().__init__(port, host)

    def reset_counters(self) -> None:
        """Forget the in-flight peak and the busy answers."""
        with self.lock:
            self.peak_in_flight = self.in_flight
            self.busy_answers = 0

    def enter(self, request: dict[str, Any]) -> None:
        if request["path"] not in CHAT_PATHS or _is_probe(request["json"] or {}):
            return
        with self.lock:
            self.in_flight += 1
            request["counted"] = True
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            if self.concurrency_limit and self.in_flight > self.concurrency_limit:
                request["over_limit"] = True
                self.busy_answers += 1

    def leave(self, request: dict[str, Any]) -> None:
        if request.get("counted"):
            with self.lock:
                self.in_flight -= 1

    def tokenize(self, body: dict[str, Any]) -> Reply:
        if not self.serves_tokenize or "content" not in body:
            return Reply(status=404, body={"error": "not found"}, delay=self.tokenize_delay)
        return Reply(body={"tokens": whitespace_tokens(body["content"])}, delay=self.tokenize_delay)

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def push(self, *replies: Reply | dict[str, Any] | str) -> None:
        for reply in replies:
            self.script.append(reply if isinstance(reply, Reply) else Reply(content=reply))

    def chat_requests(self) -> list[dict[str, Any]]:
        """Completion requests of any protocol (not probes of the tokenizer)."""
        with self.lock:
            return [r for r in self.requests if r["path"] in CHAT_PATHS]

    def _choose(self, body: dict[str, Any]) -> Reply:
        with self.lock:
            reply = self.script.popleft() if self.script else None
        if reply is not None:
            return reply
        name = ((body.get("response_format") or {}).get("json_schema") or {}).get("name")
        if name in self.answers:
            return Reply(content=self.answers[name])
        if _is_probe(body) and self.fallback is None:
            return Reply(content="pong")
        if self.fallback is not None:
            return self.fallback({"json": body})
        return Reply(status=500, body={"error": {"message": "no scripted answer"}})

    def respond(self, request: dict[str, Any]) -> Reply:
        path, body = request["path"], request["json"] or {}
        if request["method"] == "GET":  # model lists: /v1/models, Ollama's /api/tags
            if self.fallback is not None:
                return self.fallback({"json": {}})
            return Reply(body={"object": "list", "data": [{"id": "test"}], "models": []})
        if path in ("/tokenize", "/extras/tokenize"):
            return self.tokenize(body)
        if path == "/v1/messages/count_tokens":
            text = json.dumps(body.get("messages")) + str(body.get("system", ""))
            return Reply(body={"input_tokens": len(text) // 4})
        if request.get("over_limit"):
            busy = self.busy_reply
            return Reply(status=busy.status, body=busy.body, headers=dict(busy.headers))
        reply = self._choose(body)
        if reply.body is None:
            content = reply.content
            text = content if isinstance(content, str) else json.dumps(content)
            reply.body = _wrap(path, body.get("model", "test"), text, reply.usage or {})
        return reply


def _wrap(path: str, model: str, text: str, usage: dict[str, int]) -> dict[str, Any]:
    """A successful answer ``text`` in the protocol of ``path`` with the tokens of
    ``usage`` (see :class:`Reply`; default 11 + 7, none cached)."""
    prompt = usage.get("prompt_tokens", 11)
    completion = usage.get("completion_tokens", 7)
    cached = usage.get("cached_tokens", 0)
    if path == "/v1/messages":
        tokens = {"input_tokens": prompt - cached, "output_tokens": completion}
        if cached:
            tokens["cache_read_input_tokens"] = cached
        return {
            "id": "msg_test",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "usage": tokens,
        }
    if path == "/api/chat":
        return {
            "model": model,
            "message": {"role": "assistant", "content": text},
            "done": True,
            "prompt_eval_count": prompt,
            "eval_count": completion,
        }
    counts: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cached:
        counts["prompt_tokens_details"] = {"cached_tokens": cached}
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": counts,
    }


class FakeCore(FakeHTTPServer):
    """A recording Core API: job updates, image tags and open tasks."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self.tasks: dict[int, list[dict[str, Any]]] = {}
        #: Scripted failures, answered first: a status (with a small JSON body) or a Reply.
        self.failures: deque[int | Reply] = deque()
        #: Seconds every answer takes (a slow Core).
        self.delay = 0.0
        super().__init__(port, host)

    def respond(self, request: dict[str, Any]) -> Reply:
        with self.lock:
            if self.failures:
                failure = self.failures.popleft()
                if isinstance(failure, Reply):
                    return failure
                return Reply(status=failure, body={"detail": "scripted failure"}, delay=self.delay)
        path = request["path"]
        if request["method"] == "GET" and path.startswith("/users/"):
            user_id = int(path.split("/")[2])
            return Reply(body=self.tasks.get(user_id, []), delay=self.delay)
        return Reply(body={"ok": True}, delay=self.delay)

    def job_updates(self, job_id: Any = None) -> list[dict[str, Any]]:
        with self.lock:
            return [
                r["json"]
                for r in self.requests
                if r["method"] == "PATCH" and (job_id is None or r["path"] == f"/jobs/{job_id}")
            ]


class SlowHTTPServer:
    """A hostile HTTP server on 127.0.0.1 that never finishes an answer in time.

    Modes:
      ``trickle``: answers ``200`` with a ``Content-Length`` of ``length`` and then
        sends the body one byte every ``interval`` seconds;
      ``trickle_headers``: sends the status line and headers one byte at a time;
      ``hang``: reads the request and never answers.

    Every connection is served on its own thread until the client goes away or
    :meth:`down` is called; :attr:`connections` counts them.
    """

    def __init__(self, mode: str = "trickle", *, interval: float = 0.3, length: int = 1000):
        import socket

        self.mode, self.interval, self.length = mode, interval, length
        self.connections = 0
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                continue
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _drip(self, conn: Any, data: bytes) -> None:
        for index in range(len(data)):
            if self._stop.wait(self.interval):
                return
            conn.sendall(data[index : index + 1])

    def _serve(self, conn: Any) -> None:
        body = b'{"a": "' + b"x" * max(0, self.length - 9) + b'"}'
        head = (
            f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        try:
            conn.settimeout(5)
            conn.recv(65_536)
            if self.mode == "hang":
                self._stop.wait()
            elif self.mode == "trickle_headers":
                self._drip(conn, head + body)
            else:
                conn.sendall(head)
                self._drip(conn, body)
        except OSError:
            pass
        finally:
            conn.close()

    def down(self) -> None:
        """Stop accepting and drop every connection."""
        self._stop.set()
        self._listener.close()
