"""LLM_TIMEOUT_SECONDS and CORE_TIMEOUT_SECONDS bound a whole call, against servers
that trickle their answer one byte at a time or never answer."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import httpx2
import pytest

from llm_worker.core.client import CoreClient
from llm_worker.errors import CoreAPIError, LLMUnavailable
from llm_worker.llm.deadline_http import deadline_client
from llm_worker.settings import Settings
from llm_worker.testing.fakes import SlowHTTPServer
from tests.test_providers import KINDS, ask, make

#: The deadline under test (over the slow server's 0.3 s between bytes, so that only a
#: bound on the whole call ends it), and what a busy machine may add to it.
DEADLINE = 0.5
SLACK = 2.0
MODES = ["trickle", "trickle_headers", "hang"]


@pytest.fixture(params=MODES)
def slow_server(request):
    server = SlowHTTPServer(request.param, interval=0.3, length=2000)
    yield server
    server.down()


class _At:
    """Stands in for the fake LLM's URLs, pointed at the slow server."""

    def __init__(self, server: SlowHTTPServer) -> None:
        self.url = server.url
        self.base_url = f"{server.url}/v1"


def elapsed(call):
    started = time.monotonic()
    with pytest.raises(Exception) as caught:
        call()
    return time.monotonic() - started, caught.value


@pytest.mark.parametrize("kind", KINDS)
def test_llm_call_ends_by_the_deadline(slow_server, kind):
    provider = make(kind, _At(slow_server), timeout=DEADLINE)

    seconds, error = elapsed(lambda: ask(provider))

    assert isinstance(error, LLMUnavailable), error
    assert "timed out" in str(error)
    assert seconds < DEADLINE + SLACK, f"{kind} call took {seconds:.1f}s"
    assert slow_server.connections == 1


@pytest.mark.parametrize("kind", KINDS)
def test_probe_ends_by_the_deadline(slow_server, kind):
    provider = make(kind, _At(slow_server), timeout=DEADLINE)

    seconds, error = elapsed(lambda: provider.probe("m"))

    assert isinstance(error, LLMUnavailable), error
    assert seconds < DEADLINE + SLACK


def test_server_tokenizer_ends_by_the_deadline(slow_server):
    from llm_worker.llm.providers import OpenAICompatibleProvider, Prompt, Turn

    provider = OpenAICompatibleProvider(
        base_url=f"{slow_server.url}/v1", api_key="k", timeout=DEADLINE, tokenizer="server"
    )
    started = time.monotonic()

    counted = provider.count_tokens("m", Prompt("rules", (Turn("user", "hello"),)))

    assert counted is None  # no count in time: the estimate is used
    # One deadline per tokenize style tried (three styles).
    assert time.monotonic() - started < 3 * DEADLINE + SLACK


def test_core_call_ends_by_the_deadline(slow_server):
    client = CoreClient(Settings(core_api_url=slow_server.url, core_timeout_seconds=DEADLINE))

    seconds, error = elapsed(lambda: client.update_job(7, "completed", result={}))

    assert isinstance(error, CoreAPIError) and error.status is None, error
    assert f"did not answer within {DEADLINE:g}s" in str(error)
    assert seconds < DEADLINE + SLACK
    client.close()


def test_deadline_is_per_call_not_per_client(env, fake_llm, fake_core):
    """A pooled connection reused after a cut call gets a fresh deadline."""
    server = SlowHTTPServer("trickle", interval=0.3, length=2000)
    try:
        client = CoreClient(Settings(core_api_url=server.url, core_timeout_seconds=DEADLINE))
        elapsed(lambda: client.update_job(1, "completed"))
        client.close()
    finally:
        server.down()
    good = CoreClient(Settings(core_api_url=fake_core.url, core_timeout_seconds=DEADLINE))
    for job_id in range(3):  # together longer than one deadline
        time.sleep(DEADLINE * 0.4)
        good.update_job(job_id, "completed")
    assert len(fake_core.job_updates()) == 3
    good.close()


class _TLSHandler(BaseHTTPRequestHandler):
    """``/`` answers ``ok``; ``/slow`` trickles 100 bytes, one every 0.3 s."""

    def do_GET(self) -> None:
        if self.path == "/slow":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            for _ in range(100):
                try:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.3)
            return
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def tls_server(tmp_path, monkeypatch):
    """An HTTPS server on 127.0.0.1 with a self-signed certificate the clients trust
    through ``SSL_CERT_FILE``."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    command = [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    command += ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"]
    command += ["-addext", "subjectAltName=DNS:localhost"]
    subprocess.run(
        command,
        check=True,
        capture_output=True,
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TLSHandler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://localhost:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("flavour", [httpx, httpx2])
def test_tls_is_verified_and_bounded(tls_server, flavour):
    client = deadline_client(DEADLINE, tls_server, flavour=flavour)

    assert [client.get(f"{tls_server}/").text for _ in range(2)] == ["ok", "ok"]
    seconds, error = elapsed(lambda: client.get(f"{tls_server}/slow"))
    assert isinstance(error, flavour.ReadTimeout)
    assert seconds < DEADLINE + SLACK
    client.close()


def test_proxy_from_the_environment(monkeypatch, fake_core):
    monkeypatch.setenv("HTTP_PROXY", fake_core.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    fake_core.clear()
    client = CoreClient(Settings(core_api_url="http://core.invalid:8000", core_timeout_seconds=5))

    client.update_job("a/b", "completed")

    [request] = fake_core.requests
    assert request["path"] == "http://core.invalid:8000/jobs/a%2Fb"
    client.close()


def test_many_threads_keep_their_connections_alive(fake_core):
    """Each thread sends through one of the transport's pools and reuses its connection:
    48 threads of 5 calls each open about one connection per thread, not one per call."""
    fake_core.clear()
    client = deadline_client(10, fake_core.url)
    statuses: list[int] = []

    def calls() -> None:
        for _ in range(5):
            statuses.append(client.get(f"{fake_core.url}/users/1/tasks").status_code)

    threads = [threading.Thread(target=calls) for _ in range(48)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    client.close()

    assert statuses == [200] * 240
    connections = {tuple(r["peer"]) for r in fake_core.requests}
    assert len(connections) <= 48
