"""Lua scripts: each module's scripts are files beside it, found by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_worker import lua
from llm_worker.jobs import lease

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent.parent


def test_a_script_is_read_from_the_file_beside_its_module():
    text = lua.lua_script("llm_worker.jobs.lease", "lease_take.lua")

    assert text == (ROOT / "llm_worker" / "jobs" / "lease_take.lua").read_text(encoding="utf-8")
    assert text == lease._TAKE


def test_no_python_module_embeds_lua():
    embedding = [
        str(path.relative_to(ROOT))
        for package in ("llm_worker", "middleware", "console", "actors")
        for path in (ROOT / package).rglob("*.py")
        if "redis.call(" in path.read_text(encoding="utf-8")
    ]
    assert embedding == []


def test_every_lua_file_is_loaded_by_its_module():
    for script in [*(ROOT / "llm_worker").rglob("*.lua"), *(ROOT / "console").rglob("*.lua")]:
        loaders = [
            path
            for path in script.parent.glob("*.py")
            if f'"{script.name}"' in path.read_text(encoding="utf-8")
        ]
        assert loaders, f"{script.relative_to(ROOT)} is loaded by no module beside it"
