"""What every job actor does: validate, ask the model, persist, notify."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from llm_worker import keys
from llm_worker.core.notify import Notification
from llm_worker.core.outbox import Report
from llm_worker.fleet.capacity import job_share
from llm_worker.identity import delivery_key, message_key
from llm_worker.jobs.arguments import P, parse_arguments
from llm_worker.jobs.llm_call import JobMessage, LLMRequest, message_usage, retry_feedback
from llm_worker.jobs.registry import JobType
from llm_worker.jobs.schemas import Result, response_schema
from llm_worker.llm.images import StoredImage
from llm_worker.llm.json_extract import parse_answer
from llm_worker.llm.providers.base import Prompt, Turn
from llm_worker.llm.usage import USAGE_OPTION, Usage
from llm_worker.prompts import render as prompts

if TYPE_CHECKING:  # the context is handed in; it imports this package
    from llm_worker.services import Services

logger = logging.getLogger("llm_worker.jobs")

R = TypeVar("R", bound=Result)


@dataclass
class Job(Generic[P]):
    """One running life-organiser job: its validated arguments, its message and the
    clients it uses.

    ``message`` is the Dramatiq message being processed (its options carry the
    job's usage and an invalid answer's feedback); ``None`` outside a worker (the
    eval command), where nothing is stored.
    """

    job_type: JobType[P]
    job_id: str | int
    user_id: int
    payload: P
    services: Services
    message: JobMessage = None

    @classmethod
    def start(
        cls,
        job_type: JobType[P],
        args: Sequence[Any],
        kwargs: dict[str, Any],
        svc: Services,
        message: JobMessage = None,
    ) -> Job[P]:
        """Validate the actor's arguments and bind the worker's clients (``svc``).

        Raises:
          InvalidPayload: naming the offending argument or field.
        """
        parsed = parse_arguments(args, kwargs, job_type.payload_model)
        return cls(job_type, parsed.job_id, parsed.user_id, parsed.payload, svc, message)

    def request(
        self, result_model: type[Result], data: dict[str, Any], image: StoredImage | None = None
    ) -> LLMRequest:
        """The call that asks the model for one ``result_model`` object about ``data``.

        The task text, the labelled examples (shown as earlier turns) and the
        answer's budget come from the prompt profile's entry for this job type.
        On a retry after an invalid answer, the conversation includes that
        answer and what was wrong with it.
        """
        config = self.services.settings
        schema = response_schema(result_model)
        spec = self.services.prompt_profile.job(self.job_type.name)
        system = prompts.system_prompt(spec.task, schema if spec.schema_in_prompt else None)
        in_turns = spec.examples_as == "turns"
        if spec.examples and not in_turns:
            system = f"{system}\n\n{prompts.examples_text(spec.examples)}"
        prompt = Prompt(
            system=system,
            turns=(
                *(prompts.example_turns(spec.examples) if in_turns else ()),
                Turn("user", prompts.data_block(data), image=image),
                *retry_feedback(self.message),
            ),
        )
        return LLMRequest(
            model=config.llm_vision_model if image else config.llm_text_model,
            prompt=prompt,
            schema_name=result_model.__name__,
            schema=schema,
            max_tokens=spec.max_tokens,
            priority=config.llm_priority(self.job_type.name, self.job_type.priority),
            share=job_share(config.llm_share_key, self.user_id),
            user=str(self.user_id) if self.user_id is not None else "",
        )

    def ask(
        self,
        result_model: type[R],
        *,
        data: dict[str, Any],
        image: StoredImage | None = None,
    ) -> R:
        """Ask the model for one ``result_model`` object about ``data`` (see :meth:`request`).

        A valid result stored by an earlier attempt or another message of the same
        job (job type and ``job_id``, for ``JOB_RESULT_TTL_SECONDS``) is reused; the
        call itself is made under the job's lease (:mod:`llm_worker.jobs.lease`), and
        the first result stored is the one returned by every delivery of the job.

        Raises:
          PromptTooLarge, LLMUnavailable, LLMRequestRejected, InvalidLLMResponse,
          JobInProgress.
        """
        message = self.message
        if message is None:  # outside a worker (the eval command): nothing stored
            return self._call(result_model, data, image)
        config = self.services.settings
        prefix = config.key_prefix
        with self.services.job_leases.hold(
            keys.job_lease(prefix, self.job_type.name, self.job_id),
            keys.job_result(prefix, self.job_type.name, result_model.__name__, self.job_id),
            delivery_key(message),
        ) as lease:
            if lease.stored is not None:
                return self._reuse(result_model, lease.stored, message.options)
            parsed = self._call(result_model, data, image, before_call=lease.confirm)
            usage = message_usage(message).as_dict()
            stored = {"result": parsed.model_dump(mode="json"), "usage": usage}
            earlier = lease.store(json.dumps(stored), config.job_result_ttl_seconds)
            if earlier is not None:  # another delivery's result was stored first: it wins
                return self._reuse(result_model, earlier, message.options)
            return parsed

    def _call(
        self,
        result_model: type[R],
        data: dict[str, Any],
        image: StoredImage | None,
        before_call: Callable[[], None] | None = None,
    ) -> R:
        request = self.request(result_model, data, image)
        answer = request.call(self.services, self.message, before_call)
        parsed = parse_answer(answer.text, result_model)
        assert isinstance(parsed, result_model)
        return parsed

    def _reuse(self, result_model: type[R], raw: bytes, options: dict[str, Any]) -> R:
        """The valid result an earlier attempt or message of this job stored.

        The usage it cost becomes this message's, when this message has none yet,
        so Core gets the same final state from every message of the job.
        """
        stored = json.loads(raw)
        logger.info("reusing the stored LLM result of job %s", self.job_id)
        if Usage.from_options(options).attempts == 0:
            Usage.from_options({USAGE_OPTION: stored.get("usage")}).store(options)
        return result_model.model_validate(stored["result"])

    def notification(self, content: dict[str, Any]) -> Notification:
        """A notification of this job type's message type with ``content``.

        Raises:
          ValueError: for a job type that publishes no notification.
        """
        if self.job_type.notification is None:
            raise ValueError(f"{self.job_type.name} publishes no notification")
        return Notification(self.job_type.notification, content)

    def complete(
        self, result: dict[str, Any], notifications: Iterable[Notification] | None = None
    ) -> None:
        """Report the job completed with ``result`` through the one road to Core
        (:meth:`~llm_worker.core.outbox.ReportOutbox.complete`): Core, then the
        notifications and the finished marker in one Redis round trip.

        ``notifications`` default: one of the job type's message type carrying the
        result (none for a job type that publishes none).
        """
        if notifications is None:
            notified = self.job_type.notification is not None
            notifications = [self.notification(result)] if notified else []
        report = Report(
            message_id=message_key(self.message) if self.message is not None else "",
            job_type=self.job_type.name,
            job_id=self.job_id,
            user_id=self.user_id,
            status="completed",
            error=None,
            usage=message_usage(self.message).as_dict(),
            result=result,
        )
        self.services.outbox.complete(report, list(notifications))
