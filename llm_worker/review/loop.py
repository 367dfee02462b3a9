"""One turn of a chunk's review: build the prompt, ask the model, act on its answer."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from llm_worker import keys
from llm_worker.errors import InvalidLLMResponse, InvalidPayload
from llm_worker.fleet.capacity import review_share
from llm_worker.jobs.llm_call import JobMessage, LLMRequest, call_llm, message_usage, retry_feedback
from llm_worker.llm.json_extract import ANSWER_EXCERPT_CHARS, extract_json_object
from llm_worker.llm.providers.base import Prompt, Turn
from llm_worker.llm.tokens import BYTES_PER_TOKEN, SHORTENED_MARKER, PromptTooLarge
from llm_worker.prompts import render as common_prompts
from llm_worker.prompts import review as prompts
from llm_worker.prompts.profiles import Example
from llm_worker.review.anchors import anchor_comments
from llm_worker.review.conversation import Conversation, ConversationStore
from llm_worker.review.diff import FileDiff, parse_file_diff, split_diff
from llm_worker.review.kind import REVIEW_PRIORITY
from llm_worker.review.protocol import (
    FETCH_CONTEXT,
    POST_COMMENT,
    REVIEW_ACTOR,
    REVIEW_REQUEST,
    SUB_CHUNK_MARK,
    SUB_CHUNK_OPTION,
)
from llm_worker.review.schemas import (
    CommentAnswer,
    ContextReadyPayload,
    ReviewArguments,
    ReviewRequestPayload,
    ToolCallAnswer,
    answer_schema,
    chunk_answer_schema,
    parse_review_answer,
)

if TYPE_CHECKING:  # the context is handed in; it imports this package
    from llm_worker.services import Services

logger = logging.getLogger("llm_worker.review")

#: Share of the prompt budget the first prompt (system and diff) may take; the rest
#: is left for tool results.  A larger diff is split by hunks into sub-chunks.
FIRST_PROMPT_SHARE = 0.6

Send = Callable[[str, tuple[Any, ...], dict[str, Any]], None]


def message_turn(message: dict[str, Any]) -> Turn:
    """A stored conversation message as a prompt turn."""
    return Turn(message["role"], message["content"], kind=message.get("kind", "data"))


def invalid_comments(answer: CommentAnswer, path: str, shown: set[int]) -> list[str]:
    """What is wrong with comments that do not point at the chunk's new-side lines."""
    problems = []
    for n, comment in enumerate(answer.comments):
        if comment.path != path:
            problems.append(f"comments.{n}.path must be {path!r}")
        lines = [comment.line] + ([comment.end_line] if comment.end_line is not None else [])
        if any(line not in shown for line in lines) or (
            comment.end_line is not None and comment.end_line < comment.line
        ):
            problems.append(f"comments.{n} points at lines {lines} outside the diff")
    return problems


def line_ranges(lines: set[int]) -> str:
    """``{1, 2, 3, 7}`` as ``"1-3, 7"``."""
    ranges: list[str] = []
    for line in sorted(lines):
        if ranges and ranges[-1].split("-")[-1] == str(line - 1):
            ranges[-1] = ranges[-1].split("-")[0] + f"-{line}"
        else:
            ranges.append(str(line))
    return ", ".join(ranges)


def shown_chunk_data(data: dict[str, Any]) -> dict[str, Any]:
    """A chunk's data as the model is shown it: its ``diff`` with each new-side line's number
    at the line's start, and ``new_side_lines``, the lines a comment may point at."""
    diff = parse_file_diff(str(data["diff"]))
    return {**data, "diff": diff.numbered_text(), "new_side_lines": line_ranges(diff.new_lines())}


def cancel_review(svc: Services, review_request_id: str | int) -> None:
    """Give up a review: whatever of it is still queued (a chunk's request, a tool call's
    answer) is dropped by the worker that picks it up instead of calling the LLM."""
    config = svc.settings
    key = keys.review_cancelled(config.key_prefix, review_request_id)
    svc.redis.set(key, "1", ex=config.review_conversation_ttl_seconds)


