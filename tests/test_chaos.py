"""Chaos: killed workers, a flapping LLM, Core failing in bursts, a Redis restart and a
Redis outage of tens of seconds; nothing lost or doubled.  And Redis stopped and started
again and again under load, every job counted.

The default run sends 200 jobs (about 2 minutes); ``LLMW_CHAOS_JOBS=1000`` runs the long
version, ``LLMW_CHAOS_REDIS_OUTAGE_SECONDS`` sets the outage (default 20).
"""

from __future__ import annotations

import collections
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest
import redis

from llm_worker.testing.fakes import Reply
from tests.support import ROOT

pytestmark = [pytest.mark.chaos, pytest.mark.cli]
JOBS = int(os.environ.get("LLMW_CHAOS_JOBS", "200"))
REDIS_OUTAGE_SECONDS = float(os.environ.get("LLMW_CHAOS_REDIS_OUTAGE_SECONDS", "20"))
ANSWERS = {
    "ImageTagResult": {"description": "a cat", "tags": ["cat"]},
    "IntentResult": {"intent": "task", "confidence": 0.8},
    "FollowupResult": {"question": "Which one?"},
    "TaskMatchResult": {"task_id": 5, "confidence": 0.9, "reason": "same trip"},
    "EmailExtractResult": {
        "events": [
            {
                "title": "Dentist",
                "start": "2026-12-01T09:00:00",
                "end": None,
                "location": None,
                "confidence": 0.9,
            }
        ]
    },
}
SUCCESS_TYPES = {
    "image_tag": ["llm_image_tag_result"],
    "intent_classify": ["llm_intent_result"],
    "followup": ["llm_followup_result"],
    "task_match": ["llm_task_match_result"],
    "email_extract": ["event_confirmation"],
}


def flapping_llm(request):
    """Answers right most of the time; otherwise 500, 429, slow or invalid JSON (the test
    also takes the server down now and then)."""
    body = request["json"] or {}
    roll = random.random()
    if roll < 0.04:
        return Reply(status=500, body={"error": {"message": "flap"}})
    if roll < 0.06:
        return Reply(
            status=429, body={"error": {"message": "slow down"}}, headers={"Retry-After": "1"}
        )
    if roll < 0.12:
        return Reply(content="not json at all")
    delay = 0.3 if roll < 0.15 else 0.0
    name = ((body.get("response_format") or {}).get("json_schema") or {}).get("name")
    return Reply(content=ANSWERS.get(name, "pong"), delay=delay)


PRODUCER = """
import sys, time
from actors import email_extract, followup, image_tag, intent_classify, task_match
from llm_worker.broker.outbound import send_message

senders = [
    (image_tag, lambda n: {"image_id": n, "path": "cat.png"}),
    (intent_classify, lambda n: {"text": f"note {n}"}),
    (followup, lambda n: {"text": f"what about {n}"}),
    (task_match, lambda n: {"content": f"trip idea {n}"}),
    (email_extract, lambda n: {"subject": "Dentist", "body": f"appointment {n}"}),
]
jobs, spread = int(sys.argv[1]), float(sys.argv[2])
for n in range(jobs):
    actor, payload = senders[n % len(senders)]
    while True:
        try:
            if n % 20 == 19:  # a producer that bypasses the send-time check, with a bad payload
                send_message(actor.queue_name, actor.actor_name, (n, 42, {"nope": n}), {})
            else:
                actor.send(n, 42, payload(n))
            break
        except Exception as exc:  # Redis restarting: a producer tries again
            print("send failed, retrying:", exc, file=sys.stderr)
            time.sleep(0.5)
    time.sleep(spread / jobs)
"""
ACTORS = ["image_tag", "intent_classify", "followup", "task_match", "email_extract"]
MALFORMED = {n for n in range(JOBS) if n % 20 == 19}


class Flaps:
    """Background faults: Core answers 503 in bursts of 4 every 2 s, and the LLM's server
    goes away (connections refused) for 1.5 s every 7 s."""

    def __init__(self, fake_llm, fake_core):
        self.fake_llm, self.fake_core = fake_llm, fake_core
        self.llm_outages = 0
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=target, daemon=True)
            for target in (self._core_bursts, self._llm_outages)
        ]
        for thread in self._threads:
            thread.start()

    def _core_bursts(self):
        while not self._stop.wait(2.0):
            self.fake_core.failures.extend([503] * 4)

    def _llm_outages(self):
        while not self._stop.wait(7.0):
            self.llm_outages += 1
            self.fake_llm.down()
            self._stop.wait(1.5)
            self.fake_llm.up()

    def stop(self):
        """Stop the faults; the LLM is up when this returns."""
        self._stop.set()
        for thread in self._threads:
            thread.join()


