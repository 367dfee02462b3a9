"""Lua scripts, kept in ``.lua`` files next to the module that runs them.

As Dramatiq keeps its Redis broker's scripts (``dramatiq/brokers/redis/*.lua``, read by
name at the end of ``dramatiq/brokers/redis.py``), each script here is a file beside its
module, named after both (``jobs/lease_take.lua`` is ``jobs/lease.py``'s ``take``), shipped
as package data (``setup.cfg``, ``[options.package_data]``).
"""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def lua_script(module: str, filename: str) -> str:
    """The text of the Lua script ``filename`` in the package of ``module``.

    Parameters:
      module: the ``__name__`` of the module that runs the script.
      filename: the script's file name, e.g. ``lease_take.lua``.
    """
    package = module.rpartition(".")[0]
    return resources.files(package).joinpath(filename).read_text(encoding="utf-8")
