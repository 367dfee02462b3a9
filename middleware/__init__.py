"""Dramatiq middleware of the LLM job worker; registered in :mod:`actors.broker`.

Order matters for the ``before_process_message`` hooks: arguments are checked
first, then expiry, staleness and the breaker's gate.
"""

from .age_check import MessageAgeCheck
from .circuit_breaker import CircuitBreaker, breaker_status
from .expiry_check import ExpiryCheck
from .invalid_backoff import InvalidResponseBackoff
from .job_arguments import JobArgumentsCheck
from .job_retries import JobRetries
from .settings_check import SettingsCheck

__all__ = [
    # Validation
    "JobArgumentsCheck",
    "SettingsCheck",
    # Staleness and expiry
    "ExpiryCheck",
    "MessageAgeCheck",
    # LLM failures
    "CircuitBreaker",
    "InvalidResponseBackoff",
    "breaker_status",
    # Everything else
    "JobRetries",
]
