"""HTTP calls with a deadline on the whole call: connect, TLS, send, wait and read.

A socket timeout bounds one read: a server that answers ``200`` and then sends
a byte every second keeps a call going for as long as it likes.  Here every
request made through :class:`DeadlineTransport` gets a deadline when it starts,
and each socket operation of that request (connect, TLS handshake, each write,
each read of the headers and of the body) may only wait until the deadline; past
it the operation raises a timeout (``httpx.ConnectTimeout``/``ReadTimeout``/
``WriteTimeout``), which callers treat as any other timeout.

An answer's body may also be bounded in bytes (``max_body_bytes``): a declared
``Content-Length`` over the bound is refused before the body is read, and a body
that grows past it while read raises :class:`BodyTooLarge`, so a hostile or broken
server costs a clear error, never memory.

The transport is httpx's own (connection pool, TLS verification, an explicit
proxy, no retries) with its socket layer wrapped, so the ``openai`` SDK, the Core
client and the Ollama provider share it, and the ``anthropic`` SDK (built on the
``httpx2`` fork, same API) gets the same from that fork.

httpcore's pool walks all its connections, and for each idle one counts them all
again, every time a request starts or ends (``ConnectionPool.
_assign_requests_to_connections``): with hundreds of calls in flight in one process
that costs more CPU than the calls themselves.  So the transport keeps
:data:`POOL_SHARDS` pools, and each thread (or greenlet) sends through one of them,
given in turn at its first request: a pool then holds about one connection per
thread of its share, and a request's bookkeeping stays small however many are in
flight.
"""

from __future__ import annotations

import importlib
import itertools
import threading
import time
import urllib.request
from collections.abc import Iterable
from contextvars import ContextVar
from types import ModuleType
from typing import Any

import httpx

#: The running request's deadline (``time.monotonic()``) in this thread, if any.
_deadline: ContextVar[float | None] = ContextVar("llm_worker_http_deadline", default=None)
#: Bytes written per socket write, so a slow reader cannot stretch one write.
_WRITE_CHUNK = 65_536
#: Connection pools of one transport; each thread or greenlet uses one of them.
POOL_SHARDS = 128


class BodyTooLarge(Exception):
    """An answer's body is larger than the transport's ``max_body_bytes``."""


def _capped_stream_class(flavour: ModuleType) -> type:
    """A ``flavour.SyncByteStream`` that passes a response body through, raising
    :class:`BodyTooLarge` once it is over ``limit`` bytes."""

    class CappedStream(flavour.SyncByteStream):  # type: ignore[name-defined]
        def __init__(self, inner: Any, limit: int) -> None:
            self._inner = inner
            self._limit = limit

        def __iter__(self) -> Any:
            seen = 0
            for chunk in self._inner:
                seen += len(chunk)
                if seen > self._limit:
                    raise BodyTooLarge(f"the answer's body is over {self._limit} bytes")
                yield chunk

        def close(self) -> None:
            self._inner.close()

    return CappedStream


def _bounded(timeout: float | None, error: type[Exception]) -> float | None:
    """``timeout`` cut to what is left of the running request's deadline.

    Raises:
      ``error``: the deadline has passed.
    """
    deadline = _deadline.get()
    if deadline is None:
        return timeout
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise error("the call took longer than its deadline")
    return remaining if timeout is None else min(timeout, remaining)


