"""The dashboard, served by the real ``llm-worker dashboard`` command: without credentials
it answers only to loopback or configured Host names (DNS rebinding); in a real Chromium
it shows the queues and a job, requeues and deletes jobs through its own forms with its
CSRF cookie, and refuses a POST without them, checked in Redis.  Its Requeue puts a dead
letter back as ``llm-worker requeue-dead`` does, so the worker runs it again; it refuses
to requeue anything but a dead letter, and one it cannot requeue stays where it is."""

from __future__ import annotations

import contextlib
import http.client
import http.server
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import requests
from dramatiq import Message

from actors import intent_classify
from llm_worker import keys
from llm_worker.jobs import retry
from llm_worker.services import services
from tests.browser import Browser
from tests.payloads import GOOD_REMINDER
from tests.support import (
    ROOT,
    accepted_states,
    drain,
    free_port,
    running_worker,
    send_unchecked,
    wait_for,
)

ARTIFACTS = ROOT / "test-artifacts"
CREDENTIALS = ("ops", "s3cret")
#: The dashboard's CSRF cookie, and the name of the form field that must repeat it.
CSRF = "__dd_csrf"


@pytest.fixture
def dashboard(cli_env, tmp_path):
    """Start ``llm-worker dashboard`` on a free loopback port with extra env; stopped after.
    What they write on stderr goes to ``dashboard.log`` in the test's folder."""
    started = []
    log = (tmp_path / "dashboard.log").open("ab")

    def start(**env: str) -> int:
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "console.cli", "dashboard", "--port", str(port)],
            cwd=ROOT,
            env={**cli_env, "DASHBOARD_USER": "", "DASHBOARD_PASSWORD": "", **env},
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        started.append(process)
        wait_for(lambda: status_for(port, f"127.0.0.1:{port}"), timeout=30)
        return port

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=30)
    log.close()


def status_for(port: int, host: str | None) -> int | None:
    """The status of ``GET /`` sent to 127.0.0.1:port with ``Host: host`` (none: no header)."""
    try:
        if host is None:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
                conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
                return int(conn.recv(100).split()[1])
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        client.putrequest("GET", "/", skip_host=True)
        client.putheader("Host", host)
        client.endheaders()
        status = client.getresponse().status
        client.close()
        return status
    except OSError:
        return None


def test_only_loopback_host_names_are_answered(dashboard):
    port = dashboard()

    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "LOCALHOST", f"[::1]:{port}"):
        assert status_for(port, host) == 200, host
    for host in (
        f"rebind.attacker.example:{port}",
        "attacker.example",
        f"127.0.0.1.attacker.example:{port}",
        f"localhost.attacker.example:{port}",
        "",
        None,
    ):
        assert status_for(port, host) == 403, host


def test_configured_host_names_are_answered(dashboard):
    port = dashboard(DASHBOARD_ALLOWED_HOSTS="ops.internal, Dash.Example ")

    assert status_for(port, f"ops.internal:{port}") == 200
    assert status_for(port, "dash.example") == 200
    assert status_for(port, "other.internal") == 403


def test_with_credentials_basic_auth_decides(dashboard):
    port = dashboard(DASHBOARD_USER="ops", DASHBOARD_PASSWORD="s3cret")

    assert status_for(port, "anything.example") == 401


# -- in a browser ----------------------------------------------------------------------------