def _answer(request):
    body = request["json"] or {}
    name = ((body.get("response_format") or {}).get("json_schema") or {}).get("name")
    return Reply(content=ANSWERS.get(name, "pong"))


@pytest.mark.timeout(420)
def test_chaos_audit(start_worker, cli_env, fake_llm, fake_core, redis_server):
    """Jobs sent over ~30 s while workers are killed, the LLM flaps, Core fails in bursts,
    Redis restarts once and later stays away for REDIS_OUTAGE_SECONDS; then every job must
    have exactly one state Core accepted."""
    url = redis_server.url
    redis_client = redis.Redis.from_url(url)
    random.seed(7)
    fake_llm.fallback = flapping_llm
    fake_core.tasks[42] = [{"id": 5, "title": "Trip", "description": None}]
    chaos_env = {
        "REDIS_URL": url,
        "LLM_PROBE_INTERVAL_SECONDS": "0.5",
        "LLM_RETRY_BACKOFF_SECONDS": "0.05",
        "LLM_MAX_RETRIES": "6",
        "LLM_REQUEST_MAX_SERVER_ERRORS": "8",  # its 500s are random, not one request's
        "JOB_MAX_RETRIES": "40",
        "JOB_RETRY_MIN_BACKOFF_SECONDS": "0.2",
        "JOB_RETRY_MAX_BACKOFF_SECONDS": "2",
        "MESSAGE_MAX_AGE_SECONDS": "0",
        "BROKER_HEARTBEAT_TIMEOUT_SECONDS": "3",
        "BROKER_RECOVERY_INTERVAL_SECONDS": "1",
    }
    worker_args = ("--processes", "2", "--threads", "4")
    workers = [start_worker(*worker_args, **chaos_env)]
    producer = subprocess.Popen(
        [sys.executable, "-c", PRODUCER, str(JOBS), str(JOBS * 0.15)],
        cwd=ROOT,
        env={**cli_env, "REDIS_URL": url},
    )
    flaps = Flaps(fake_llm, fake_core)
    kills, redis_restarts, redis_outages = 0, 0, 0
    chaos_until = time.monotonic() + max(30.0, JOBS * 0.15 + 5) + REDIS_OUTAGE_SECONDS
    deadline = time.monotonic() + 360 + REDIS_OUTAGE_SECONDS
    try:
        while time.monotonic() < chaos_until:
            time.sleep(3)
            if workers[-1].poll() is not None:  # the CLI exits when one of its processes dies
                workers.append(start_worker(*worker_args, **chaos_env))
                continue
            if redis_restarts == 0 and kills >= 3:
                redis_server.restart()  # the workers are not restarted for it
                redis_restarts += 1
                continue
            if redis_outages == 0 and kills >= 5:
                redis_server.stop()  # everyone meets connections refused, for tens of seconds
                time.sleep(REDIS_OUTAGE_SECONDS)
                redis_server.start()
                redis_outages += 1
                continue
            children = subprocess.run(
                ["pgrep", "-P", str(workers[-1].pid)], capture_output=True, text=True
            ).stdout.split()
            if children:
                os.kill(int(random.choice(children)), signal.SIGKILL)
                kills += 1
        flaps.stop()  # the LLM is up again
        fake_llm.fallback = _answer
        producer.wait(timeout=60)
        while time.monotonic() < deadline and len(_final(fake_core)) < JOBS:
            if workers[-1].poll() is not None:
                workers.append(start_worker(*worker_args, **chaos_env))
            time.sleep(1)
        time.sleep(3)  # let redeliveries, if any, land
    finally:
        flaps.stop()
        if producer.poll() is None:
            producer.kill()

    notes = [json.loads(fields[b"data"]) for _, fields in redis_client.xrange("notify:telegram")]
    redis_client.close()
    assert redis_outages == 1
    completed = _audit(_final(fake_core), notes)
    calls = len(fake_llm.chat_requests())
    print(
        f"\nchaos: {JOBS} jobs, {kills} workers killed, {len(workers) - 1} restarts, "
        f"{redis_restarts} Redis restart, {redis_outages} Redis outage of "
        f"{REDIS_OUTAGE_SECONDS:.0f}s, {flaps.llm_outages} LLM outages, {completed} completed, "
        f"{JOBS - completed} failed "
        f"({len(MALFORMED)} malformed), "
        f"0 lost, 0 duplicated, {calls / max(completed, 1):.2f} LLM calls per completed job"
    )