class _DeadlineStream:
    """A connection whose every operation ends by the running request's deadline.

    ``errors`` is the httpcore flavour's module, whose timeout classes are raised.
    """

    def __init__(self, inner: Any, errors: ModuleType) -> None:
        self._inner = inner
        self._errors = errors

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data: bytes = self._inner.read(max_bytes, _bounded(timeout, self._errors.ReadTimeout))
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        view = memoryview(buffer)
        for start in range(0, len(view), _WRITE_CHUNK):
            chunk = bytes(view[start : start + _WRITE_CHUNK])
            self._inner.write(chunk, _bounded(timeout, self._errors.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> _DeadlineStream:
        bounded = _bounded(timeout, self._errors.ConnectTimeout)
        tls = self._inner.start_tls(ssl_context, server_hostname, bounded)
        return _DeadlineStream(tls, self._errors)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend:
    """httpcore's socket backend, its connections bounded by the request's deadline."""

    def __init__(self, inner: Any, errors: ModuleType) -> None:
        self._inner = inner
        self._errors = errors

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> _DeadlineStream:
        bounded = _bounded(timeout, self._errors.ConnectTimeout)
        stream = self._inner.connect_tcp(host, port, bounded, local_address, socket_options)
        return _DeadlineStream(stream, self._errors)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> _DeadlineStream:
        bounded = _bounded(timeout, self._errors.ConnectTimeout)
        stream = self._inner.connect_unix_socket(path, bounded, socket_options)
        return _DeadlineStream(stream, self._errors)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class DeadlineTransport:
    """httpx's own transport, where each request ends within ``seconds`` of its start.

    Parameters:
      seconds: the deadline of one request, from sending it to the last byte of
        the answer's body.
      proxy: an HTTP(S) proxy URL, or ``None``.
      flavour: the ``httpx`` module the client comes from (``httpx``, or ``httpx2``
        for SDKs built on it).
      max_connections: connections kept in each pool: above a process's worker threads or
        greenlets (up to 1,024 under gevent), so a call never waits for a connection.
      max_body_bytes: the largest answer body read (:class:`BodyTooLarge` past it), or
        ``None`` for no bound.
    """

    def __init__(
        self,
        seconds: float,
        *,
        proxy: str | None = None,
        flavour: ModuleType = httpx,
        max_connections: int = 1024,
        max_body_bytes: int | None = None,
    ) -> None:
        limits = flavour.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._errors = importlib.import_module(flavour.__name__.replace("httpx", "httpcore", 1))
        self._flavour, self._proxy, self._limits = flavour, proxy, limits
        self._ssl_context = flavour.create_ssl_context()  # one for every pool: each costs MBs
        self._shards: list[Any] = [None] * POOL_SHARDS  # made at their first request
        self._shards_lock = threading.Lock()
        self._next_shard = itertools.count()
        self._shard_of_thread = threading.local()  # a greenlet's own under gevent
        self.seconds = seconds
        self.max_body_bytes = max_body_bytes
        self._capped = _capped_stream_class(flavour)

    def handle_request(self, request: Any) -> Any:
        """Send ``request`` with its deadline; its body must be read in the same thread.

        Raises:
          BodyTooLarge: the answer declares a body over ``max_body_bytes`` (one that
            grows past it raises while it is read).
        """
        _deadline.set(time.monotonic() + self.seconds)
        request.extensions["timeout"] = dict.fromkeys(
            ("connect", "read", "write", "pool"), self.seconds
        )
        response = self._shard().handle_request(request)
        limit = self.max_body_bytes
        if limit is None:
            return response
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            response.close()
            raise BodyTooLarge(f"the answer's body is {declared} bytes, over {limit}")
        response.stream = self._capped(response.stream, limit)
        return response

    def _shard(self) -> Any:
        """The pool of this thread or greenlet (given in turn at its first request)."""
        index = getattr(self._shard_of_thread, "index", None)
        if index is None:
            index = self._shard_of_thread.index = next(self._next_shard) % POOL_SHARDS
        shard = self._shards[index]
        if shard is None:
            with self._shards_lock:
                shard = self._shards[index]
                if shard is None:
                    shard = self._shards[index] = self._new_pool()
        return shard

    def _new_pool(self) -> Any:
        transport = self._flavour.HTTPTransport(
            verify=self._ssl_context, proxy=self._proxy, limits=self._limits, retries=0
        )
        # httpcore builds every connection of the pool through this backend.
        pool = transport._pool
        pool._network_backend = _DeadlineBackend(pool._network_backend, self._errors)
        return transport

    def close(self) -> None:
        """Close the pooled connections."""
        for shard in self._shards:
            if shard is not None:
                shard.close()

    def __enter__(self) -> DeadlineTransport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def environment_proxy(url: str) -> str | None:
    """The proxy the environment (``HTTPS_PROXY``, ``HTTP_PROXY``, ``NO_PROXY``) sets for
    ``url``, read once."""
    parsed = httpx.URL(url)
    if urllib.request.proxy_bypass(parsed.host):
        return None
    return urllib.request.getproxies().get(parsed.scheme)


def deadline_client(
    seconds: float,
    url: str,
    *,
    flavour: ModuleType = httpx,
    max_body_bytes: int | None = None,
    **kwargs: Any,
) -> Any:
    """A ``flavour.Client`` (``httpx.Client`` by default) for the server at ``url`` whose
    every request ends within ``seconds`` and reads at most ``max_body_bytes`` of an answer
    (proxy from the environment, read once; no retries)."""
    transport = DeadlineTransport(
        seconds, proxy=environment_proxy(url), flavour=flavour, max_body_bytes=max_body_bytes
    )
    return flavour.Client(transport=transport, trust_env=False, timeout=seconds, **kwargs)