@pytest.mark.cli
@pytest.mark.parametrize("credentials", [CREDENTIALS, None], ids=["basic-auth", "loopback"])
def test_a_browser_shows_requeues_and_deletes_jobs_with_the_csrf_cookie(
    credentials, env, worker, dashboard, fake_llm, fake_core, redis_client, tmp_path
):
    dead = _dead_letters(worker, fake_llm, fake_core, redis_client)
    worker.stop()
    queued = intent_classify.send(1, 42, {"text": "x"})
    delayed = intent_classify.send_with_options(args=(7, 42, {"text": "x"}), delay=3_600_000)
    auth = {"DASHBOARD_USER": "ops", "DASHBOARD_PASSWORD": "s3cret"} if credentials else {}
    base = f"http://127.0.0.1:{dashboard(**auth)}"
    if credentials:
        assert requests.get(base, timeout=10).status_code == 401
        assert requests.get(base, auth=("ops", "wrong"), timeout=10).status_code == 401

    with Browser(tmp_path / "chromium", credentials=credentials) as browser:
        browser.open(f"{base}/")
        assert browser.challenges >= 1 if credentials else browser.challenges == 0
        home = browser.text()
        for queue in ("llm.intent", "llm.image_tag", "llm.review", "llm.sweep"):
            assert queue in home
        assert "llm.intent 1 1 2" in home  # jobs, delayed, failed
        if credentials:
            ARTIFACTS.mkdir(exist_ok=True)
            browser.screenshot(ARTIFACTS / "dashboard.png")
            assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000
        token = _open_the_dead_letters(browser)

        before = _redis_contents(redis_client)
        _refused_without_csrf(base, credentials, token, _redis_id(dead[98]))
        _refused_from_another_site(browser, base, _redis_id(dead[98]), token)
        _refused_unless_a_dead_letter(base, credentials, token, queued, delayed)
        assert _redis_contents(redis_client) == before

        ended = {job_id: accepted_states(fake_core, job_id) for job_id in (98, 99)}
        assert ended == {98: ["failed"], 99: ["failed"]}
        _requeue_from_the_list(browser, base, redis_client, dead[98], left=1)
        _requeue_from_the_list(browser, base, redis_client, dead[99], left=0)
        _delete_from_the_delayed_list(browser, base, redis_client, delayed)
        browser.click('a[href="/"]')
        assert "llm.intent 3 0 0" in browser.text()

        # A worker for which every job not requeued is stale at once: it skips job 1 and
        # runs the two requeued jobs again; job 99's payload fails its check again.
        env(MESSAGE_MAX_AGE_SECONDS="0.001")
        with running_worker(worker.broker, threads=2) as again:
            drain(again, "llm.intent")
        assert accepted_states(fake_core, 1) == ["skipped"]
        assert accepted_states(fake_core, 98) == ["failed", "completed"]
        assert accepted_states(fake_core, 99) == ["failed", "failed"]
        [redead] = map(Message.decode, redis_client.hvals("dramatiq:llm.intent.XQ.msgs"))
        assert redead.message_id == dead[99].message_id and redead.args == dead[99].args

        _delete_from_the_job_page(browser, base, redis_client, redead)
        browser.click('a[href="/"]')
        assert "llm.intent 0 0 0" in browser.text()


@pytest.mark.cli
def test_a_dead_letter_that_cannot_be_requeued_stays_where_it_is(dashboard, redis_client, tmp_path):
    redis_client.zadd("dramatiq:llm.intent.XQ", {"unreadable": int(time.time() * 1000)})
    redis_client.hset("dramatiq:llm.intent.XQ.msgs", "unreadable", b"{not a message")
    before = _redis_contents(redis_client)
    base = f"http://127.0.0.1:{dashboard()}"

    with requests.Session() as session:
        session.get(f"{base}/queues/llm.intent", timeout=10).raise_for_status()
        form = {"queue": "llm.intent.XQ", CSRF: session.cookies[CSRF]}
        failed = session.post(
            f"{base}/requeue-message", data={**form, "id": "unreadable"}, timeout=10
        )
        gone = session.post(f"{base}/requeue-message", data={**form, "id": "gone"}, timeout=10)

    assert failed.status_code == 500
    assert failed.headers["Content-Type"].startswith("text/plain")
    assert failed.text == (
        "Dead letter unreadable of llm.intent not requeued: it cannot be read (DecodeError: "
        "failed to decode message '{not a message'); it is still among the dead letters.\n"
    )
    assert (gone.status_code, gone.text) == (410, "The requested message no longer exists.")
    assert _redis_contents(redis_client) == before
    log = (tmp_path / "dashboard.log").read_text()
    assert "dashboard: dead letter unreadable of llm.intent not requeued" in log


def _open_the_dead_letters(browser: Browser) -> str:
    """From the queues, click through to ``llm.intent``'s dead letters; the CSRF token,
    which the browser holds as an HttpOnly cookie and every form on the page repeats."""
    browser.click('a[href="/queues/llm.intent"]')
    browser.click('a[href="/queues/llm.intent/failed"]')
    failed = browser.text()
    assert "Failed (2)" in failed
    assert "intent_classify(98, 42, {'text': 'remind me'})" in failed
    assert "intent_classify(99, 42, {'text': 5})" in failed
    [cookie] = [c for c in browser.cookies() if c["name"] == CSRF]
    assert cookie["httpOnly"] and cookie["path"] == "/"
    assert CSRF not in browser.evaluate("document.cookie")
    forms = browser.evaluate(f"[...document.forms].map(f => f.elements['{CSRF}'].value)")
    assert len(forms) == 4 and set(forms) == {cookie["value"]}  # requeue and delete, twice
    return str(cookie["value"])


