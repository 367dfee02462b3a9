"""The ``llm-worker`` command: run, inspect and operate the LLM job worker."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from urllib.parse import urlsplit, urlunsplit

from llm_worker.errors import CommandError, LLMUnavailable, SettingsError
from llm_worker.text import plural

#: Dramatiq's own (lower-case) variables of the metrics exposition server's address.
PROM_HOST_VARIABLE, PROM_PORT_VARIABLE = "dramatiq_prom_host", "dramatiq_prom_port"


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
    from llm_worker.settings import broker_settings

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

    from llm_worker.redis_pools import connection_pool

    try:
        timeouts = {"socket_connect_timeout": 3.0, "socket_timeout": 3.0}
        pool = connection_pool(url, socket_options=timeouts)
        redis.Redis(connection_pool=pool).ping()
    except redis.RedisError as exc:
        raise CommandError(
            f"Redis at {safe_url(url)} is not answering ({exc}): start it "
            "(`redis-server --daemonize yes`, or scripts/setup.sh) or set REDIS_URL"
        ) from None
    return f"Redis at {safe_url(url)}"


def describe_llm() -> str:
    """One line on whether the LLM answers (a down LLM is not an error)."""
    from llm_worker.services import services

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
    from llm_worker.settings import broker_settings

    from .ops.supervisor import Child, Supervisor, worker_command

    python = sys.executable
    worker = worker_command(
        python, processes=args.processes, threads=args.threads, gevent=args.gevent
    )
    print(f"[up] broker: {check_broker()}", flush=True)
    # Dramatiq serves metrics on every interface unless told: under `up` (a laptop,
    # mostly) only on this machine unless dramatiq_prom_host says otherwise.
    os.environ.setdefault(PROM_HOST_VARIABLE, "127.0.0.1")
    if broker_settings().metrics_enabled:
        where = f"{os.environ[PROM_HOST_VARIABLE]}:{os.environ.get(PROM_PORT_VARIABLE, '9191')}"
        print(f"[up] metrics on http://{where}/metrics", flush=True)
    children = []
    if args.local_llm:
        from .local_llm import LOCAL_PORT, model_path, server_command, use_local_llm

        model_path(args.local_model)  # the install hint now, not from a child
        log = os.path.abspath(args.local_llm_log)
        command = server_command("127.0.0.1", LOCAL_PORT, alias=args.local_model, log_file=log)
        children.append(Child("local-llm", command))
        use_local_llm(f"http://127.0.0.1:{LOCAL_PORT}/v1", args.local_model)
        print(
            f"[up] LLM: the bundled local model {args.local_model} on 127.0.0.1:{LOCAL_PORT} "
            f"(its log: {log})",
            flush=True,
        )
    else:
        print(f"[up] {describe_llm()}", flush=True)
    if args.dev_core:
        from .dev_core import DEFAULT_PORT

        core_url = f"http://127.0.0.1:{DEFAULT_PORT}"
        children.append(Child("dev-core", [python, "-m", "console.cli", "dev-core"]))
        os.environ["CORE_API_URL"] = core_url
        print(f"[up] Core: the dev Core at {core_url} (jobs listed there)", flush=True)
    if args.local_llm and args.dev_core:
        from actors.intent import INTENT_CLASSIFY

        print(
            f"[up] try it: .venv/bin/llm-worker send {INTENT_CLASSIFY.name} "
            "--job-id 1 --user-id 42 "
            '--payload \'{"text": "remind me to call mum at 6"}\' --wait 120\n'
            f"[up] then see the job at {core_url}/ or with .venv/bin/llm-worker jobs",
            flush=True,
        )
    children.append(Child("worker", worker))
    if not args.no_scheduler:
        periodiq = "import sys; from periodiq import entrypoint; sys.exit(entrypoint())"
        children.append(Child("scheduler", [python, "-c", periodiq, "actors"]))
    if not args.no_dashboard and importlib.util.find_spec("dramatiq_dashboard") is None:
        print(
            "[up] dashboard: not installed (scripts/install-dashboard.sh installs it); "
            "running without it",
            flush=True,
        )
    elif not args.no_dashboard:
        children.append(Child("dashboard", [python, "-m", "console.cli", "dashboard"]))
    return Supervisor(children).run()


def cmd_dashboard(args: argparse.Namespace) -> int:
    from actors import broker
    from llm_worker.services import services

    from .ops.dashboard import serve_dashboard

    svc = services()
    config = svc.settings
    password = config.dashboard_password.get_secret_value() if config.dashboard_password else None
    serve_dashboard(
        broker,
        svc,
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
    from llm_worker.services import services
    from middleware import breaker_status

    from .ops.status import EXIT_BROKER_DOWN, collect_status, render, to_json

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


def cmd_health(args: argparse.Namespace) -> int:
    from llm_worker.fleet.liveness import read_liveness
    from llm_worker.settings import settings

    folder = settings().liveness_dir
    found = read_liveness(folder)
    if found.alive:
        print(f"alive: {plural(len(found.fresh), 'worker process')} beating ({folder})")
        return 0
    if found.stuck:
        stuck = ", ".join(map(str, found.stuck))
        which = "worker process" if len(found.stuck) == 1 else "worker processes"
        print(f"not alive: {which} {stuck} stopped beating ({folder})")
    else:
        print(f"not alive: no running worker process beats in {folder}")
    return 1


def cmd_send(args: argparse.Namespace) -> int:
    from llm_worker.services import services

    from .ops.send import parse_job_id, send_job

    return send_job(
        services(), args.actor, parse_job_id(args.job_id), args.user_id, args.payload, args.wait
    )


def cmd_requeue_dead(args: argparse.Namespace) -> int:
    from actors import broker
    from llm_worker.services import services

    from .ops.dead_letters import requeue_dead

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
    total = sum(c.requeued for c in counts.values())
    print(f"{verb} {plural(total, 'dead-lettered message')}")
    failed = [error for count in counts.values() for error in count.failed]
    for error in failed:
        print(f"llm-worker: {error}", file=sys.stderr)
    if not args.queue:
        reports = svc.outbox.requeue_dead(dry_run=args.dry_run)
        print(f"{verb} {plural(reports, 'dead report')} (job states Core never accepted)")
    return 1 if failed else 0


def cmd_probe(args: argparse.Namespace) -> int:
    from llm_worker.services import services

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

    return serve(
        args.host, args.port, alias=args.model, log_file=args.log_file, threads=args.threads
    )


def cmd_review(args: argparse.Namespace) -> int:
    from .local_review import review_local_diff

    with local_llm_for(args):
        return review_local_diff(
            repo=args.repo, base=args.base, timeout=args.timeout, threads=args.threads
        )


def cmd_dev_core(args: argparse.Namespace) -> int:
    from .dev_core import serve_dev_core

    try:
        return serve_dev_core(db=args.db, host=args.host, port=args.port, tasks=args.tasks)
    except (OSError, ValueError) as exc:
        raise CommandError(f"dev Core: {exc}") from None


def cmd_jobs(args: argparse.Namespace) -> int:
    from .dev_core import DevCoreStore, render_jobs

    if not os.path.exists(args.db):
        raise CommandError(f"no dev Core database at {args.db} (start `llm-worker dev-core`)")
    store = DevCoreStore(args.db)
    jobs = store.jobs(args.limit)
    store.close()
    print(json.dumps(jobs, indent=2) if args.json else render_jobs(jobs))
    return 0


def cmd_usage(args: argparse.Namespace) -> int:
    import redis

    from llm_worker.services import services

    from .ops.usage import parse_since, period_hours, render, to_json

    if args.top < 1:
        raise CommandError("--top must be at least 1")
    svc = services()
    hours = period_hours(parse_since(args.since))
    try:
        summary = svc.usage_counters.read(hours)
    except redis.RedisError as exc:
        raise CommandError(f"cannot read the usage counters from Redis: {exc}") from None
    if args.json:
        print(to_json(summary, since=args.since, count=args.top))
    else:
        retention = svc.settings.usage_retention_days
        print(render(summary, since=args.since, count=args.top, retention_days=retention))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from llm_worker.services import reset_services, services

    from .evaluation.cases import SPLITS, CaseFileError, read_cases
    from .evaluation.run import job_names, run_eval
    from .local_llm import LOCAL_PROTOCOLS

    known = job_names()
    jobs = args.jobs.split(",") if args.jobs else known
    unknown = sorted(set(jobs) - set(known))
    if unknown:
        raise CommandError(f"unknown job types {unknown} (one of {known})")
    if args.cases:
        case_files = {Path(path).name: Path(path) for path in args.cases}
    else:
        case_files = {name: SPLITS[name] for name in (args.split or list(SPLITS))}
    try:
        splits = {name: read_cases(path) for name, path in case_files.items()}
    except CaseFileError as exc:
        raise CommandError(str(exc)) from None
    providers = args.providers.split(",") if args.providers else [None]
    if args.providers and not args.local_llm:
        raise CommandError("--providers needs --local-llm (set LLM_PROVIDER otherwise)")
    unknown = sorted(set(providers) - set(LOCAL_PROTOCOLS) - {None})
    if unknown:
        raise CommandError(f"unknown providers {unknown} (one of {list(LOCAL_PROTOCOLS)})")
    status = 0
    with local_llm_for(args) as base_url:
        for provider in providers:
            if provider is not None:
                os.environ.update(LOCAL_PROTOCOLS[provider](base_url))
                reset_services()
            status = max(
                status,
                run_eval(
                    services(),
                    splits=splits,
                    jobs=jobs,
                    limit=args.limit,
                    concurrency=args.concurrency,
                    json_path=args.json and _per_provider(args.json, provider, providers),
                ),
            )
    return status


def _per_provider(path: str, provider: str | None, providers: list[str | None]) -> str:
    """The JSON file of one provider's run: ``path`` itself when there is one provider."""
    if len(providers) == 1 or provider is None:
        return path
    stem, dot, suffix = path.rpartition(".")
    return f"{stem}.{provider}.{suffix}" if dot else f"{path}.{provider}"


