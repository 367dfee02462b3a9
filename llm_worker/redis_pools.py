"""Connection pools for a Redis URL: a server's, or a primary found through Sentinel.

``REDIS_URL`` and ``BROKER_URL`` take redis-py's URL forms (``redis://``, ``rediss://``,
``unix://``) and one more for a primary watched by Redis Sentinel::

    redis+sentinel://[[username]:password@]host:port[,host:port...]/service_name[/db]

(``rediss+sentinel://`` for TLS to the Redis servers).  The hosts are the sentinels'; the
password is the Redis servers' (a ``sentinel_password`` query parameter gives the
sentinels' own, when they ask for one).  Every connection asks the sentinels where the
primary is when it connects, and connections to a demoted primary are dropped (redis-py's
``SentinelConnectionPool``), so after a failover the worker's commands go to the new
primary once a connection to the old one fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from redis.sentinel import Sentinel, SentinelConnectionPool

#: The URL schemes of a primary found through Sentinel.
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")


class BlockingSentinelConnectionPool(SentinelConnectionPool, redis.BlockingConnectionPool):
    """redis-py's ``SentinelConnectionPool`` with ``BlockingConnectionPool``'s bound: at most
    ``max_connections``, a command waiting up to ``timeout`` seconds for a free one."""


@dataclass(frozen=True)
class SentinelURL:
    """A parsed ``redis+sentinel://`` URL (see the module docstring)."""

    sentinels: tuple[tuple[str, int], ...]
    service_name: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None
    ssl: bool = False
    options: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, url: str) -> SentinelURL:
        """Parse ``url``.

        Raises:
          ValueError: saying what is wrong with it.
        """
        parts = urlsplit(url)
        if parts.scheme not in SENTINEL_SCHEMES:
            raise ValueError(f"not a Sentinel URL: must start with {SENTINEL_SCHEMES[0]}://")
        credentials, _, hosts = parts.netloc.rpartition("@")
        username, _, password = credentials.partition(":")
        sentinels = []
        for host in hosts.split(","):
            name, _, port = host.rpartition(":")
            if not name or not port.isdigit():
                raise ValueError(f"sentinel {host!r} must be host:port")
            sentinels.append((name.strip("[]"), int(port)))
        path = [unquote(p) for p in parts.path.split("/") if p]
        if not path or len(path) > 2:
            raise ValueError("the path must be /service_name or /service_name/db")
        if len(path) == 2 and not path[1].isdigit():
            raise ValueError(f"the database {path[1]!r} must be a number")
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        return cls(
            sentinels=tuple(sentinels),
            service_name=path[0],
            db=int(path[1]) if len(path) == 2 else 0,
            username=unquote(username) or None,
            password=unquote(password) or None,
            sentinel_password=query.pop("sentinel_password", None),
            ssl=parts.scheme == "rediss+sentinel",
            options=query,
        )


def is_sentinel_url(url: str) -> bool:
    """Whether ``url`` names a primary found through Sentinel."""
    return url.split("://", 1)[0] in SENTINEL_SCHEMES


def _timeouts(options: dict[str, str], defaults: Mapping[str, float]) -> dict[str, float]:
    """The socket timeouts: ``defaults``, where the URL's query sets none."""
    chosen = dict(defaults)
    for name in ("socket_timeout", "socket_connect_timeout"):
        if name in options:
            chosen[name] = float(options[name])
    return chosen


def connection_pool(
    url: str,
    *,
    max_connections: int | None = None,
    wait_seconds: float | None = None,
    health_check_interval: int = 0,
    socket_options: Mapping[str, float] | None = None,
) -> redis.ConnectionPool:
    """A connection pool for ``url``.

    Parameters:
      url: a redis-py URL or a ``redis+sentinel://`` one.
      max_connections: the pool's bound; ``None`` for none.
      wait_seconds: with a bound, how long a command waits for a free connection
        (a blocking pool); ``None`` raises at once when all are taken.
      health_check_interval: seconds after which an idle connection is checked.
      socket_options: ``socket_timeout`` and ``socket_connect_timeout`` where the URL
        sets none.
    """
    socket_options = dict(socket_options or {})
    bounded: dict[str, Any] = {}
    if max_connections is not None:
        bounded["max_connections"] = max_connections
    if wait_seconds is not None and max_connections is not None:
        bounded["timeout"] = wait_seconds
    if not is_sentinel_url(url):
        pool_class = redis.BlockingConnectionPool if "timeout" in bounded else redis.ConnectionPool
        return pool_class.from_url(
            url, health_check_interval=health_check_interval, **bounded, **socket_options
        )
    parsed = SentinelURL.parse(url)
    timeouts = _timeouts(parsed.options, socket_options)
    sentinel = Sentinel(
        list(parsed.sentinels),
        sentinel_kwargs={"password": parsed.sentinel_password, **timeouts},
    )
    pool_class = BlockingSentinelConnectionPool if "timeout" in bounded else SentinelConnectionPool
    return pool_class(
        parsed.service_name,
        sentinel,
        db=parsed.db,
        username=parsed.username,
        password=parsed.password,
        ssl=parsed.ssl,
        health_check_interval=health_check_interval,
        **bounded,
        **timeouts,
    )
