"""Client of the Core API: job states, image tags and open tasks."""

from __future__ import annotations

import logging
from typing import Any, Literal
from urllib.request import getproxies

import requests
from pydantic import TypeAdapter, ValidationError
from requests.adapters import HTTPAdapter

from .errors import CoreAPIError
from .schemas import CoreTask
from .settings import Settings
from .usage import Usage

logger = logging.getLogger(__name__)

JobStatus = Literal["completed", "failed", "skipped"]
_TASKS = TypeAdapter(list[CoreTask])


class CoreClient:
    """Calls Core over one pooled :class:`requests.Session`.

    Parameters:
      settings: the worker settings (``CORE_API_URL``, token, timeout).
      pool_size: idle connections kept per host (at least the worker's threads).
    """

    def __init__(self, settings: Settings, *, pool_size: int = 256) -> None:
        self._base = settings.core_api_url
        self._timeout = settings.core_timeout_seconds
        self._session = requests.Session()
        # Proxies from the environment are read once, not on every request.
        self._session.proxies.update(getproxies())
        self._session.trust_env = False
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers["User-Agent"] = "llm-worker"
        if settings.core_api_token is not None:
            token = settings.core_api_token.get_secret_value()
            self._session.headers["Authorization"] = f"Bearer {token}"

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = f"{self._base}{path}"
        try:
            response = self._session.request(method, url, timeout=self._timeout, **kwargs)
        except requests.RequestException as exc:
            raise CoreAPIError(f"Core {method} {path} failed: {exc}") from None
        if response.status_code >= 300:
            raise CoreAPIError(
                f"Core {method} {path} answered HTTP {response.status_code}: {response.text[:300]}",
                status=response.status_code,
            )
        return response

    def update_job(
        self,
        job_id: str | int,
        status: JobStatus,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        usage: Usage | None = None,
    ) -> None:
        """``PATCH /jobs/{job_id}`` with the job's final state and token usage."""
        body = {
            "status": status,
            "result": result,
            "error": error,
            "usage": (usage or Usage()).as_dict(),
        }
        self._call("PATCH", f"/jobs/{job_id}", json=body)

    def put_image_tags(self, image_id: str | int, result: dict[str, Any]) -> None:
        """``PUT /images/{image_id}/tags`` with an ``image_tag`` result."""
        self._call("PUT", f"/images/{image_id}/tags", json=result)

    def open_tasks(self, user_id: int) -> list[CoreTask]:
        """``GET /users/{user_id}/tasks?status=open``."""
        response = self._call("GET", f"/users/{user_id}/tasks", params={"status": "open"})
        try:
            return _TASKS.validate_json(response.content)
        except ValidationError as exc:
            raise CoreAPIError(f"Core returned malformed tasks: {exc.errors()[0]['msg']}") from None

    def close(self) -> None:
        """Close pooled connections."""
        self._session.close()