@contextlib.contextmanager
def local_llm_for(args: argparse.Namespace) -> Iterator[str]:
    """With ``--local-llm``: serve the bundled model for the command's lifetime, point
    this process at it (the one switch of ``review`` and ``eval``) and give its ``/v1``
    URL; without it, give ``""``."""
    if not getattr(args, "local_llm", False):
        yield ""
        return
    from pathlib import Path

    from llm_worker.services import reset_services

    from .local_llm import start_local_llm, stop_local_llm, use_local_llm

    log = Path(args.local_llm_log).resolve()
    print(f"starting the bundled local model {args.local_model} (its log: {log})", flush=True)
    process, base_url = start_local_llm(log, alias=args.local_model)
    use_local_llm(base_url, args.local_model)
    reset_services()
    try:
        yield base_url
    finally:
        stop_local_llm(process)


def add_local_llm_switch(parser: argparse.ArgumentParser) -> None:
    """``--local-llm``, ``--local-model`` and ``--local-llm-log``: the shared switch that
    points a command at the bundled model."""
    from .local_llm import DEFAULT_MODEL, MODELS

    parser.add_argument(
        "--local-llm",
        action="store_true",
        help="serve the bundled small model (extra local-llm) and use it",
    )
    parser.add_argument(
        "--local-model",
        default=DEFAULT_MODEL,
        metavar="NAME|PATH.gguf",
        help=f"which bundled model ({', '.join(MODELS)}; default {DEFAULT_MODEL}), or a GGUF "
        "file of your own that carries its chat template",
    )
    parser.add_argument(
        "--local-llm-log",
        default="local-llm.log",
        metavar="FILE",
        help="where the local model's server writes its log (default local-llm.log)",
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
        "them cleanly; a child that dies stops the rest and makes `up` exit 1. Metrics are "
        "served on 127.0.0.1 unless dramatiq_prom_host says otherwise.",
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
    add_local_llm_switch(up)
    up.add_argument(
        "--dev-core",
        action="store_true",
        help="also serve the dev Core on 127.0.0.1:8000 (SQLite) and use it",
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
        "Show the breaker state and whether the LLM server answers (checked at most once per "
        "LLM_PROBE_INTERVAL_SECONDS), per queue the ready, delayed, in-flight and "
        "dead-lettered counts and the oldest message's age, jobs held back by an outage and "
        "when the first expires, and live worker processes. Exit code: 0 healthy, 1 the LLM "
        "is down (breaker open or not answering) or Core refuses the worker's credentials, "
        "2 broker unreachable: a readiness or alerting check (use `health` for liveness).",
        "llm-worker status --json",
    )
    status.add_argument("--json", action="store_true", help="print JSON")

    _command(
        commands,
        "health",
        cmd_health,
        "liveness: do this machine's worker processes run",
        "Exit 0 while every running worker process on this machine wrote its liveness file "
        "(LIVENESS_DIR) within the last 15 s, 1 otherwise. It ignores the LLM, Redis and "
        "Core, whose outages a restart does not cure: wire it to a container's HEALTHCHECK "
        "or livenessProbe, and `status` to readiness and alerts.",
        "llm-worker health",
    )

    send = _command(
        commands,
        "send",
        cmd_send,
        "enqueue one job",
        "Enqueue one job as a producer would; with --wait, wait for the job's first "
        "notification on NOTIFY_STREAM and print it (exit 1 if it reports a failure).",
        "llm-worker send ACTOR --job-id 1 --user-id 42 --payload '{...}' --wait 60 "
        "(an unknown ACTOR lists the job actors)",
    )
    send.add_argument("actor", help="the job actor's name")
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
        "Serve a bundled small model (from the optional extra local-llm) as an "
        "OpenAI-compatible server: llama.cpp's own server, embedded by xllamacpp, with "
        "schema-constrained decoding. Good for trying the worker and for tests.",
        "llm-worker local-llm --port 8080",
    )
    local.add_argument("--host", default="127.0.0.1", help="address to bind")
    local.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    from .local_llm import DEFAULT_MODEL

    local.add_argument(
        "--model", default=DEFAULT_MODEL, help="bundled model alias, or a path to a .gguf file"
    )
    local.add_argument("--log-file", help="write the engine's log here (default: stderr)")
    local.add_argument(
        "--threads", type=int, help="CPU threads (default LOCAL_LLM_THREADS, else 1)"
    )

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
    review.add_argument(
        "--timeout",
        type=float,
        default=900,
        help="seconds the whole command may take (default 900)",
    )
    review.add_argument("--threads", type=int, default=4, help="worker threads")
    add_local_llm_switch(review)

    dev_core = _command(
        commands,
        "dev-core",
        cmd_dev_core,
        "serve a Core for trying the worker",
        "Serve the Core API contract (PATCH /jobs/ID, PUT /images/ID/tags, GET "
        "/users/ID/tasks) on 127.0.0.1, keep every request in SQLite, and show the jobs "
        "at / (and `llm-worker jobs`). For trying and integration tests, not production.",
        "llm-worker dev-core --tasks tasks.json",
    )
    dev_core.add_argument("--db", default="dev-core.sqlite3", help="SQLite file")
    dev_core.add_argument("--host", default="127.0.0.1", help="address to bind")
    dev_core.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    dev_core.add_argument(
        "--tasks", metavar="FILE", help='seed open tasks: {"user_id": [{"id", "title"}]}'
    )

    jobs = _command(
        commands,
        "jobs",
        cmd_jobs,
        "list the jobs the dev Core received",
        "Print the jobs stored by `llm-worker dev-core`, newest first: state, tokens, cost "
        "and the result or error, then the cost of the jobs listed.",
        "llm-worker jobs --limit 20",
    )
    jobs.add_argument("--db", default="dev-core.sqlite3", help="SQLite file")
    jobs.add_argument("--limit", type=int, default=50, help="at most this many jobs")
    jobs.add_argument("--json", action="store_true", help="print JSON")

    usage = _command(
        commands,
        "usage",
        cmd_usage,
        "tokens and cost by user, job type and model",
        "Sum the fleet's hourly usage counters (kept USAGE_RETENTION_DAYS in Redis) over the "
        "whole UTC hours that overlap the period and print the totals and the top users, job "
        "types and models by cost (USD, by LLM_PRICES_FILE) and by tokens, with the tokens "
        "whose cost is unknown (unpriced). It says which hours were summed.",
        "llm-worker usage --since 7d --top 5",
    )
    usage.add_argument("--since", default="24h", help="the period: 30m, 24h, 7d (default 24h)")
    usage.add_argument("--top", type=int, default=10, help="entries per list (default 10)")
    usage.add_argument("--json", action="store_true", help="print JSON")

    evaluation = _command(
        commands,
        "eval",
        cmd_eval,
        "score the configured LLM on the labelled set",
        "Run the labelled evaluation set (intents, emails, task notes, follow-ups) through "
        "the worker's own prompts, schemas, provider and parsing against the configured LLM "
        "(or the bundled one with --local-llm), and print per job the schema-valid share, "
        "accuracy against a majority-class baseline, latency p50/p95 and tokens per call.",
        "llm-worker eval --local-llm --limit 10",
    )
    from .local_llm import LOCAL_PROTOCOLS

    evaluation.add_argument("--jobs", help="comma-separated job types (default: all)")
    evaluation.add_argument(
        "--split",
        action="append",
        choices=["dev", "test"],
        help="one bundled split only (repeatable; default: dev and test)",
    )
    evaluation.add_argument(
        "--cases",
        action="append",
        metavar="FILE.jsonl",
        help="your own labelled cases instead of the bundled splits (repeatable; the format "
        "is in the manual's Evaluation page)",
    )
    evaluation.add_argument(
        "--providers",
        help="with --local-llm: the protocols to run the eval through, comma-separated "
        f"(of {', '.join(LOCAL_PROTOCOLS)}; default openai)",
    )
    evaluation.add_argument("--limit", type=int, help="N cases of each job only, spread")
    evaluation.add_argument("--concurrency", type=int, default=2, help="calls in flight")
    evaluation.add_argument("--json", metavar="FILE", help="also write every outcome here")
    add_local_llm_switch(evaluation)
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