@dataclass
class ReviewTurn:
    """Handles one ``review_chunk`` message.

    Parameters:
      svc: the process's clients.
      args: the validated message arguments.
      send_git: sends ``(actor_name, args, kwargs)`` to the git worker.
      send_review: sends ``(chunk_id, event, payload)`` to ``review_chunk`` with the
        :data:`~llm_worker.review.protocol.SUB_CHUNK_OPTION` (a split chunk's parts).
      message: the message being handled (its options carry the usage and an invalid
        answer's feedback); ``None`` outside a worker (the eval command).
    """

    svc: Services
    args: ReviewArguments
    send_git: Send
    send_review: Callable[[str, str, dict[str, Any]], None]
    message: JobMessage = None

    @property
    def _priority(self) -> int:
        return self.svc.settings.llm_priority(REVIEW_ACTOR, REVIEW_PRIORITY)

    @property
    def _share(self) -> str:
        return review_share(self.svc.settings.llm_share_key, self.args.review_request_id)

    @property
    def _max_tool_calls(self) -> int:
        limit = self.svc.settings.review_max_tool_calls
        profiled = self.svc.prompt_profile.job("review").max_tool_calls
        return min(limit, profiled) if profiled is not None else limit

    def run(self) -> None:
        """Take this event's turn in the conversation, under the conversation's lock."""
        config = self.svc.settings
        store = ConversationStore(
            self.svc.redis,
            config.key_prefix,
            ttl_seconds=config.review_conversation_ttl_seconds,
            lock_seconds=config.llm_timeout_seconds * 2 + 60,
        )
        rr, chunk_id = self.args.review_request_id, self.args.chunk_id
        if self.svc.redis.exists(keys.review_cancelled(config.key_prefix, rr)):
            logger.info("review %s was cancelled: %s of %s dropped", rr, self.args.event, chunk_id)
            return
        with store.turn(rr, chunk_id):
            conversation = store.load(rr, chunk_id)
            if self._redeliver(store, conversation):
                return
            if isinstance(self.args.payload, ReviewRequestPayload):
                messages = self._start(conversation, self.args.payload)
            else:
                messages = self._continue(conversation, self.args.payload)
            if messages is not None:
                self._take_turn(store, messages)

    # -- events --------------------------------------------------------------------------

    def _start(
        self, conversation: Conversation, payload: ReviewRequestPayload
    ) -> list[dict[str, Any]] | None:
        if conversation.exists:
            logger.warning("duplicate REVIEW_REQUEST for %s ignored", self._name)
            return None
        if SUB_CHUNK_MARK in str(self.args.chunk_id) and not self._is_sub_chunk:
            raise InvalidPayload(
                "chunk_id", f"must not contain {SUB_CHUNK_MARK!r} (it marks a split chunk's parts)"
            )
        try:
            diff = parse_file_diff(payload.chunk.diff)
        except ValueError as exc:
            raise InvalidPayload("payload.chunk.diff", str(exc)) from None
        first = self._first_message(payload, diff)
        budget = int(self.svc.settings.prompt_token_budget * FIRST_PROMPT_SHARE)
        size = self._prompt_tokens([first])
        if size > budget:
            if self._is_sub_chunk:
                raise PromptTooLarge(
                    f"sub-chunk prompt of {size} tokens is over {budget} even after splitting"
                )
            self._split(payload, diff, budget)
            return None
        return [first]

    def _continue(
        self, conversation: Conversation, payload: ContextReadyPayload
    ) -> list[dict[str, Any]] | None:
        if not conversation.exists or conversation.finished:
            state = "finished" if conversation.exists else "missing"
            logger.warning("CONTEXT_READY for %s conversation %s ignored", state, self._name)
            return None
        pending = conversation.pending_tool_call_id
        if pending != payload.tool_call_id:
            logger.warning(
                "CONTEXT_READY with %s tool_call_id %s for %s ignored (pending: %s)",
                "a duplicate or unknown",
                payload.tool_call_id,
                self._name,
                pending,
            )
            return None
        tool = json.loads(conversation.messages[-1]["content"]).get("tool", "?")
        data = {"content": self._capped(payload.content), "error": payload.error}
        header = prompts.TOOL_RESULT.format(tool_call_id=pending, tool=tool)
        result = {
            "role": "user",
            "kind": "tool_result",
            "tool_call_id": pending,
            "content": f"{header}\n{common_prompts.data_block(data)}",
        }
        return [*conversation.messages, result]

    def _capped(self, content: str) -> str:
        """A tool result cut to a quarter of the prompt budget, so one always fits."""
        limit = self.svc.settings.prompt_token_budget // 4 * BYTES_PER_TOKEN
        if len(content.encode("utf-8")) <= limit:
            return content
        cut = content.encode("utf-8")[:limit].decode("utf-8", errors="ignore")
        return cut + SHORTENED_MARKER.format(removed=len(content) - len(cut))

    def _redeliver(self, store: ConversationStore, conversation: Conversation) -> bool:
        """Send the last answer again if an earlier run saved it but did not deliver it."""
        if not conversation.messages or conversation.messages[-1].get("delivered", True):
            return False
        messages = list(conversation.messages)
        self._deliver(store, messages)
        return True

    # -- turns ---------------------------------------------------------------------------

    @property
    def _is_sub_chunk(self) -> bool:
        """Whether this request is a part of a split chunk, sent by the loop itself."""
        return self.message is not None and bool(self.message.options.get(SUB_CHUNK_OPTION))

    @property
    def _name(self) -> str:
        return f"{self.args.review_request_id}:{self.args.chunk_id}"

    def _first_message(self, payload: ReviewRequestPayload, diff: FileDiff) -> dict[str, Any]:
        chunk = payload.chunk
        data = shown_chunk_data(
            {
                "repo": payload.repo,
                "title": payload.title,
                "description": payload.description,
                "path": chunk.path,
                "language": chunk.language,
                "diff": diff.text(),
            }
        )
        return {
            "role": "user",
            "kind": "data",
            "content": common_prompts.data_block(data),
            "chunk": {"path": chunk.path, "diff": diff.text(), "language": chunk.language},
        }

    def first_request(self, payload: ReviewRequestPayload, *, tools_allowed: bool) -> LLMRequest:
        """The call of a chunk's first turn (the eval's review cases ask it without tools)."""
        diff = parse_file_diff(payload.chunk.diff)
        messages = [self._first_message(payload, diff)]
        return LLMRequest(
            model=self.svc.settings.llm_text_model,
            prompt=self._prompt(messages, tools_allowed),
            schema_name="ReviewAnswer",
            schema=chunk_answer_schema(
                tools_allowed=tools_allowed,
                path=payload.chunk.path,
                lines=diff.new_lines(),
                code=self._quotable(diff),
            ),
            max_tokens=self.svc.prompt_profile.job("review").max_tokens,
            priority=self._priority,
            share=self._share,
        )

    def _quotable(self, diff: FileDiff) -> list[str]:
        """The code a comment may quote: the profile's ``quote_lines`` of the chunk (all shown
        lines when it has no added line)."""
        added = self.svc.prompt_profile.job("review").quote_lines == "added"
        return list(((added and diff.added_code()) or diff.new_side_code()).values())

    def _prompt(
        self, messages: list[dict[str, Any]], tools_allowed: bool, *, feedback: bool = True
    ) -> Prompt:
        """The prompt of a turn; ``feedback``: with the turns that tell the model what was
        wrong with its last answer, on a retry after an invalid one."""
        spec = self.svc.prompt_profile.job("review")
        schema = answer_schema(tools_allowed=tools_allowed) if spec.schema_in_prompt else None
        task = spec.task or prompts.REVIEWER
        task = task.replace("{max_tool_calls}", str(self._max_tool_calls))
        examples = [
            Example(shown_chunk_data(e.data), e.answer) for e in spec.examples if "diff" in e.data
        ]
        turns = [*common_prompts.example_turns(examples), *(message_turn(m) for m in messages)]
        if not tools_allowed and self._max_tool_calls:
            text = prompts.TOOLS_EXHAUSTED.format(max_tool_calls=self._max_tool_calls)
            turns.append(Turn("user", text, kind="feedback"))
        retry = retry_feedback(self.message) if feedback else []
        return Prompt(common_prompts.system_prompt(task, schema), (*turns, *retry))

    def _prompt_tokens(self, messages: list[dict[str, Any]]) -> int:
        """The size of a chunk's first prompt, as its budget counts it: without a retry's
        feedback, which the call fits into the whole context window itself."""
        model = self.svc.settings.llm_text_model
        prompt = self._prompt(messages, tools_allowed=True, feedback=False)
        return self.svc.count_tokens(model, prompt)

    def _split(self, payload: ReviewRequestPayload, diff: FileDiff, budget: int) -> None:
        def fits(text: str) -> bool:
            part = parse_file_diff(text)
            return self._prompt_tokens([self._first_message(payload, part)]) <= budget

        parts = split_diff(diff, fits)
        if len(parts) < 2 or not all(fits(part.text()) for part in parts):
            raise PromptTooLarge(
                f"the diff of {payload.chunk.path} cannot be split to fit {budget} tokens"
            )
        logger.info("chunk %s too large: split into %d sub-chunks", self._name, len(parts))
        for n, part in enumerate(parts, start=1):
            chunk = {**payload.chunk.model_dump(), "diff": part.text()}
            sub_payload = {**payload.model_dump(), "chunk": chunk}
            part_id = f"{self.args.chunk_id}{SUB_CHUNK_MARK}{n}"
            self.send_review(part_id, REVIEW_REQUEST, sub_payload)

    def _take_turn(self, store: ConversationStore, messages: list[dict[str, Any]]) -> None:
        tool_calls = Conversation(tuple(messages)).tool_calls
        tools_allowed = tool_calls < self._max_tool_calls
        model = self.svc.settings.llm_text_model
        prompt = self._prompt(messages, tools_allowed)
        chunk = Conversation(tuple(messages)).chunk
        diff = parse_file_diff(str(chunk.get("diff", "")))
        schema = chunk_answer_schema(
            tools_allowed=tools_allowed,
            path=str(chunk.get("path", "")),
            lines=diff.new_lines(),
            code=self._quotable(diff),
        )
        answer = call_llm(
            self.svc,
            model=model,
            prompt=prompt,
            schema_name="ReviewAnswer",
            schema=schema,
            max_tokens=self.svc.prompt_profile.job("review").max_tokens,
            priority=self._priority,
            share=self._share,
            message=self.message,
        )
        parsed = self._parse(answer.text, messages, tools_allowed)
        reply: dict[str, Any] = {
            "role": "assistant",
            "kind": "tool_call" if isinstance(parsed, ToolCallAnswer) else "answer",
            "content": json.dumps(parsed.model_dump(), ensure_ascii=False),
            "delivered": False,
        }
        if isinstance(parsed, ToolCallAnswer):
            reply["tool_call_id"] = uuid.uuid4().hex
        messages = [*messages, reply]
        store.save(self.args.review_request_id, self.args.chunk_id, messages)
        self._deliver(store, messages)
        usage = message_usage(self.message)
        logger.info(
            "review turn done: chunk=%s action=%s attempts=%d tokens=%d+%d",
            self._name,
            json.loads(reply["content"])["action"],
            usage.attempts,
            usage.prompt_tokens,
            usage.completion_tokens,
        )

    def _parse(self, text: str, messages: list[dict[str, Any]], tools_allowed: bool) -> Any:
        value = extract_json_object(text)
        excerpt = text[:ANSWER_EXCERPT_CHARS]
        try:
            parsed = parse_review_answer(value, tools_allowed=tools_allowed)
        except ValidationError as exc:
            problem = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}"
                for e in exc.errors()[:5]
            )
            if not tools_allowed and value.get("action") == "tool_call":
                problem = f"tool calls are used up ({self._max_tool_calls}); answer now"
            raise InvalidLLMResponse(
                f"the answer did not match the schema: {problem}", answer=excerpt
            ) from None
        if isinstance(parsed, CommentAnswer):
            chunk = Conversation(tuple(messages)).chunk
            diff = parse_file_diff(chunk["diff"])
            parsed = anchor_comments(parsed, diff)
            shown = diff.new_lines()
            problems = invalid_comments(parsed, chunk["path"], shown)
            if problems:
                problems.append(f"comment only on new-side lines {line_ranges(shown)}")
                raise InvalidLLMResponse("; ".join(problems), answer=excerpt)
        return parsed

    def _deliver(self, store: ConversationStore, messages: list[dict[str, Any]]) -> None:
        last = messages[-1]
        answer = json.loads(last["content"])
        rr, chunk_id = self.args.review_request_id, self.args.chunk_id
        if last["kind"] == "tool_call":
            tool_call = {
                "id": last["tool_call_id"],
                "tool": answer["tool"],
                "arguments": answer["arguments"],
            }
            self.send_git(FETCH_CONTEXT, (rr, chunk_id), {"tool_call": tool_call})
        elif answer["action"] == "comment":
            comments = [
                {key: value for key, value in comment.items() if key != "code"}
                for comment in answer["comments"]
            ]
            self.send_git(POST_COMMENT, (rr, chunk_id), {"comments": comments})
        else:
            kwargs = {"comments": [], "summary": answer["summary"]}
            self.send_git(POST_COMMENT, (rr, chunk_id), kwargs)
        messages[-1] = {**last, "delivered": True}
        store.save(rr, chunk_id, messages)
