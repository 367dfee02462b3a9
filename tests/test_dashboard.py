"""The dashboard without credentials answers only to loopback or configured Host names
(DNS rebinding), served by the real ``llm-worker dashboard`` command."""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys

import pytest

from tests.support import ROOT, free_port, wait_for


@pytest.fixture
def dashboard(cli_env):
    """Start ``llm-worker dashboard`` on a free loopback port with extra env; stopped after."""
    started = []

    def start(**env: str) -> int:
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "console.cli", "dashboard", "--port", str(port)],
            cwd=ROOT,
            env={**cli_env, "DASHBOARD_USER": "", "DASHBOARD_PASSWORD": "", **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(process)
        wait_for(lambda: status_for(port, f"127.0.0.1:{port}"), timeout=30)
        return port

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=30)


def status_for(port: int, host: str | None) -> int | None:
    """The status of ``GET /`` sent to 127.0.0.1:port with ``Host: host`` (none: no header)."""
    try:
        if host is None:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
                conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
                return int(conn.recv(100).split()[1])
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        client.putrequest("GET", "/", skip_host=True)
        client.putheader("Host", host)
        client.endheaders()
        status = client.getresponse().status
        client.close()
        return status
    except OSError:
        return None


def test_only_loopback_host_names_are_answered(dashboard):
    port = dashboard()

    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "LOCALHOST", f"[::1]:{port}"):
        assert status_for(port, host) == 200, host
    for host in (
        f"rebind.attacker.example:{port}",
        "attacker.example",
        f"127.0.0.1.attacker.example:{port}",
        f"localhost.attacker.example:{port}",
        "",
        None,
    ):
        assert status_for(port, host) == 403, host


def test_configured_host_names_are_answered(dashboard):
    port = dashboard(DASHBOARD_ALLOWED_HOSTS="ops.internal, Dash.Example ")

    assert status_for(port, f"ops.internal:{port}") == 200
    assert status_for(port, "dash.example") == 200
    assert status_for(port, "other.internal") == 403


def test_with_credentials_basic_auth_decides(dashboard):
    port = dashboard(DASHBOARD_USER="ops", DASHBOARD_PASSWORD="s3cret")

    assert status_for(port, "anything.example") == 401
