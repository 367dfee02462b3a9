"""The fleet's fake LLM, fake Core and producer, each a process on a host of its own.

``python -m bench.fleet_agent llm|core|producer --host ADDRESS`` serves (or, for the
producer, sends jobs) and takes commands as JSON lines on stdin, answering each with one
JSON line on stdout: the harness drives it through pipes, never over the network.

- ``llm``: an OpenAI-compatible fake (:class:`FleetLLM`) on ``ADDRESS:8000``.  Each job's
  answer is a valid intent whose ``confidence`` encodes the call's number, so Core's
  result says which call it came from; it records each completion's job id (read from
  the prompt), client address, times, status, and when the client's host acknowledged
  the whole answer (TCP send queue empty).  Modes: ``up``, or ``down`` (every request,
  probes included, answered 503).  Above ``limit`` completions in flight it answers 429.
- ``core``: the recording fake Core on ``ADDRESS:8000``.
- ``producer``: sends ``intent_classify`` jobs through the actors' broker (``REDIS_URL``).
- ``stock-producer``: sends :func:`bench.fleet_stock.stock_job` jobs through Dramatiq's own
  broker behind Sentinel (``STOCK_SENTINELS``).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import re
import socket
import struct
import sys
import termios
import threading
import time
from typing import Any

from llm_worker.testing.fakes import FakeCore, FakeLLM, Reply

#: The port both fakes listen on, on their host's own address.
PORT = 8000
#: The queue of the stock-Dramatiq comparison's actor (:mod:`bench.fleet_stock`).
STOCK_QUEUE = "stock.job"
#: How a job's text names its job id, for the fake LLM to find it in the prompt.
JOB_MARK = "fleetjob-{}-"
_JOB_ID = re.compile(r"fleetjob-(\d+)-")
#: A call's number ``n`` is the answer's confidence ``CONFIDENCE_BASE + n / CONFIDENCE_SCALE``.
CONFIDENCE_BASE = 0.5
CONFIDENCE_SCALE = 10_000_000
#: Longest wait for a client's host to acknowledge an answer, in seconds.
ACK_WAIT_SECONDS = 120.0


def call_number(confidence: float) -> int:
    """The LLM call whose answer carried ``confidence``."""
    return round((confidence - CONFIDENCE_BASE) * CONFIDENCE_SCALE)


def job_text(job_id: int) -> str:
    """The text of job ``job_id``: it names the job, for the fake LLM."""
    return f"{JOB_MARK.format(job_id)} remind me to call mum at 6"


def completion(text: str) -> dict[str, Any]:
    """An OpenAI chat completion answering ``text`` (11 + 7 tokens)."""
    return {
        "id": "chatcmpl-fleet",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "mistral",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }


def _unacknowledged_bytes(connection: socket.socket) -> int:
    """Bytes written to ``connection`` that its peer has not acknowledged yet."""
    raw = fcntl.ioctl(connection.fileno(), termios.TIOCOUTQ, struct.pack("i", 0))
    return int(struct.unpack("i", raw)[0])


class FleetLLM(FakeLLM):
    """The fleet's fake LLM: numbered answers, per-call records, a down mode."""

    def __init__(self, host: str, latency: float) -> None:
        self.latency = latency
        self.mode = "up"
        self.calls = 0
        super().__init__(PORT, host)

    def respond(self, request: dict[str, Any]) -> Reply:
        body = request["json"] or {}
        if request["method"] == "GET":
            return Reply(body={"object": "list", "data": [{"id": "mistral"}], "models": []})
        if request["path"] != "/v1/chat/completions":
            return Reply(status=404, body={"error": {"message": "not found"}})
        probe = body.get("max_tokens") == 1
        request["probe"] = probe
        if self.mode == "down":
            return Reply(status=503, body={"error": {"message": "down"}})
        if request.get("over_limit"):
            busy = self.busy_reply
            return Reply(status=busy.status, body=busy.body, headers=dict(busy.headers))
        if probe:
            return Reply(body=completion("pong"))
        match = _JOB_ID.search(json.dumps(body.get("messages")))
        with self.lock:
            self.calls += 1
            number = self.calls
        request["job"] = int(match.group(1)) if match else None
        request["call"] = number
        answer = {"intent": "reminder", "confidence": CONFIDENCE_BASE + number / CONFIDENCE_SCALE}
        return Reply(body=completion(json.dumps(answer)), delay=self.latency)

    def leave(self, request: dict[str, Any]) -> None:
        request["ended"] = time.time()
        super().leave(request)

    def answered(self, request: dict[str, Any], connection: socket.socket) -> None:
        if request.get("status") != 200 or request.get("probe") is not False:
            return
        deadline = time.monotonic() + ACK_WAIT_SECONDS
        try:
            while _unacknowledged_bytes(connection) > 0:
                if time.monotonic() > deadline:
                    return
                time.sleep(0.01)
        except OSError:
            return
        request["acked"] = time.time()

    def records(self) -> list[dict[str, Any]]:
        """One summary per completion request (probes included)."""
        with self.lock:
            requests = list(self.requests)
        return [
            {
                key: request.get(key)
                for key in ("at", "ended", "acked", "client", "status", "probe", "job", "call")
            }
            for request in requests
            if request["path"] == "/v1/chat/completions"
        ]


