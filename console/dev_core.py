"""``llm-worker dev-core``: a Core for trying the worker and for integration tests.

It serves the Core API contract of the manual (docs/core-api.md) on 127.0.0.1 and
keeps every request in SQLite:

- ``PATCH /jobs/{job_id}``: the job's state (status, result, error, usage with its cost);
- ``PUT /images/{image_id}/tags``: an image's tags;
- ``GET /users/{user_id}/tasks?status=open``: the user's open tasks, seeded from a
  JSON file (``{"42": [{"id": 5, "title": "Plan the trip", "description": null}]}``)
  or with ``POST /users/{user_id}/tasks``.

``GET /`` shows the jobs on a small web page, ``GET /api/jobs`` as JSON, and
``llm-worker jobs`` in the terminal; ``GET /openapi.json`` is the contract as
OpenAPI.  It is not a production Core: no authentication (a ``CORE_API_TOKEN`` sent
is accepted and ignored), one file.
"""

from __future__ import annotations

import html
import json
import sqlite3
import threading
import time
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from console.ops.dashboard import host_name, is_loopback

#: The database file ``dev-core`` and ``jobs`` use by default.
DEFAULT_DB = "dev-core.sqlite3"
#: The default port (the worker's ``CORE_API_URL`` default is http://localhost:8000).
DEFAULT_PORT = 8000
#: Largest request body the dev Core reads, in bytes.
MAX_BODY_BYTES = 1_048_576
#: The Core API contract as OpenAPI, kept with the manual; served at ``/openapi.json``.
OPENAPI_FILE = Path(__file__).resolve().parent.parent / "docs" / "core-api.openapi.json"

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY, at REAL, method TEXT, path TEXT, body TEXT
);
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY, status TEXT, result TEXT, error TEXT, usage TEXT,
    updates INTEGER, first_at REAL, updated_at REAL
);
CREATE TABLE IF NOT EXISTS image_tags (image_id TEXT PRIMARY KEY, tags TEXT, updated_at REAL);
CREATE TABLE IF NOT EXISTS tasks (
    user_id INTEGER, id TEXT, title TEXT, description TEXT, PRIMARY KEY (user_id, id)
);
"""


class DevCoreStore:
    """The dev Core's SQLite database, safe to share between request threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.executescript(SCHEMA)
        self._db.commit()

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def log(self, method: str, path: str, body: Any) -> None:
        """Keep one request."""
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO requests (at, method, path, body) VALUES (?, ?, ?, ?)",
                (time.time(), method, path, json.dumps(body)),
            )

    def update_job(self, job_id: str, update: dict[str, Any]) -> None:
        """Store a job's state (the last update wins; updates are counted)."""
        now = time.time()
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO jobs VALUES (?, ?, ?, ?, ?, 1, ?, ?) ON CONFLICT(job_id) DO UPDATE "
                "SET status=excluded.status, result=excluded.result, error=excluded.error, "
                "usage=excluded.usage, updates=updates+1, updated_at=excluded.updated_at",
                (
                    job_id,
                    str(update.get("status")),
                    json.dumps(update.get("result")),
                    update.get("error"),
                    json.dumps(update.get("usage")),
                    now,
                    now,
                ),
            )

    def put_tags(self, image_id: str, tags: Any) -> None:
        """Store an image's tags."""
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO image_tags VALUES (?, ?, ?)",
                (image_id, json.dumps(tags), time.time()),
            )

    def add_task(self, user_id: int, task: dict[str, Any]) -> None:
        """Add (or replace) an open task of ``user_id``.

        Raises:
          ValueError: when the task has no ``id`` or ``title``.
        """
        if "id" not in task or not isinstance(task.get("title"), str):
            raise ValueError("a task needs an id and a title")
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO tasks VALUES (?, ?, ?, ?)",
                (user_id, json.dumps(task["id"]), task["title"], task.get("description")),
            )

    def seed(self, path: str | Path) -> int:
        """Add the tasks of a JSON file ``{"user_id": [task, ...]}``; return how many.

        Raises:
          ValueError: on a file of another shape.
        """
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError('the tasks file must hold {"user_id": [task, ...]}')
        count = 0
        for user_id, tasks in data.items():
            for task in tasks:
                self.add_task(int(user_id), task)
                count += 1
        return count

    def open_tasks(self, user_id: int) -> list[dict[str, Any]]:
        """The open tasks of ``user_id`` as Core lists them."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, title, description FROM tasks WHERE user_id = ? ORDER BY rowid",
                (user_id,),
            ).fetchall()
        return [{"id": json.loads(i), "title": t, "description": d} for i, t, d in rows]

    def jobs(self, limit: int = 200) -> list[dict[str, Any]]:
        """The most recently updated jobs first, each with its cost (``cost_usd``, from its
        usage: ``None`` when not every call was priced)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT job_id, status, result, error, usage, updates, updated_at FROM jobs "
                "ORDER BY updated_at DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [
            {
                "job_id": job_id,
                "status": status,
                "result": json.loads(result),
                "error": error,
                "usage": json.loads(usage),
                "cost_usd": job_cost(json.loads(usage)),
                "updates": updates,
                "updated_at": updated_at,
            }
            for job_id, status, result, error, usage, updates, updated_at in rows
        ]


