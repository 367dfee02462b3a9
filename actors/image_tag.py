"""``image_tag``: describe and tag a stored image with the vision model."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StrictStr, field_validator

from llm_worker.errors import LLMRequestRejected
from llm_worker.jobs.job import Job
from llm_worker.jobs.registry import JobType
from llm_worker.jobs.schemas import JobId, Payload, Result, longest
from llm_worker.llm.images import load_image

from .job_actor import job_actor


class ImageTagPayload(Payload):
    """An image stored under ``IMAGE_STORAGE_PATH``."""

    image_id: JobId
    path: StrictStr = Field(min_length=1)


class ImageTagResult(Result):
    """A description of the image and 1 to 20 lowercase, unique tags."""

    description: str = Field(min_length=1, json_schema_extra=longest(400))
    tags: list[Annotated[str, Field(json_schema_extra=longest(40))]] = Field(
        min_length=1, max_length=20
    )

    @field_validator("tags", mode="before")
    @classmethod
    def _normalise_tags(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        seen: dict[str, None] = {}
        for tag in value:
            if not isinstance(tag, str):
                return value  # let the type check report it
            cleaned = " ".join(tag.lower().split())
            if cleaned:
                seen.setdefault(cleaned, None)
        return list(seen)


IMAGE_TAG = JobType(
    name="image_tag",
    queue="llm.image_tag",
    payload_model=ImageTagPayload,
    result_model=ImageTagResult,
    notification="llm_image_tag_result",
)


@job_actor(IMAGE_TAG)
def image_tag(job: Job[ImageTagPayload]) -> None:
    """Tag the image at ``payload["path"]`` (relative to ``IMAGE_STORAGE_PATH``).

    The tags are stored with ``PUT /images/{image_id}/tags`` before the job is
    completed.
    """
    config = job.services.settings
    if not config.llm_vision_model:
        raise LLMRequestRejected("image tagging needs a vision model: LLM_VISION_MODEL is empty")
    image = load_image(
        config.image_storage_path, job.payload.path, max_bytes=config.image_max_bytes
    )
    answer = job.ask(ImageTagResult, data={}, image=image)
    result = answer.model_dump()
    job.services.core.put_image_tags(job.payload.image_id, result)
    job.complete(result)
