"""``image_tag``: describe and tag a stored image with the vision model."""

from __future__ import annotations

from llm_worker.errors import LLMRequestRejected
from llm_worker.jobs.job import Job, Notification
from llm_worker.jobs.schemas import ImageTagPayload, ImageTagResult
from llm_worker.llm.images import load_image

from .job_actor import job_actor


@job_actor("image_tag", queue="llm.image_tag", payload_model=ImageTagPayload)
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
    job.complete(result, [Notification("llm_image_tag_result", result)])