def job_cost(usage: Any) -> float | None:
    """The ``cost_usd`` of a job's usage, ``None`` when it has none (unpriced calls)."""
    cost = usage.get("cost_usd") if isinstance(usage, dict) else None
    return float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None


def cost_text(job: dict[str, Any]) -> str:
    """A job's cost as shown: ``$0.000151``, ``unpriced`` (some call's cost is unknown) or
    ``-`` (no call)."""
    if job["cost_usd"] is not None:
        return f"${job['cost_usd']:.6f}"
    usage = job["usage"] if isinstance(job["usage"], dict) else {}
    return "unpriced" if usage.get("unpriced_calls") else "-"


def _segments(path: str) -> list[str]:
    return [unquote(part) for part in urlsplit(path).path.strip("/").split("/") if part]


def jobs_page(jobs: list[dict[str, Any]]) -> str:
    """The web page: one row per job with its state, result, error, usage and cost."""
    rows = "".join(
        "<tr><td>{}</td><td class='{}'>{}</td><td><code>{}</code></td><td>{}</td>"
        "<td>{}</td><td>{}</td><td>{}</td></tr>".format(
            html.escape(job["job_id"]),
            html.escape(job["status"]),
            html.escape(job["status"]),
            html.escape(json.dumps(job["result"], ensure_ascii=False)),
            html.escape(job["error"] or ""),
            html.escape(json.dumps(job["usage"])),
            html.escape(cost_text(job)),
            time.strftime("%H:%M:%S", time.localtime(job["updated_at"])),
        )
        for job in jobs
    )
    return (
        "<!doctype html><meta charset='utf-8'><meta http-equiv='refresh' content='5'>"
        "<title>dev Core: jobs</title><style>body{font-family:sans-serif}"
        "td{border-bottom:1px solid #ddd;padding:4px;vertical-align:top}"
        ".completed{color:green}.failed{color:#b00}.skipped{color:#888}</style>"
        "<h1>dev Core: jobs</h1><p>For trying the worker and for tests only. "
        "Refreshes every 5 s; JSON at <a href='/api/jobs'>/api/jobs</a>.</p>"
        "<table><tr><th>job</th><th>status</th><th>result</th><th>error</th><th>usage</th>"
        f"<th>cost</th><th>updated</th></tr>{rows}</table>"
    )


Answer = tuple[int, Any, str]
JSON = "application/json"


def openapi_answer() -> Answer:
    """``GET /openapi.json``: the contract's OpenAPI document, when this is a checkout."""
    try:
        return 200, json.loads(OPENAPI_FILE.read_text(encoding="utf-8")), JSON
    except FileNotFoundError:
        return 404, {"detail": f"no OpenAPI document at {OPENAPI_FILE}"}, JSON


def answer_get(store: DevCoreStore, parts: list[str]) -> Answer:
    """Status, body and content type of a GET of the path ``parts``."""
    if not parts:
        return 200, jobs_page(store.jobs()), "text/html; charset=utf-8"
    if parts == ["openapi.json"]:
        return openapi_answer()
    if parts == ["api", "jobs"]:
        return 200, store.jobs(), JSON
    if len(parts) == 3 and parts[0] == "users" and parts[2] == "tasks":
        try:
            return 200, store.open_tasks(int(parts[1])), JSON
        except ValueError:
            return 404, {"detail": "no such user"}, JSON
    return 404, {"detail": "not found"}, JSON


