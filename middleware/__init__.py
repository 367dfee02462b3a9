"""Dramatiq middleware of the LLM job worker; registered in :mod:`actors.broker`.

Every middleware that acts on LLM jobs is a :class:`JobMiddleware`.  Order
matters for the ``before_process_message`` hooks: arguments are checked first,
then expiry, staleness and the breaker's gate.
"""

from .age_check import MessageAgeCheck
from .base import JobMiddleware
from .circuit_breaker import CircuitBreaker, breaker_status, fallback_breaker_status
from .dead_worker_recovery import DeadWorkerRecovery
from .expiry_check import ExpiryCheck
from .finished_check import FinishedJobCheck
from .invalid_backoff import InvalidResponseBackoff
from .job_arguments import JobArgumentsCheck
from .job_log import JobOutcomeLog
from .job_retries import JobRetries
from .liveness_beat import LivenessBeat
from .llm_capacity import LLMCapacity
from .report_outbox import ReportOutboxDrain
from .tracing import Tracing
from .worker_setup import WorkerSetup

__all__ = [
    # The base of the job middleware
    "JobMiddleware",
    # Process and observability
    "JobOutcomeLog",
    "LivenessBeat",
    "Tracing",
    "WorkerSetup",
    # Validation
    "JobArgumentsCheck",
    # Redelivery, staleness and expiry
    "FinishedJobCheck",
    "ExpiryCheck",
    "MessageAgeCheck",
    # LLM failures
    "CircuitBreaker",
    "InvalidResponseBackoff",
    "breaker_status",
    "fallback_breaker_status",
    "LLMCapacity",
    # Everything else
    "JobRetries",
    "DeadWorkerRecovery",
    # Reporting terminal states
    "ReportOutboxDrain",
]
