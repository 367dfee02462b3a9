"""``llm-worker dashboard``: dramatiq-dashboard behind HTTP basic auth, served by waitress."""

from __future__ import annotations

import base64
import hmac
import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

import dramatiq

from llm_worker.errors import CommandError
from llm_worker.services import Services

from .dead_letters import Requeuer

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def request_host(environ: dict[str, Any]) -> str:
    """The host name a request was sent to (its ``Host`` header without the port),
    lower-case; empty when the request named none."""
    return host_name(str(environ.get("HTTP_HOST") or ""))


def host_name(header: str) -> str:
    """The host name of a ``Host`` header, without its port, lower-case."""
    host = header.strip().lower()
    if host.startswith("["):  # an IPv6 literal: [::1]:8081
        return host[1 : host.find("]")] if "]" in host else ""
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def host_guard(app: WSGIApp, allowed: Iterable[str]) -> WSGIApp:
    """Wrap a WSGI app so it answers only requests whose ``Host`` is a loopback address,
    ``localhost`` or one of ``allowed`` (403 otherwise): a web page whose own name
    resolves to this machine (DNS rebinding) cannot read or drive the dashboard."""
    names = {name.strip().lower() for name in allowed if name.strip()}

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        host = request_host(environ)
        if host and (is_loopback(host) or host in names):
            return app(environ, start_response)
        start_response("403 Forbidden", [("Content-Type", "text/plain")])
        return [b"this dashboard answers only to localhost or DASHBOARD_ALLOWED_HOSTS\n"]

    return guarded


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


def dashboard_app(
    broker: dramatiq.Broker,
    svc: Services,
    user: str | None,
    password: str | None,
    allowed_hosts: Iterable[str] = (),
) -> WSGIApp:
    """The dashboard for ``broker``'s queues: with basic auth when credentials are given,
    else only for requests addressed to loopback or ``allowed_hosts``.  Its Requeue
    button puts a dead letter back as ``llm-worker requeue-dead`` does, through ``svc``
    (:class:`~console.ops.dashboard_requeue.RequeueingDashboard`)."""
    from dramatiq.brokers.redis import RedisBroker

    try:
        import dramatiq_dashboard  # noqa: F401
    except ImportError:
        raise CommandError(
            "dramatiq-dashboard is not installed: run scripts/install-dashboard.sh "
            "(pip install --no-deps dramatiq-dashboard==0.4.0; its declared pins are stale)"
        ) from None
    from .dashboard_requeue import RequeueingDashboard

    if not isinstance(broker, RedisBroker):
        raise CommandError("the dashboard needs the Redis broker (BROKER_URL selects RabbitMQ)")
    app: WSGIApp = RequeueingDashboard(broker, Requeuer(broker, svc))
    if user and password:
        return basic_auth(app, user, password)
    return host_guard(app, allowed_hosts)


def serve_dashboard(
    broker: dramatiq.Broker,
    svc: Services,
    *,
    host: str,
    port: int,
    user: str | None,
    password: str | None,
    allowed_hosts: Iterable[str] = (),
) -> None:
    """Serve the dashboard until interrupted (``allowed_hosts``: see :func:`host_guard`;
    ``svc``: see :func:`dashboard_app`).

    Raises:
      CommandError: on a non-loopback address without credentials, or a RabbitMQ broker.
    """
    import waitress

    if not (user and password) and not is_loopback(host):
        raise CommandError(
            f"refusing to serve the dashboard on {host} without DASHBOARD_USER and "
            "DASHBOARD_PASSWORD"
        )
    app = dashboard_app(broker, svc, user, password, allowed_hosts)
    auth = "with basic auth" if user and password else "without auth (loopback only)"
    print(f"dashboard on http://{host}:{port}/ {auth}", flush=True)
    waitress.serve(app, host=host, port=port, threads=4, ident="llm-worker", _quiet=True)
