"""``llm-worker dashboard``: dramatiq-dashboard behind HTTP basic auth, served by waitress."""

from __future__ import annotations

import base64
import hmac
import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

import dramatiq

from ..errors import CommandError

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def basic_auth(app: WSGIApp, user: str, password: str, realm: str = "llm-worker") -> WSGIApp:
    """Wrap a WSGI app so every request needs ``user``/``password`` (401 otherwise)."""
    expected = base64.b64encode(f"{user}:{password}".encode()).decode()

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        header = environ.get("HTTP_AUTHORIZATION", "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "basic" and hmac.compare_digest(credentials.strip(), expected):
            return app(environ, start_response)
        start_response(
            "401 Unauthorized",
            [
                ("WWW-Authenticate", f'Basic realm="{realm}"'),
                ("Content-Type", "text/plain"),
            ],
        )
        return [b"authentication required\n"]

    return guarded


def dashboard_app(broker: dramatiq.Broker, user: str | None, password: str | None) -> WSGIApp:
    """The dashboard for ``broker``'s queues, with basic auth when credentials are given."""
    from dramatiq.brokers.redis import RedisBroker

    try:
        from dramatiq_dashboard import DashboardApp
    except ImportError:
        raise CommandError(
            "dramatiq-dashboard is not installed: run scripts/install-dashboard.sh "
            "(pip install --no-deps dramatiq-dashboard==0.4.0; its declared pins are stale)"
        ) from None

    if not isinstance(broker, RedisBroker):
        raise CommandError("the dashboard needs the Redis broker (BROKER_URL selects RabbitMQ)")
    app: WSGIApp = DashboardApp(broker=broker, prefix="")
    if user and password:
        app = basic_auth(app, user, password)
    return app


def serve_dashboard(
    broker: dramatiq.Broker, *, host: str, port: int, user: str | None, password: str | None
) -> None:
    """Serve the dashboard until interrupted.

    Raises:
      CommandError: on a non-loopback address without credentials, or a RabbitMQ broker.
    """
    import waitress

    if not (user and password) and not is_loopback(host):
        raise CommandError(
            f"refusing to serve the dashboard on {host} without DASHBOARD_USER and "
            "DASHBOARD_PASSWORD"
        )
    app = dashboard_app(broker, user, password)
    auth = "with basic auth" if user and password else "without auth (loopback only)"
    print(f"dashboard on http://{host}:{port}/ {auth}", flush=True)
    waitress.serve(app, host=host, port=port, threads=4, ident="llm-worker", _quiet=True)
