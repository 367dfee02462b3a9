"""Dramatiq middleware of the LLM job worker; registered in :mod:`actors.broker`.

Order matters for the ``before_process_message`` hooks: arguments are checked
first, then expiry, staleness and the breaker's gate.
"""

from .age_check import MessageAgeCheck
from .circuit_breaker import CircuitBreaker, breaker_status, fallback_breaker_status
from .dead_worker_recovery import DeadWorkerRecovery
from .expiry_check import ExpiryCheck
from .finished_check import FinishedJobCheck
from .invalid_backoff import InvalidResponseBackoff
from .job_arguments import JobArgumentsCheck
from .job_log import JobOutcomeLog
from .job_retries import JobRetries
from .llm_capacity import LLMCapacity
from .redacted_logs import RedactedLogs
from .report_outbox import ReportOutboxDrain
from .worker_setup import WorkerSetup

__all__ = [
    # Process and observability
    "JobOutcomeLog",
    "RedactedLogs",
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
