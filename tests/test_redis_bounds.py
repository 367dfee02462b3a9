"""Every Redis structure the service writes without end has a bound: the notification
stream is trimmed, a review's posted comments expire."""

from __future__ import annotations

from gitworker.handlers import post_comment
from llm_worker import keys
from llm_worker.core.notify import Notifier

#: Redis trims a stream ``MAXLEN ~`` a macro node at a time (``stream-node-max-entries``,
#: 100 by default), so up to one node more than the bound may stay.
NODE_ENTRIES = 100


def test_the_notification_stream_keeps_about_its_bound(redis_client):
    notifier = Notifier(redis_client, "notify:bounded", max_entries=1_000)
    for n in range(3_000):
        notifier.publish(user_id=1, job_id=n, message_type="llm_intent_result", content={})

    assert 1_000 <= redis_client.xlen("notify:bounded") <= 1_000 + NODE_ENTRIES
    newest = redis_client.xrevrange("notify:bounded", count=1)[0][1][b"data"]
    assert b'"job_id": 2999' in newest  # the oldest went, the newest stayed


def test_publishing_a_completed_jobs_notifications_trims_the_stream_too(redis_client):
    notifier = Notifier(redis_client, "notify:bounded", max_entries=1_000)
    for n in range(1_500):
        publications = [
            notifier.prepare(
                user_id=1, job_id=n, message_type="event_confirmation", content={}, discriminator=i
            )
            for i in range(2)
        ]
        notifier.publish_and_mark(
            publications, key=f"llmw:finished:m{n}", value="completed", ttl_seconds=60
        )

    assert 1_000 <= redis_client.xlen("notify:bounded") <= 1_000 + NODE_ENTRIES


def test_a_reviews_posted_comments_expire(env, redis_client):
    env(REVIEW_COMMENTS_TTL_SECONDS=3600)
    post_comment("rr-ttl", "1", comments=[], summary="fine")
    post_comment("rr-ttl", "2", comments=[], summary="fine")

    key = keys.review_comments("llmw", "rr-ttl")
    assert redis_client.llen(key) == 2
    assert 3500 < redis_client.ttl(key) <= 3600
