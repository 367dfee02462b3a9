"""The dev Core: the Core API contract over real HTTP, stored in SQLite, with the real worker."""

from __future__ import annotations

import json
import socket
import threading

import pytest
import requests

from actors import image_tag, intent_classify, task_match
from console.dev_core import DevCoreStore, make_server
from tests.support import drain, run_cli, wait_for


@pytest.fixture
def dev_core(tmp_path):
    store = DevCoreStore(tmp_path / "core.sqlite3")
    server = make_server(store, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    yield store, url
    server.shutdown()
    server.server_close()
    store.close()


def test_worker_results_land_in_the_dev_core(dev_core, env, worker, fake_llm, tmp_path):
    store, url = dev_core
    env(CORE_API_URL=url)
    tasks = tmp_path / "tasks.json"
    tasks.write_text(json.dumps({"42": [{"id": 5, "title": "Plan the trip to Rome"}]}))
    assert store.seed(tasks) == 1
    fake_llm.push({"intent": "reminder", "confidence": 0.9})
    intent_classify.send("a/1 b", 42, {"text": "remind me to call mum at 6"})
    drain(worker, "llm.intent")
    fake_llm.push({"task_id": 5, "confidence": 0.95, "reason": "Rome"})
    task_match.send(2, 42, {"content": "hotels near the Colosseum"})
    image_tag.send(3, 42, {"image_id": 7, "path": "missing.png"})
    drain(worker, "llm.task_match", "llm.image_tag")
    wait_for(lambda: len(store.jobs()) == 3, timeout=20)

    jobs = {job["job_id"]: job for job in store.jobs()}
    assert jobs["a/1 b"]["status"] == "completed"
    assert jobs["a/1 b"]["result"] == {"intent": "reminder", "confidence": 0.9}
    assert jobs["a/1 b"]["usage"]["attempts"] == 1
    assert jobs["2"]["result"]["task_id"] == 5  # the seeded task was read back
    assert jobs["3"]["status"] == "failed" and jobs["3"]["error"]
    page = requests.get(url + "/", timeout=5).text
    assert "a/1 b" in page and "completed" in page
    assert requests.get(url + "/api/jobs", timeout=5).json()[0]["job_id"] in jobs


def test_contract_errors_and_task_seeding_over_http(dev_core):
    _, url = dev_core
    assert requests.get(url + "/users/9/tasks?status=open", timeout=5).json() == []
    added = requests.post(url + "/users/9/tasks", json={"id": "t1", "title": "Tax"}, timeout=5)
    assert added.status_code == 200
    assert requests.get(url + "/users/9/tasks", timeout=5).json() == [
        {"id": "t1", "title": "Tax", "description": None}
    ]
    assert requests.post(url + "/users/9/tasks", json={"id": 1}, timeout=5).status_code == 422
    not_json = requests.patch(
        url + "/jobs/1", data=b"{no", headers={"Content-Type": "application/json"}, timeout=5
    )
    assert not_json.status_code == 400
    assert requests.patch(url + "/jobs/1", json={"result": 1}, timeout=5).status_code == 422
    assert requests.put(url + "/images/7/tags", json={"tags": ["cat"]}, timeout=5).ok
    assert requests.delete(url + "/jobs/1", timeout=5).status_code == 501
    assert requests.get(url + "/nowhere", timeout=5).status_code == 404


def test_jobs_command_lists_the_stored_jobs(dev_core, cli_env):
    store, _ = dev_core
    store.update_job(
        "7",
        {
            "status": "completed",
            "result": {"question": "Which one?"},
            "error": None,
            "usage": {"prompt_tokens": 10, "completion_tokens": 3},
        },
    )
    listed = run_cli(cli_env, "jobs", "--db", store.path)
    assert listed.returncode == 0, listed.stderr
    assert "completed" in listed.stdout and "Which one?" in listed.stdout
    assert "10+3 tok" in listed.stdout
    assert "unpriced" not in listed.stdout and "-  " in listed.stdout  # no call, no cost
    as_json = run_cli(cli_env, "jobs", "--db", store.path, "--json")
    assert json.loads(as_json.stdout)[0]["job_id"] == "7"
    missing = run_cli(cli_env, "jobs", "--db", store.path + ".nope")
    assert missing.returncode == 2 and "no dev Core database" in missing.stderr


def test_each_jobs_cost_is_shown_and_summed(dev_core, cli_env):
    store, url = dev_core
    usage = {"prompt_tokens": 10, "completion_tokens": 3, "attempts": 1}
    store.update_job("8", {"status": "completed", "usage": {**usage, "cost_usd": 0.000151}})
    store.update_job("9", {"status": "completed", "usage": {**usage, "cost_usd": 1.25}})
    store.update_job(
        "10", {"status": "failed", "error": "x", "usage": {**usage, "unpriced_calls": 1}}
    )

    listed = run_cli(cli_env, "jobs", "--db", store.path)

    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert "$0.000151" in next(line for line in lines if line.split()[0] == "8")
    assert "unpriced" in next(line for line in lines if line.split()[0] == "10")
    assert lines[-1] == "cost of the 3 jobs listed: $1.250151 (and 1 unpriced)"
    jobs = {job["job_id"]: job for job in requests.get(url + "/api/jobs", timeout=5).json()}
    assert (jobs["9"]["cost_usd"], jobs["10"]["cost_usd"]) == (1.25, None)
    page = requests.get(url + "/", timeout=5).text
    assert "<th>cost</th>" in page and "$1.250000" in page


def test_a_web_page_can_neither_plant_tasks_nor_read_jobs(dev_core):
    store, url = dev_core
    port = url.rpartition(":")[2]
    form = {"id": "t9", "title": "planted"}  # a cross-site form post: not JSON
    as_form = requests.post(url + "/users/9/tasks", data=form, timeout=5)
    as_text = requests.post(
        url + "/users/9/tasks",
        data=b'{"id": "t9", "title": "planted"}',
        headers={"Content-Type": "text/plain"},
        timeout=5,
    )
    assert (as_form.status_code, as_text.status_code) == (415, 415)
    assert store.open_tasks(9) == []

    rebound = {"Host": f"evil.example:{port}"}  # DNS rebinding: a page's own name
    assert requests.get(url + "/api/jobs", headers=rebound, timeout=5).status_code == 403
    assert requests.get(url + "/api/jobs", headers={"Host": f"localhost:{port}"}, timeout=5).ok
    planted = requests.post(url + "/users/9/tasks", json=form, headers=rebound, timeout=5)
    assert planted.status_code == 403
    assert store.open_tasks(9) == []


@pytest.mark.parametrize(("length", "status"), [("-5", 400), ("abc", 400), ("9999999999", 413)])
def test_a_body_length_the_dev_core_will_not_read(dev_core, length, status):
    _, url = dev_core
    host, _, port = url.removeprefix("http://").partition(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(
            b"PATCH /jobs/1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {length}\r\n\r\n".encode()
        )
        reply = conn.recv(4096)
    assert reply.startswith(f"HTTP/1.1 {status} ".encode())
