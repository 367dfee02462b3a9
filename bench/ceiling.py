"""The fake servers' own ceiling: requests/s they serve to a client that does nothing else.

``python -m bench.ceiling URL METHOD PATH SECONDS THREADS`` is the load generator,
run in its own process so that it does not share the fakes' interpreter; it prints
the number of answered requests.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit

CHAT_BODY = {
    "model": "m",
    "messages": [{"role": "user", "content": "x"}],
    "max_tokens": 64,
    "response_format": {"type": "json_schema", "json_schema": {"name": "IntentResult"}},
}
PATCH_BODY = {"status": "completed", "result": {"intent": "task"}, "error": None}


def _hammer(url: str, method: str, path: str, body: bytes, until: float, out: list[int]) -> None:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port)
    answered = 0
    headers = {"Content-Type": "application/json"}
    while time.monotonic() < until:
        connection.request(method, path, body=body, headers=headers)
        connection.getresponse().read()
        answered += 1
    connection.close()
    out.append(answered)


def load(url: str, method: str, path: str, seconds: float, threads: int) -> int:
    """Requests answered in ``seconds`` by ``threads`` keep-alive clients."""
    body = json.dumps(CHAT_BODY if method == "POST" else PATCH_BODY).encode()
    until = time.monotonic() + seconds
    counts: list[int] = []
    workers = [
        threading.Thread(target=_hammer, args=(url, method, path, body, until, counts))
        for _ in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(counts)


def measure(url: str, method: str, path: str, *, seconds: float = 3.0, threads: int = 8) -> float:
    """Requests/s the server at ``url`` answers, from a load generator process."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.ceiling", url, method, path, str(seconds), str(threads)],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    )
    return int(done.stdout.strip()) / seconds


if __name__ == "__main__":
    url_, method_, path_, seconds_, threads_ = sys.argv[1:6]
    print(load(url_, method_, path_, float(seconds_), int(threads_)))
