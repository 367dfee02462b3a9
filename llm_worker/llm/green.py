"""What the worker needs when it runs under gevent's monkey-patching (``dramatiq-gevent``)."""

from __future__ import annotations

import sys

from dramatiq.threading import is_gevent_active


def prepare_for_gevent() -> None:
    """Make the process's libraries importable under gevent; does nothing without it.

    gevent's patched ``select`` has no ``epoll``, so importing ``trio`` (which
    ``httpcore``, under the LLM SDKs, imports when it is installed) fails with
    an ``AttributeError`` it does not expect. The worker never uses trio: it is
    marked absent, which ``httpcore`` handles.
    """
    if is_gevent_active() and "trio" not in sys.modules:
        sys.modules["trio"] = None  # type: ignore[assignment]