def _audit(final, notes, jobs=JOBS, malformed=MALFORMED):
    """Check every job has one state Core accepted and its notifications, each once;
    return how many completed."""
    missing = sorted(set(range(jobs)) - set(final))
    assert missing == [], f"{len(missing)} jobs without a state Core accepted: {missing[:20]}"
    seen = collections.Counter((n["job_id"], n["message_type"]) for n in notes)
    assert [key for key, count in seen.items() if count > 1] == []  # nothing doubled
    for job_id, statuses in final.items():
        assert len(set(statuses)) == 1, (job_id, statuses)  # exactly one terminal state
        actor = ACTORS[job_id % len(ACTORS)]
        expected = SUCCESS_TYPES[actor] if statuses[0] == "completed" else ["llm_failure"]
        assert [t for (j, t) in seen if j == job_id] == expected, job_id  # nothing missing
    assert {j for j, s in final.items() if s[0] == "failed"} >= malformed
    return sum(1 for s in final.values() if s[0] == "completed")


def _final(fake_core):
    """Terminal statuses Core accepted, per job id."""
    final = collections.defaultdict(list)
    for request in list(fake_core.requests):
        accepted = request.get("status", 200) < 300  # Core answered 5xx to the others
        if (
            accepted
            and request["method"] == "PATCH"
            and (request["json"] or {}).get("status") in ("completed", "failed")
        ):  # a worker killed while it sent its PATCH leaves one without a body
            final[int(request["path"].rsplit("/", 1)[1])].append(request["json"]["status"])
    return final


STOPS = int(os.environ.get("LLMW_REDIS_STOPS", "8"))


@pytest.mark.timeout(300)
def test_redis_stopped_and_started_under_load(
    start_worker, cli_env, fake_llm, fake_core, redis_server
):
    """Redis stopped (connections refused) and started STOPS times while 80 jobs are sent
    and run, the LLM flapping and Core failing in bursts (so that retries, holds and reports
    are being written when Redis goes away); every job ends with one state Core accepted and
    its notification, once."""
    jobs = 80
    random.seed(11)
    fake_llm.fallback = flapping_llm
    fake_core.tasks[42] = [{"id": 5, "title": "Trip", "description": None}]
    worker_env = {
        "REDIS_URL": redis_server.url,
        "MESSAGE_MAX_AGE_SECONDS": "0",
        "JOB_MAX_RETRIES": "40",
        "JOB_RETRY_MIN_BACKOFF_SECONDS": "0.2",
        "JOB_RETRY_MAX_BACKOFF_SECONDS": "1",
        "BROKER_HEARTBEAT_TIMEOUT_SECONDS": "3",
        "BROKER_RECOVERY_INTERVAL_SECONDS": "1",
        "LLM_PROBE_INTERVAL_SECONDS": "0.5",
        "LLM_RETRY_BACKOFF_SECONDS": "0.05",
        "LLM_MAX_RETRIES": "6",
    }
    workers = [start_worker("--processes", "2", "--threads", "4", **worker_env)]
    bursts = threading.Event()

    def core_bursts():
        while not bursts.wait(0.7):
            fake_core.failures.extend([503] * 3)

    threading.Thread(target=core_bursts, daemon=True).start()
    producer = subprocess.Popen(
        [sys.executable, "-c", PRODUCER, str(jobs), "12"],
        cwd=ROOT,
        env={**cli_env, "REDIS_URL": redis_server.url},
    )
    try:
        for _ in range(STOPS):
            time.sleep(0.5 + random.random())  # up, under load
            redis_server.stop()
            time.sleep(0.5 + random.random())  # down: connections refused
            redis_server.start()
        bursts.set()
        fake_llm.fallback = _answer
        producer.wait(timeout=120)
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and len(_final(fake_core)) < jobs:
            if workers[-1].poll() is not None:
                workers.append(start_worker("--processes", "2", "--threads", "4", **worker_env))
            time.sleep(0.5)
        time.sleep(2)  # let redeliveries, if any, land
    finally:
        bursts.set()
        if producer.poll() is None:
            producer.kill()

    client = redis.Redis.from_url(redis_server.url)
    notes = [json.loads(fields[b"data"]) for _, fields in client.xrange("notify:telegram")]
    client.close()
    malformed = {n for n in range(jobs) if n % 20 == 19}
    completed = _audit(_final(fake_core), notes, jobs=jobs, malformed=malformed)
    assert completed == jobs - len(malformed)
    print(f"\nredis stops: {STOPS}, {jobs} jobs, {completed} completed, 0 lost, 0 duplicated")
