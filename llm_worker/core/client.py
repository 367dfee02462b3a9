"""Client of the Core API: job states, image tags and open tasks.

Every identifier goes into a URL as exactly one percent-encoded path segment
(:func:`~llm_worker.identifiers.path_segment`), and every call ends within
``CORE_TIMEOUT_SECONDS`` (:mod:`~llm_worker.llm.deadline_http`).  Error answers are
classed by :func:`~llm_worker.errors.core_error`.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr, TypeAdapter, ValidationError

from llm_worker.errors import CoreAPIError, core_error
from llm_worker.identifiers import path_segment
from llm_worker.llm.deadline_http import BodyTooLarge, deadline_client
from llm_worker.llm.usage import Usage
from llm_worker.observability import tracing
from llm_worker.settings import Settings

logger = logging.getLogger("llm_worker.core_api")

JobStatus = Literal["completed", "failed", "skipped"]


class CoreTask(BaseModel):
    """An open task as Core lists it."""

    model_config = ConfigDict(extra="ignore")

    id: StrictInt | StrictStr
    title: str
    description: str | None = None


_TASKS = TypeAdapter(list[CoreTask])
#: Characters of Core's error body kept in errors, logs and reports.
CORE_BODY_CHARS = 300


class CoreClient:
    """Calls Core over one pooled HTTP client.

    Parameters:
      settings: the worker settings (``CORE_API_URL``, token, ``CORE_TIMEOUT_SECONDS``,
        ``CORE_MAX_RESPONSE_BYTES``).
    """

    def __init__(self, settings: Settings) -> None:
        self._base = settings.core_api_url
        self._timeout = settings.core_timeout_seconds
        headers = {"User-Agent": "llm-worker"}
        if settings.core_api_token is not None:
            token = settings.core_api_token.get_secret_value()
            headers["Authorization"] = f"Bearer {token}"
        self._client = deadline_client(
            self._timeout,
            self._base,
            headers=headers,
            max_body_bytes=settings.core_max_response_bytes,
        )

    def _call(self, method: str, template: str, path: str, **kwargs: Any) -> httpx.Response:
        """``method`` ``path`` (made from the URL template ``template``), in a client span
        carrying its trace context to Core (``traceparent``) while tracing is on."""
        if not tracing.enabled():
            return self._request(method, path, **kwargs)
        url = httpx.URL(f"{self._base}{path}")
        attributes: dict[str, tracing.AttributeValue] = {
            "http.request.method": method,
            "server.address": url.host,
            "url.template": template,
        }
        if url.port is not None:
            attributes["server.port"] = url.port
        with tracing.span(f"{method} {template}", kind="client", attributes=attributes) as span:
            headers: dict[str, str] = {}
            tracing.inject(headers)
            try:
                response = self._request(method, path, headers=headers, **kwargs)
            except CoreAPIError as exc:
                if exc.status is not None:
                    span.set_attribute("http.response.status_code", exc.status)
                    span.set_attribute("error.type", str(exc.status))
                raise
            span.set_attribute("http.response.status_code", response.status_code)
            return response

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._client.request(method, f"{self._base}{path}", **kwargs)
        except BodyTooLarge as exc:
            raise CoreAPIError(f"Core {method} {path}: {exc}") from None
        except httpx.TimeoutException:
            raise CoreAPIError(
                f"Core {method} {path} did not answer within {self._timeout:g}s"
            ) from None
        except httpx.HTTPError as exc:
            raise CoreAPIError(f"Core {method} {path} failed: {exc}") from None
        if response.status_code >= 300:
            body = response.text[:CORE_BODY_CHARS]
            message = f"Core {method} {path} answered HTTP {response.status_code}: {body}"
            raise core_error(message, response.status_code)
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
            "usage": (usage or Usage()).core_dict(),
        }
        self._call("PATCH", "/jobs/{job_id}", f"/jobs/{path_segment(job_id)}", json=body)

    def put_image_tags(self, image_id: str | int, result: dict[str, Any]) -> None:
        """``PUT /images/{image_id}/tags`` with an image's description and tags."""
        path = f"/images/{path_segment(image_id)}/tags"
        self._call("PUT", "/images/{image_id}/tags", path, json=result)

    def open_tasks(self, user_id: int) -> list[CoreTask]:
        """``GET /users/{user_id}/tasks?status=open``.

        Raises:
          TypeError: ``user_id`` is not an integer (the contract says it is).
        """
        if not isinstance(user_id, int) or isinstance(user_id, bool):
            raise TypeError(f"user_id must be an integer, got {type(user_id).__name__}")
        response = self._call(
            "GET", "/users/{user_id}/tasks", f"/users/{user_id:d}/tasks", params={"status": "open"}
        )
        try:
            return _TASKS.validate_json(response.content)
        except ValidationError as exc:
            raise CoreAPIError(f"Core returned malformed tasks: {exc.errors()[0]['msg']}") from None

    def close(self) -> None:
        """Close pooled connections."""
        self._client.close()