def _core_records(core: FakeCore) -> list[dict[str, Any]]:
    with core.lock:
        requests = list(core.requests)
    found = []
    for request in requests:
        if request["method"] != "PATCH" or not request["path"].startswith("/jobs/"):
            continue
        body = request["json"] or {}
        result = body.get("result") or {}
        confidence = result.get("confidence") if isinstance(result, dict) else None
        found.append(
            {
                "job": request["path"].split("/")[2],
                "status": body.get("status"),
                "call": call_number(confidence) if isinstance(confidence, float) else None,
                "result": json.dumps(result, sort_keys=True),
                "error": body.get("error"),
                "at": request["at"],
                "client": request["client"],
            }
        )
    return found


def _serve_llm(host: str, latency: float) -> None:
    llm = FleetLLM(host, latency)
    llm.busy_reply = Reply(
        status=429, body={"error": {"message": "server busy"}}, headers={"Retry-After": "1"}
    )

    def handle(command: dict[str, Any]) -> dict[str, Any]:
        name = command["cmd"]
        if name == "set":
            llm.mode = command.get("mode", llm.mode)
            llm.latency = float(command.get("latency", llm.latency))
            llm.concurrency_limit = int(command.get("limit", llm.concurrency_limit))
            return {"ok": True}
        if name == "reset":
            with llm.lock:
                llm.requests.clear()
                llm.peak_in_flight = llm.in_flight
                llm.busy_answers = 0
            return {"ok": True}
        if name == "stats":
            with llm.lock:
                counters = {
                    "in_flight": llm.in_flight,
                    "peak_in_flight": llm.peak_in_flight,
                    "busy_answers": llm.busy_answers,
                }
            return {**counters, "records": llm.records()}
        raise ValueError(f"unknown command {name}")

    _command_loop(handle)
    llm.down()


def _serve_core(host: str) -> None:
    core = FakeCore(PORT, host)

    def handle(command: dict[str, Any]) -> dict[str, Any]:
        name = command["cmd"]
        if name == "reset":
            core.clear()
            return {"ok": True}
        if name == "stats":
            return {"records": _core_records(core)}
        raise ValueError(f"unknown command {name}")

    _command_loop(handle)
    core.down()


def _produce() -> None:
    from actors import intent_classify

    def handle(command: dict[str, Any]) -> dict[str, Any]:
        if command["cmd"] != "send":
            raise ValueError(f"unknown command {command['cmd']}")
        sent = []
        for job_id in command["ids"]:
            intent_classify.send(job_id, 42, {"text": job_text(job_id)})
            sent.append(time.time())
        return {"sent": sent}

    _command_loop(handle)


def _produce_stock() -> None:
    from .fleet_stock import stock_job

    def handle(command: dict[str, Any]) -> dict[str, Any]:
        if command["cmd"] != "send":
            raise ValueError(f"unknown command {command['cmd']}")
        sent = []
        for job_id in command["ids"]:
            stock_job.send(job_id)
            sent.append(time.time())
        return {"sent": sent}

    _command_loop(handle)


def _command_loop(handle: Any) -> None:
    """Answer each JSON line of stdin with one JSON line on stdout, until stdin closes."""
    print(json.dumps({"ready": True}), flush=True)
    lock = threading.Lock()
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            answer = handle(json.loads(line))
        except Exception as exc:  # the harness reads the error as the answer
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        with lock:
            print(json.dumps(answer), flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run one agent until stdin closes."""
    parser = argparse.ArgumentParser(prog="python -m bench.fleet_agent")
    parser.add_argument("role", choices=("llm", "core", "producer", "stock-producer"))
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    parser.add_argument("--latency", type=float, default=1.0, help="seconds per LLM answer")
    args = parser.parse_args(argv)
    if args.role == "llm":
        _serve_llm(args.host, args.latency)
    elif args.role == "core":
        _serve_core(args.host)
    elif args.role == "producer":
        _produce()
    else:
        _produce_stock()
    return 0


if __name__ == "__main__":
    sys.exit(main())