def answer_write(store: DevCoreStore, method: str, parts: list[str], body: Any) -> Answer:
    """Status, body and content type of a PATCH, PUT or POST of the path ``parts``."""
    if method == "PATCH" and len(parts) == 2 and parts[0] == "jobs":
        if not isinstance(body, dict) or "status" not in body:
            return 422, {"detail": "a job update needs a status"}, JSON
        store.update_job(parts[1], body)
    elif method == "PUT" and len(parts) == 3 and parts[::2] == ["images", "tags"]:
        store.put_tags(parts[1], body)
    elif method == "POST" and len(parts) == 3 and parts[::2] == ["users", "tasks"]:
        try:
            store.add_task(int(parts[1]), body if isinstance(body, dict) else {})
        except ValueError as exc:
            return 422, {"detail": str(exc)}, JSON
    else:
        return 404, {"detail": "not found"}, JSON
    return 200, {"ok": True}, JSON


def host_refusal(headers: Message, allowed: set[str]) -> Answer | None:
    """A 403 for a request whose ``Host`` is neither a loopback name nor in ``allowed``
    (DNS rebinding), else ``None``."""
    name = host_name(headers.get("Host") or "")
    if not name or not (is_loopback(name) or name in allowed):
        return 403, {"detail": "the dev Core answers only to localhost"}, JSON
    return None


def json_body(headers: Message, stream: BufferedIOBase) -> bytes | Answer:
    """A write's body read from ``stream``, or the answer refusing it: a body that is not
    ``application/json`` (a cross-site form), or whose ``Content-Length`` is not a whole
    number up to :data:`MAX_BODY_BYTES`."""
    media_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if media_type != "application/json":
        return 415, {"detail": "the body must be application/json"}, JSON
    declared = (headers.get("Content-Length") or "0").strip()
    if not declared.isdigit():
        return 400, {"detail": "Content-Length must be a whole number"}, JSON
    if int(declared) > MAX_BODY_BYTES:
        return 413, {"detail": f"the body is over {MAX_BODY_BYTES} bytes"}, JSON
    return stream.read(int(declared)) if int(declared) else b""


def make_server(store: DevCoreStore, host: str, port: int) -> ThreadingHTTPServer:
    """The HTTP server of ``store`` on ``host:port`` (not yet serving).

    Only requests addressed to a loopback name or to ``host`` are answered (403
    otherwise), writes only with a JSON body (``Content-Type: application/json``, 415
    otherwise) of at most :data:`MAX_BODY_BYTES`: a web page the developer visits
    cannot plant tasks with a cross-site form, nor read the jobs through DNS rebinding.
    """
    allowed = {host.lower()}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, answer: Answer) -> None:
            status, body, content_type = answer
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            refused = host_refusal(self.headers, allowed)
            self._send(refused or answer_get(store, _segments(self.path)))

        def _write(self) -> None:
            raw = host_refusal(self.headers, allowed) or json_body(self.headers, self.rfile)
            if not isinstance(raw, bytes):
                self.close_connection = True  # the body, if any, was not read
                self._send(raw)
                return
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                self._send((400, {"detail": "the body is not JSON"}, JSON))
                return
            store.log(self.command, self.path, body)
            self._send(answer_write(store, self.command, _segments(self.path), body))

        do_PATCH = _write
        do_PUT = _write
        do_POST = _write

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def serve_dev_core(*, db: str, host: str, port: int, tasks: str | None) -> int:
    """Serve the dev Core until interrupted; return the exit status."""
    store = DevCoreStore(db)
    if tasks:
        print(f"dev Core: {store.seed(tasks)} open tasks from {tasks}", flush=True)
    server = make_server(store, host, port)
    print(
        f"dev Core on http://{host}:{port} (jobs at http://{host}:{port}/, database {db}); "
        f"point the worker at it with CORE_API_URL=http://{host}:{port}",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        store.close()
    return 0


def render_jobs(jobs: list[dict[str, Any]]) -> str:
    """``llm-worker jobs``: one line per job, newest first (tokens, cost, result or error),
    then the cost of the jobs listed."""
    if not jobs:
        return "no jobs yet"
    lines = []
    for job in jobs:
        usage = job["usage"] or {}
        tokens = f"{usage.get('prompt_tokens', 0)}+{usage.get('completion_tokens', 0)} tok"
        detail = job["error"] or json.dumps(job["result"], ensure_ascii=False)
        lines.append(
            f"{job['job_id']:>10}  {job['status']:<9}  {tokens:>12}  {cost_text(job):>10}  "
            f"{detail[:150]}"
        )
    micro_usd = sum(
        round(job["cost_usd"] * 1_000_000) for job in jobs if job["cost_usd"] is not None
    )
    unpriced = sum(1 for job in jobs if cost_text(job) == "unpriced")
    total = f"cost of the {len(jobs)} jobs listed: ${micro_usd / 1_000_000:.6f}"
    lines.append(total + (f" (and {unpriced} unpriced)" if unpriced else ""))
    return "\n".join(lines)
