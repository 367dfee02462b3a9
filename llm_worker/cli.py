"""The ``llm-worker`` command: run, inspect and operate the LLM job worker."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit, urlunsplit

from .errors import CommandError, LLMUnavailable, SettingsError


def safe_url(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def check_broker() -> str:
    """Check the broker answers; return a one-line description.

    Raises:
      CommandError: saying what to do when it does not.
    """
    from .settings import broker_settings

    config = broker_settings()
    url = config.effective_broker_url
    if config.uses_rabbitmq:
        import pika

        try:
            pika.BlockingConnection(pika.URLParameters(url)).close()
        except Exception as exc:
            raise CommandError(
                f"RabbitMQ at {safe_url(url)} is not answering ({type(exc).__name__}): start "
                "rabbitmq-server, or unset BROKER_URL to use Redis"
            ) from None
        return f"RabbitMQ at {safe_url(url)}"
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        raise CommandError(
            f"Redis at {safe_url(url)} is not answering ({exc}): start it "
            "(`redis-server --daemonize yes`, or scripts/setup.sh) or set REDIS_URL"
        ) from None
    return f"Redis at {safe_url(url)}"


def describe_llm() -> str:
    """One line on whether the LLM answers (a down LLM is not an error)."""
    from .services import services

    svc = services()
    choice = svc.provider_choice
    model = svc.settings.llm_text_model
    where = f"{choice.name} at {choice.url}, model {model}"
    try:
        latency = svc.llm.probe(model)
    except LLMUnavailable as exc:
        return f"LLM ({where}) is not answering: {exc}; jobs wait in the broker until it does"
    return f"LLM ({where}) answers in {latency:.2f}s"


def cmd_up(args: argparse.Namespace) -> int:
    from .ops.supervisor import Child, Supervisor, worker_command

    python = sys.executable
    worker = worker_command(
        python, processes=args.processes, threads=args.threads, gevent=args.gevent
    )
    print(f"[up] broker: {check_broker()}", flush=True)
    children = []
    if args.local_llm:
        from .local_llm import server_command

        port = 8080
        children.append(Child("local-llm", server_command("127.0.0.1", port)))
        os.environ.update(
            LLM_PROVIDER="openai",
            LLM_BASE_URL=f"http://127.0.0.1:{port}/v1",
            LLM_TEXT_MODEL="gemma-3-270m",
            LLM_VISION_MODEL="",  # the small model has no vision: image_tag fails clearly
            LLM_RESPONSE_FORMAT="json_object_schema",
            LLM_MAX_OUTPUT_TOKENS="256",
            LLM_TIMEOUT_SECONDS="300",
        )
        print(f"[up] LLM: the bundled local model on 127.0.0.1:{port}", flush=True)
    else:
        print(f"[up] {describe_llm()}", flush=True)
    children.append(Child("worker", worker))
    if not args.no_scheduler:
        periodiq = "import sys; from periodiq import entrypoint; sys.exit(entrypoint())"
        children.append(Child("scheduler", [python, "-c", periodiq, "actors"]))
    if not args.no_dashboard:
        children.append(Child("dashboard", [python, "-m", "llm_worker.cli", "dashboard"]))
    return Supervisor(children).run()


def cmd_dashboard(args: argparse.Namespace) -> int:
    from actors import broker

    from .ops.dashboard import serve_dashboard
    from .services import services

    config = services().settings
    password = config.dashboard_password.get_secret_value() if config.dashboard_password else None
    serve_dashboard(
        broker,
        host=args.host or config.dashboard_host,
        port=args.port or config.dashboard_port,
        user=config.dashboard_user,
        password=password,
        allowed_hosts=config.dashboard_allowed_hosts.split(","),
    )
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    import redis

    from actors import broker
    from middleware import breaker_status

    from .ops.status import EXIT_BROKER_DOWN, collect_status, render, to_json
    from .services import services

    try:
        check_broker()
        status = collect_status(broker, services(), breaker_status())
    except (CommandError, redis.RedisError) as exc:
        if args.json:
            print(json.dumps({"error": str(exc)}))
        else:
            print(f"llm-worker: {exc}", file=sys.stderr)
        return EXIT_BROKER_DOWN
    print(to_json(status) if args.json else render(status))
    return status.exit_code


def cmd_send(args: argparse.Namespace) -> int:
    from .ops.send import parse_job_id, send_job
    from .services import services

    return send_job(
        services(), args.actor, parse_job_id(args.job_id), args.user_id, args.payload, args.wait
    )


def cmd_requeue_dead(args: argparse.Namespace) -> int:
    from actors import broker

    from .ops.dead_letters import requeue_dead
    from .services import services

    check_broker()
    queues = [args.queue] if args.queue else sorted(broker.get_declared_queues())
    if args.queue and args.queue not in broker.get_declared_queues():
        raise CommandError(f"unknown queue {args.queue!r}")
    svc = services()
    counts = requeue_dead(broker, svc, queues, dry_run=args.dry_run)
    verb = "would requeue" if args.dry_run else "requeued"
    for queue, count in counts.items():
        if count.requeued:
            print(f"{queue}: {verb} {count.requeued}")
    print(f"{verb} {sum(c.requeued for c in counts.values())} dead-lettered messages")
    if not args.queue:
        reports = svc.outbox.requeue_dead(dry_run=args.dry_run)
        print(f"{verb} {reports} dead reports (job states Core never accepted)")
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    from .services import services

    svc = services()
    model = args.model or svc.settings.llm_text_model
    started = time.monotonic()
    try:
        latency = svc.llm.probe(model)
    except LLMUnavailable as exc:
        print(f"LLM unavailable after {time.monotonic() - started:.2f}s: {exc}")
        return 1
    print(f"LLM ({svc.provider_choice.name}, {model}) answered in {latency:.3f}s")
    return 0


def cmd_local_llm(args: argparse.Namespace) -> int:
    from .local_llm import serve

    return serve(args.host, args.port)


def cmd_review(args: argparse.Namespace) -> int:
    from .local_review import review_local_diff

    return review_local_diff(
        repo=args.repo, base=args.base, timeout=args.timeout, threads=args.threads
    )


def _command(
    commands: argparse._SubParsersAction,
    name: str,
    func: Callable[[argparse.Namespace], int],
    summary: str,
    description: str,
    example: str,
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=summary, description=description, epilog=f"example: {example}"
    )
    parser.set_defaults(func=func)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(
        prog="llm-worker",
        description="Run, inspect and operate the LLM job worker.",
        epilog="example: llm-worker up --processes 2 --threads 8",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = _command(
        commands,
        "up",
        cmd_up,
        "run workers, scheduler and dashboard",
        "Check the broker and the LLM, then run `dramatiq actors`, `periodiq actors` and the "
        "dashboard as child processes with prefixed output. Ctrl-C or SIGTERM stops all of "
        "them cleanly; a child that dies stops the rest and makes `up` exit 1.",
        "llm-worker up --processes 2 --threads 8",
    )
    up.add_argument("--processes", type=int, default=2, help="worker processes (default 2)")
    up.add_argument(
        "--threads", type=int, default=8, help="threads (greenlets with --gevent) per process"
    )
    up.add_argument(
        "--gevent",
        action="store_true",
        help="run the workers with dramatiq-gevent (extra gevent): for hundreds of jobs in "
        "flight per process, e.g. --processes 2 --threads 512",
    )
    up.add_argument("--no-scheduler", action="store_true", help="do not run periodiq")
    up.add_argument("--no-dashboard", action="store_true", help="do not run the dashboard")
    up.add_argument(
        "--local-llm",
        action="store_true",
        help="also serve the bundled small model (extra local-llm) and use it",
    )

    dashboard = _command(
        commands,
        "dashboard",
        cmd_dashboard,
        "serve the dramatiq dashboard",
        "Serve dramatiq-dashboard with waitress on DASHBOARD_HOST:DASHBOARD_PORT, with HTTP "
        "basic auth when DASHBOARD_USER and DASHBOARD_PASSWORD are set (required on a "
        "non-loopback address).",
        "DASHBOARD_USER=ops DASHBOARD_PASSWORD=secret llm-worker dashboard --port 8081",
    )
    dashboard.add_argument("--host", help="address to bind (default DASHBOARD_HOST)")
    dashboard.add_argument("--port", type=int, help="port (default DASHBOARD_PORT)")

    status = _command(
        commands,
        "status",
        cmd_status,
        "breaker, queues and workers at a glance",
        "Show the breaker state, per queue the ready, delayed, in-flight and dead-lettered "
        "counts and the oldest message's age, jobs held back by an outage and when the first "
        "expires, and live worker processes. Exit code: 0 healthy, 1 breaker open, 2 broker "
        "unreachable.",
        "llm-worker status --json",
    )
    status.add_argument("--json", action="store_true", help="print JSON")

    send = _command(
        commands,
        "send",
        cmd_send,
        "enqueue one job",
        "Enqueue one job as a producer would; with --wait, wait for the job's first "
        "notification on NOTIFY_STREAM and print it (exit 1 if it reports a failure).",
        "llm-worker send intent_classify --job-id 1 --user-id 42 "
        '--payload \'{"text": "remind me to call mum at 6"}\' --wait 60',
    )
    send.add_argument("actor", help="actor name, e.g. intent_classify")
    send.add_argument("--job-id", required=True, help="job id (digits become an integer)")
    send.add_argument("--user-id", required=True, type=int, help="user id")
    send.add_argument("--payload", required=True, help="the payload as JSON")
    send.add_argument("--wait", type=float, metavar="SECONDS", help="wait for the notification")

    requeue = _command(
        commands,
        "requeue-dead",
        cmd_requeue_dead,
        "move dead-lettered messages back",
        "Move dead-lettered messages back to their queues as fresh attempts (retry counters "
        "reset, never skipped as stale; an undelivered failure report of the job is dropped), "
        "with a progress bar when there are many. Without --queue, dead reports (job states "
        "Core refused JOB_MAX_RETRIES times) are retried too.",
        "llm-worker requeue-dead --queue llm.intent --dry-run",
    )
    requeue.add_argument("--queue", help="only this queue (default: every queue)")
    requeue.add_argument("--dry-run", action="store_true", help="only count them")

    probe = _command(
        commands,
        "probe",
        cmd_probe,
        "call the LLM once",
        "Make one minimal call to the LLM now and print its latency or the error "
        "(exit 1 when it is unavailable).",
        "llm-worker probe",
    )
    probe.add_argument("--model", help="model to probe (default LLM_TEXT_MODEL)")

    local = _command(
        commands,
        "local-llm",
        cmd_local_llm,
        "serve the bundled small model offline",
        "Serve Gemma 3 270M (from the optional extra local-llm) as an OpenAI-compatible "
        "server with llama-cpp-python. Good for trying the worker and for tests, not for "
        "answer quality.",
        "llm-worker local-llm --port 8080",
    )
    local.add_argument("--host", default="127.0.0.1", help="address to bind")
    local.add_argument("--port", type=int, default=8080, help="port (default 8080)")

    review = _command(
        commands,
        "review",
        cmd_review,
        "review a local diff and print the comments",
        "Review the changes of a local git checkout against BASE: each changed file is sent "
        "to review_chunk, the reference git worker answers the model's tool calls from the "
        "checkout, and the comments are printed. Runs both workers in this process; needs "
        "Redis (or RabbitMQ) and an LLM.",
        "llm-worker review --base main --repo .",
    )
    review.add_argument("--base", default="main", help="commit or branch to diff against")
    review.add_argument("--repo", default=".", help="the git checkout (default: .)")
    review.add_argument("--timeout", type=float, default=900, help="seconds to wait in all")
    review.add_argument("--threads", type=int, default=4, help="worker threads")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        status: int = args.func(args)
    except (CommandError, SettingsError) as exc:
        print(f"llm-worker: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
