"""Dramatiq middleware of the LLM job worker; registered in :mod:`actors.broker`."""

from .job_arguments import JobArgumentsCheck
from .job_retries import JobRetries
from .settings_check import SettingsCheck

__all__ = [
    # Validation
    "JobArgumentsCheck",
    "SettingsCheck",
    # Retrying
    "JobRetries",
]
