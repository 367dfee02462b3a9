"""A RabbitMQ broker that never acknowledges a message a failed middleware hook left
unprocessed or unreplaced: it goes back on its queue instead (imports pika: import it
only when RabbitMQ is used)."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import pika.exceptions
from dramatiq.brokers.rabbitmq import RabbitmqBroker, _RabbitmqConsumer
from dramatiq.errors import ConnectionClosed

from llm_worker.broker.fail_safe import FailSafeHooks

logger = logging.getLogger("llm_worker.rabbitmq_broker")

#: The attribute that marks a delivered message to go back on its queue.
REDELIVER_MARK = "llm_redeliver"


class RedeliveringRabbitmqConsumer(_RabbitmqConsumer):
    """Dramatiq's RabbitMQ consumer, which rejects a message marked by
    :meth:`RecoveringRabbitmqBroker.redeliver` with ``requeue`` (RabbitMQ delivers it
    again, flagged redelivered) instead of acknowledging or dead-lettering it.

    Subclasses the private ``_RabbitmqConsumer`` (``dramatiq/brokers/rabbitmq.py``):
    its ``ack`` sends ``basic_ack`` and its ``nack`` ``basic_nack(requeue=False)``, which
    the queue's ``x-dead-letter-routing-key`` (``RabbitmqBroker._build_queue_arguments``)
    routes to ``{queue}.XQ``; it has no way to give one message back to its queue.
    ``_put_back`` does as its ``nack`` does, with the same private ``known_tags`` set and
    ``message._tag``, but with ``requeue=True``.
    """

    def ack(self, message: Any) -> None:
        if getattr(message, REDELIVER_MARK, False):
            self._put_back(message)
            return
        super().ack(message)

    def nack(self, message: Any) -> None:
        if getattr(message, REDELIVER_MARK, False):
            self._put_back(message)
            return
        super().nack(message)

    def _put_back(self, message: Any) -> None:
        try:
            self.known_tags.remove(message._tag)
            self.connection.add_callback_threadsafe(
                partial(self.channel.basic_nack, message._tag, requeue=True)
            )
        except (pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError) as exc:
            raise ConnectionClosed(exc) from None
        except KeyError:  # its channel closed meanwhile: RabbitMQ redelivers it anyway
            return
        logger.warning(
            "message %s put back on %s for redelivery", message.message_id, self.queue_name
        )


class RecoveringRabbitmqBroker(FailSafeHooks, RabbitmqBroker):
    """Dramatiq's :class:`RabbitmqBroker`, failing safe like the Redis broker
    (:class:`~llm_worker.broker.fail_safe.FailSafeHooks`): a middleware hook that fails while a
    message is processed leaves it on its queue for redelivery, and a failing
    ``before_process_message`` hook stops the actor from running.  The worker thread
    waits :attr:`redelivery_pause_seconds` first, since RabbitMQ hands the message back at
    once.

    Overrides ``RabbitmqBroker.consumer_class`` (``dramatiq/brokers/rabbitmq.py``), which
    its ``consume`` builds, to hand out :class:`RedeliveringRabbitmqConsumer` instead of
    the private ``_RabbitmqConsumer``; the hooks are
    :class:`~llm_worker.broker.fail_safe.FailSafeHooks`' (Dramatiq's ``emit_before`` and
    ``emit_after`` swallow a failing hook's exception).
    """

    redelivery_pause_seconds = 1.0

    @property
    def consumer_class(self) -> type[RedeliveringRabbitmqConsumer]:
        """This broker's consumer."""
        return RedeliveringRabbitmqConsumer

    def redeliver(self, message: Any) -> None:
        """Mark ``message`` to go back on its queue when its worker is done."""
        setattr(message, REDELIVER_MARK, True)