def _requeue_from_the_list(
    browser: Browser, base: str, client: redis.Redis, dead: Message[Any], *, left: int
) -> None:
    """Open the dead letter's page, then requeue it from the list of dead letters, where
    ``left`` dead letters stay: it is back on its queue as a fresh attempt, in Redis and
    in the dashboard."""
    dead_id = _redis_id(dead)
    browser.open(f"{base}/queues/llm.intent/failed")
    browser.click(f'a[href="/queues/llm.intent/failed/{dead_id}"]')
    job = browser.text()
    assert f"Redis id {dead_id}" in job
    assert "Queue llm.intent (llm.intent.XQ)" in job
    assert "Actor intent_classify" in job
    job_id, _, payload = dead.args
    assert f"Args {job_id} 42 {payload!r}" in job

    browser.open(f"{base}/queues/llm.intent/failed")
    assert client.exists(_finished_key(dead))  # the job's failure was reported
    browser.click(_action("requeue-message", dead_id))
    # The dashboard sends the browser back to the dead letters.
    assert browser.url() == f"{base}/queues/llm.intent/failed"
    assert f"Failed ({left})" in browser.text() and dead_id not in browser.text()
    requeued = _check_requeued(client, dead)
    browser.click('a[href="/queues/llm.intent"]')
    browser.click(f'a[href="/queues/llm.intent/standard/{requeued}"]')
    assert "Queue llm.intent (llm.intent)" in browser.text()
    assert f"Args {job_id} 42 {payload!r}" in browser.text()


def _delete_from_the_job_page(
    browser: Browser, base: str, client: redis.Redis, dead: Message[Any]
) -> None:
    """Delete the last dead letter with the button on its page: it is gone from the
    dead-letter set and its hash."""
    dead_id = _redis_id(dead)
    browser.open(f"{base}/queues/llm.intent/failed")
    browser.click(f'a[href="/queues/llm.intent/failed/{dead_id}"]')
    assert f"Redis id {dead_id}" in browser.text()
    browser.click(_action("delete-message", dead_id))
    assert browser.url() == f"{base}/queues/llm.intent/failed"
    assert "There are no jobs in this queue." in browser.text()
    assert client.exists("dramatiq:llm.intent.XQ", "dramatiq:llm.intent.XQ.msgs") == 0


def _delete_from_the_delayed_list(
    browser: Browser, base: str, client: redis.Redis, delayed: Message[Any]
) -> None:
    """Delete the delayed job from the list of delayed jobs: it is gone from the delay
    queue and its hash."""
    delayed_id = _redis_id(delayed)
    browser.open(f"{base}/queues/llm.intent")
    browser.click('a[href="/queues/llm.intent/delayed"]')
    assert "intent_classify(7, 42, {'text': 'x'})" in browser.text()
    browser.click(_action("delete-message", delayed_id))
    assert browser.url() == f"{base}/queues/llm.intent/delayed"
    assert "There are no jobs in this queue." in browser.text()
    assert delayed_id.encode() not in client.lrange("dramatiq:llm.intent.DQ", 0, -1)
    assert not client.hexists("dramatiq:llm.intent.DQ.msgs", delayed_id)


def _redis_id(message: Message[Any]) -> str:
    """The id under which Redis holds ``message`` (Dramatiq's ``redis_message_id``)."""
    return str(message.options["redis_message_id"])


def _dead_letters(
    worker: Any, fake_llm: Any, fake_core: Any, client: redis.Redis
) -> dict[int, Message[Any]]:
    """Two intent jobs the real worker dead-letters, by job id: job 98, sent as a
    producer does, whose result Core refuses (404, the job is gone there), and job 99,
    whose bad payload fails its check at pick-up."""
    fake_llm.answers["IntentResult"] = GOOD_REMINDER
    fake_core.failures.append(404)
    intent_classify.send(98, 42, {"text": "remind me"})
    drain(worker, "llm.intent")
    send_unchecked(intent_classify, 99, 42, {"text": 5})
    drain(worker, "llm.intent")
    dead = {
        message.args[0]: message
        for message in map(Message.decode, client.hvals("dramatiq:llm.intent.XQ.msgs"))
    }
    assert sorted(dead) == [98, 99]
    return dead


def _action(path: str, redis_id: str) -> str:
    """The button of the dashboard's form that POSTs ``redis_id`` to ``/path``."""
    return f'form[action="/{path}"]:has(input[name="id"][value="{redis_id}"]) button'


def _redis_contents(client: redis.Redis) -> dict[bytes, bytes]:
    """Every key of the test database with its serialized value."""
    return {key: client.dump(key) for key in client.scan_iter()}


