"""The git worker's actors, declared on whichever broker runs them."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import dramatiq

from llm_worker import keys
from llm_worker.broker.outbound import send_message
from llm_worker.review.protocol import (
    CONTEXT_READY,
    FETCH_CONTEXT,
    GIT_QUEUE,
    POST_COMMENT,
    REVIEW_ACTOR,
    REVIEW_QUEUE,
)
from llm_worker.services import services

from .tools import GitTools, ToolError

logger = logging.getLogger("gitworker")


def git_tools() -> GitTools:
    """Tools over ``GIT_REPO_PATH`` (default: the current directory), answers capped
    at ``GIT_CONTEXT_MAX_CHARS`` (default 20000)."""
    root = Path(os.environ.get("GIT_REPO_PATH") or ".")
    return GitTools(root, max_chars=int(os.environ.get("GIT_CONTEXT_MAX_CHARS") or 20_000))


def answer_tool_call(tool_call: Any) -> tuple[str, str | None]:
    """Run one tool call; return ``(content, error)``, never raise.

    Bad arguments (of the wrong type, unknown, missing) and refused paths
    give the tool's own error; a bug gives ``internal error: ...`` and is
    logged with the tool's name and argument names only, never their values.
    """
    if not isinstance(tool_call, dict):
        return "", "tool_call must be an object"
    tool = tool_call.get("tool")
    arguments = tool_call.get("arguments") or {}
    if not isinstance(arguments, dict):
        return "", "arguments must be an object"
    try:
        return git_tools().run(str(tool), arguments), None
    except ToolError as exc:
        return "", str(exc)
    except Exception as exc:
        logger.error(
            "tool call %s(%s) failed: %s",
            str(tool)[:40],
            ", ".join(str(name)[:40] for name in list(arguments)[:10]),
            type(exc).__name__,
            exc_info=True,
        )
        return "", f"internal error: {type(exc).__name__}"


def fetch_context(review_request_id: str | int, chunk_id: str | int, tool_call: Any) -> None:
    """Answer a tool call and send ``review_chunk(..., "CONTEXT_READY", ...)`` back.

    Every call ends in exactly one ``CONTEXT_READY``: the tool's answer, or an
    ``error`` for a malformed call, bad arguments or a bug.  Only sending it
    can fail (the broker unreachable); Dramatiq then retries the whole call.
    """
    content, error = answer_tool_call(tool_call)
    call_id = tool_call.get("id") if isinstance(tool_call, dict) else None
    payload = {"tool_call_id": str(call_id), "content": content, "error": error}
    send_message(
        REVIEW_QUEUE, REVIEW_ACTOR, (review_request_id, chunk_id, CONTEXT_READY, payload), {}
    )


def post_comment(
    review_request_id: str | int,
    chunk_id: str | int,
    comments: list[dict[str, Any]],
    summary: str | None = None,
    error: str | None = None,
) -> None:
    """Keep the chunk's comments (or summary, or error) in Redis and log that they came.

    The log line has the ids and counts only; with ``LOG_CONTENT=true`` each
    comment is logged too (``llm-worker review`` prints them itself).
    """
    record = {"chunk_id": chunk_id, "comments": comments, "summary": summary, "error": error}
    svc = services()
    key = keys.review_comments(svc.settings.key_prefix, review_request_id)
    pipe = svc.redis.pipeline(transaction=True)
    pipe.rpush(key, json.dumps(record))
    pipe.expire(key, svc.settings.review_comments_ttl_seconds)
    pipe.execute()
    outcome = "failed" if error else f"{len(comments)} comments"
    logger.info("review %s:%s posted: %s", review_request_id, chunk_id, outcome)
    if svc.settings.log_content:
        for comment in comments:
            where = f"{comment.get('path')}:{comment.get('line')}"
            logger.info(
                "[%s] %s %s: %s", chunk_id, where, comment.get("severity"), comment.get("body")
            )


def declare(broker: dramatiq.Broker) -> list[dramatiq.Actor[Any, Any]]:
    """Declare ``fetch_context`` and ``post_comment`` on ``broker`` (queue ``git_queue``)."""
    return [
        dramatiq.actor(broker=broker, actor_name=name, queue_name=GIT_QUEUE, max_retries=3)(fn)
        for name, fn in ((FETCH_CONTEXT, fetch_context), (POST_COMMENT, post_comment))
    ]
