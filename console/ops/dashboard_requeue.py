"""The dashboard's Requeue button, doing what ``llm-worker requeue-dead`` does.

dramatiq-dashboard 0.4.0's own ``POST /requeue-message`` (``DashboardApp.requeue_message``
in ``dramatiq_dashboard/application.py``) deletes the message first and then enqueues a
copy of it with only its ``retries`` reset: a copy refused by the send-time check is lost
with the original, the job's finished marker makes the worker drop the copy as a
redelivery of a finished job, and the copy, not marked requeued, may be skipped as stale.
:class:`RequeueingDashboard` answers that route instead, with the same CSRF check, through
:class:`~console.ops.dead_letters.Requeuer` (the steps of ``requeue-dead``), and only for
dead letters.

Imported only where dramatiq-dashboard is installed (``scripts/install-dashboard.sh``).
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
from dramatiq.common import q_name, xq_name
from dramatiq_dashboard import DashboardApp
from dramatiq_dashboard.csrf import csrf_protect
from dramatiq_dashboard.http import HTTP_405, HTTP_410, Request, Response, handler, redirect

from llm_worker.broker.redis_layout import RedisLayout

from .dead_letters import RequeueFailed, Requeuer

logger = logging.getLogger(__name__)

HTTP_400 = "400 Bad Request"
HTTP_404 = "404 Not Found"
HTTP_409 = "409 Conflict"
HTTP_500 = "500 Internal Server Error"


def plain(status: str, text: str) -> Response:
    """A plain-text answer: ``text`` may quote what the form sent, never read as HTML."""
    return Response(
        status=status,
        headers=[("Content-type", "text/plain; charset=utf-8")],
        content=text + "\n",
    )


def where_it_waits(queue: str) -> str:
    """Where a message of ``queue`` (a queue or its delay queue) is, for a refusal."""
    if queue == q_name(queue):
        return f"{queue}, where it waits for a worker or is running"
    return f"{queue}, where it waits for its delay to end"


class RequeueingDashboard(DashboardApp):
    """dramatiq-dashboard whose Requeue puts a dead letter back as ``requeue-dead`` does.

    Requeueing a message that is not a dead letter (one waiting on its queue or its
    delay queue, which the dashboard shows no Requeue button for) is refused with 409:
    it is already due to run, and a copy would run it twice (a worker may hold it) or
    let a retry skip its backoff with its counters reset.

    Parameters:
      broker: the actors' Redis broker.
      requeuer: what puts a dead letter back (built on the same broker).
    """

    def __init__(self, broker: dramatiq.Broker, requeuer: Requeuer) -> None:
        super().__init__(broker=broker, prefix="")
        self.requeuer = requeuer

    @handler
    @csrf_protect
    def requeue_message(self, req: Request) -> Any:
        """``POST /requeue-message`` with the form's ``queue`` (a ``.XQ``) and ``id``
        (a Redis id): requeue that dead letter, then show the queue's dead letters.

        Refusals and failures are answered in plain text saying why and where the
        message is, failures logged too; none of them removes it."""
        if req.method != "POST":
            return HTTP_405, "Expected a POST request."
        queue, redis_id = req.post_data.get("queue", ""), req.post_data.get("id", "")
        if not queue or not redis_id:
            return plain(HTTP_400, "Not requeued: the form names no queue or no message id.")
        canonical = q_name(queue)
        if canonical not in self.broker.get_declared_queues():
            return plain(HTTP_404, f"Not requeued: {canonical} is not a queue of this worker.")
        if queue != xq_name(canonical):
            layout = RedisLayout.of(self.broker)
            if not layout.client.hexists(layout.messages_key(queue), redis_id):
                return HTTP_410, "The requested message no longer exists."
            return plain(
                HTTP_409,
                f"Not requeued: only a dead letter can be requeued. Message {redis_id} is on "
                f"{where_it_waits(queue)}; delete it if it must not run.",
            )
        try:
            copy = self.requeuer.requeue_redis_dead_letter(canonical, redis_id)
        except RequeueFailed as exc:
            logger.error("dashboard: %s", exc)
            text = str(exc)
            return plain(HTTP_500, f"{text[:1].upper()}{text[1:]}.")
        if copy is None:
            return HTTP_410, "The requested message no longer exists."
        return redirect(self.make_uri("queues", canonical, "failed"))