def _refused_without_csrf(
    base: str, credentials: tuple[str, str] | None, token: str, redis_id: str
) -> None:
    """POSTs to requeue and delete a dead letter without the CSRF cookie, without the
    token, or with the token of another cookie: each is answered 403."""
    form = {"id": redis_id, "queue": "llm.intent.XQ"}
    attempts: list[tuple[dict[str, str], dict[str, str]]] = [
        ({}, form),
        ({}, {**form, CSRF: token}),
        ({CSRF: token}, form),
        ({CSRF: token}, {**form, CSRF: "0" * len(token)}),
        ({CSRF: "0" * len(token)}, {**form, CSRF: token}),
    ]
    for path in ("/requeue-message", "/delete-message"):
        for cookies, data in attempts:
            answer = requests.post(
                base + path,
                data=data,
                cookies=cookies,
                auth=credentials,
                allow_redirects=False,
                timeout=10,
            )
            assert (answer.status_code, answer.text) == (403, "Forbidden"), (path, cookies, data)


def _refused_from_another_site(browser: Browser, base: str, redis_id: str, token: str) -> None:
    """A page of another origin on this machine whose form POSTs a delete to the
    dashboard: the browser sends the dashboard's CSRF cookie with it, but the page
    cannot know the token, and the dashboard answers 403."""
    form = (
        f'<form method="POST" action="{base}/delete-message">'
        f'<input type="hidden" name="id" value="{redis_id}">'
        '<input type="hidden" name="queue" value="llm.intent.XQ">'
        '<button type="submit">Win a prize</button></form>'
    ).encode()
    browser.watch_requests()
    with _page_server(form) as page:
        browser.open(page)
        browser.click("button")
    assert browser.url() == f"{base}/delete-message"
    assert browser.text() == "Forbidden"
    assert browser.sent_header("POST", f"{base}/delete-message", "Cookie") == f"{CSRF}={token}"


@contextlib.contextmanager
def _page_server(html: bytes) -> Iterator[str]:
    """Serve ``html`` on a free port of 127.0.0.1 (another origin than the dashboard's)
    for the ``with`` block; its URL."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(html)))
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _check_requeued(client: redis.Redis, dead: Message[Any]) -> str:
    """The dead letter ``dead`` is gone from the dead-letter set and its hash, and back
    on its queue as ``llm-worker requeue-dead`` puts it: the same message under a new
    Redis id, a fresh attempt (no retry counted, marked requeued and checked) whose
    earlier end is forgotten (no finished marker); that id."""
    dead_id = _redis_id(dead)
    assert client.zscore("dramatiq:llm.intent.XQ", dead_id) is None
    assert not client.hexists("dramatiq:llm.intent.XQ.msgs", dead_id)
    [(redis_id, message)] = [
        (redis_id.decode(), message)
        for redis_id, data in client.hgetall("dramatiq:llm.intent.msgs").items()
        if (message := Message.decode(data)).message_id == dead.message_id
    ]
    assert redis_id.encode() in client.lrange("dramatiq:llm.intent", 0, -1)
    assert message.args == dead.args and message.queue_name == "llm.intent"
    assert "retries" not in message.options and message.options[retry.CHECKED] is True
    assert retry.was_requeued(message.options)
    assert not client.exists(_finished_key(dead))
    return redis_id


def _finished_key(message: Message[Any]) -> str:
    """The key of ``message``'s job's finished marker."""
    return keys.finished(services().settings.key_prefix, message.message_id)


def _refused_unless_a_dead_letter(
    base: str,
    credentials: tuple[str, str] | None,
    token: str,
    queued: Message[Any],
    delayed: Message[Any],
) -> None:
    """POSTs, with the CSRF cookie and token, to requeue a job waiting on its queue or
    its delay queue, or a message of a queue the worker does not have: each is refused,
    saying why."""
    refusals = [
        ("llm.intent", _redis_id(queued), 409, "where it waits for a worker or is running"),
        ("llm.intent.DQ", _redis_id(delayed), 409, "where it waits for its delay to end"),
        ("llm.nothing.XQ", _redis_id(queued), 404, "llm.nothing is not a queue of this worker"),
    ]
    for queue, redis_id, status, reason in refusals:
        answer = requests.post(
            f"{base}/requeue-message",
            data={"id": redis_id, "queue": queue, CSRF: token},
            cookies={CSRF: token},
            auth=credentials,
            allow_redirects=False,
            timeout=10,
        )
        assert answer.status_code == status, (queue, answer.text)
        assert answer.headers["Content-Type"].startswith("text/plain")
        assert answer.text.startswith("Not requeued: ") and reason in answer.text
