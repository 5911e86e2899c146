"""Simulated cycles per second of one core: the fast transactors against cocotbext-axi, bare
Verilator and Amaranth's simulator, on the same workload, measured in one run.

Workload: ``spikeforge.sim.scenario.train_and_check`` -- write the weights, then per training
step load the spikes, FORWARD, BACKWARD, read back every quantity, UPDATE, read the weights and
LFSR states, and check everything against the golden model -- on the default core (64 x 64,
8 lanes, 8-bit, T = 8) with ``--stall`` idle cycles on the input and backpressure on the output
(30% each by default).

* **fast transactors** (``sim/tb_fast.py``): the command stream preloaded into a memory of the
  ``spikeforge_fast_tb`` wrapper, which makes its own clock and captures the answers; cocotb
  waits on one signal. Counted: the simulated run (``run_seconds``), without the planning and
  checking passes in Python (printed apart).
* **cocotbext-axi** (``sim/tb_core.py``, the reference BFM) on the same build, same stall
  probabilities: Python wakes on every clock edge. Counted: the scenario, checks included.
* **bare Verilator**: the same wrapper built as a plain ``verilator --binary`` program (no
  cocotb, no VPI) playing the fast run's ``cmd.hex`` with the same generator seeds, so it runs
  the same cycles; counted: its process time less that of an empty stream (start-up).
* **Amaranth's simulator** (no stalls: its host has none): a background process counts edges.

The answers of all three Verilator runs must be identical (checked; the bench exits otherwise).

Run: ``.venv/bin/python bench/sim_speed.py [--steps N] [--stall P] [--small] [--no-amaranth]
[--json]`` (``make sim-speed``); ``--small`` measures the 16 x 16 matrix config instead (a quick
smoke run). The builds are kept in ``build/sim-speed/`` and reused.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from amaranth.sim import Simulator

from spikeforge.hw.core import SpikingCore
from spikeforge.hw.params import DEFAULT_CORE_NET, CoreParams
from spikeforge.sim import fast_tb
from spikeforge.sim.amaranth_host import SimHost
from spikeforge.sim.harness import ANSWER_DEADLINE
from spikeforge.sim.matrix import core_params
from spikeforge.sim.regress import run_seed, same_answers
from spikeforge.sim.rtl_runner import build_bare, build_fast_core
from spikeforge.sim.scenario import train_and_check
from spikeforge.sim.session import CoreSession
from spikeforge.toolchain import run_tool

DENSITY = 0.25
SEED = 0
BARE_TIMEOUT = 600
"""Seconds one run of the bare Verilator program may take (the measured run: about a second)."""
BUILD = Path(__file__).resolve().parents[1] / "build" / "sim-speed"


def amaranth(params: CoreParams, steps: int) -> dict:
    dut = SpikingCore(params)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    cycles = [0]

    async def count(ctx):
        async for _ in ctx.tick():
            cycles[0] += 1

    async def bench(ctx):
        await train_and_check(
            CoreSession(params, SimHost(ctx, dut).call), seed=SEED, steps=steps, density=DENSITY
        )

    sim.add_process(count)
    sim.add_testbench(bench)
    t0 = time.perf_counter()
    sim.run()
    seconds = time.perf_counter() - t0
    return _figures(cycles[0], seconds)


def _figures(cycles: int, seconds: float, **more) -> dict:
    return {"cycles": cycles, "seconds": seconds, "cycles_per_second": cycles / seconds, **more}


def verilator(params: CoreParams, steps: int, stall: float, folder: Path) -> dict[str, dict]:
    """The fast transactors, cocotbext-axi and bare Verilator on one wrapper build."""
    b = build_fast_core(params, folder)
    case = {"steps": steps, "density": DENSITY, "stall": stall, "record": True}
    runs = {}
    for fast in (True, False):
        t0 = time.perf_counter()
        r = run_seed(b, params, folder, SEED, fast=fast, waves_on_failure=False, **case)
        if not r.passed:
            raise SystemExit(r.report())
        runs[fast] = (r, time.perf_counter() - t0)
    (f, f_wall), (a, a_wall) = runs[True], runs[False]
    same = same_answers(f, a)
    if not same.passed:
        raise SystemExit(same.message)
    binary, bare_build = build_bare(params, folder)
    bare = _bare(binary, f.folder, folder / "bare", stall)
    if bare["answers"] != fast_tb.read_answers(f.folder / "rsp.hex"):
        raise SystemExit("bare Verilator's answers differ from the fast transactors'")
    d = f.detail or {}
    return {
        "fast": _figures(
            f.cycles, d["run_seconds"], python_seconds=f.seconds - d["run_seconds"], wall=f_wall
        ),
        "cocotbext-axi": _figures(a.cycles, a.seconds, wall=a_wall),
        "bare": _figures(bare["cycles"], bare["seconds"], startup=bare["startup"]),
        "builds": {"cocotb": b.seconds, "bare": bare_build, "cached": b.cached},
    }


def _bare(binary: Path, stream: Path, folder: Path, stall: float) -> dict:
    """Run ``binary`` on ``stream/cmd.hex`` (and on an empty stream, for its start-up time)."""
    settings = fast_tb.FastSettings(
        idle=stall, backpressure=stall, seed=SEED, deadline=ANSWER_DEADLINE
    )
    seconds = {}
    for name in ("empty", "stream"):
        work = folder / f"run-{name}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        if name == "empty":
            fast_tb.write_commands(work / "cmd.hex", [])
        else:
            shutil.copy(stream / "cmd.hex", work / "cmd.hex")
        t0 = time.perf_counter()
        done = run_tool([binary, *settings.plusargs()], cwd=work, timeout=BARE_TIMEOUT)
        if done.timed_out:
            raise SystemExit(f"the bare Verilator run '{name}' ran past {BARE_TIMEOUT} s")
        if done.returncode:
            raise SystemExit(
                f"the bare Verilator run '{name}' failed ({done.returncode}): {done.output[-500:]}"
            )
        seconds[name] = time.perf_counter() - t0
    status = fast_tb.read_status(work / "fast.txt")
    if status["reason"] != "done":
        raise SystemExit(f"bare Verilator stopped: {status['reason']}")
    return {
        "cycles": status["cycles"],
        "seconds": seconds["stream"] - seconds["empty"],
        "startup": seconds["empty"],
        "answers": fast_tb.read_answers(work / "rsp.hex"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=2, help="training steps [default: 2]")
    ap.add_argument(
        "--stall", type=float, default=0.3, help="idle and backpressure probability [0.3]"
    )
    ap.add_argument("--small", action="store_true", help="the 16 x 16 matrix config")
    ap.add_argument("--no-amaranth", action="store_true", help="skip Amaranth's simulator")
    ap.add_argument("--json", action="store_true", help="print JSON as the last line")
    args = ap.parse_args()
    if args.steps < 1:
        ap.error(f"--steps must be >= 1, not {args.steps}")
    if not 0.0 <= args.stall < 1.0:
        ap.error(f"--stall must lie in [0, 1), not {args.stall}")
    if args.small:
        params, core = core_params("default-shape"), "small core"
    else:
        params, core = CoreParams(net=DEFAULT_CORE_NET, lanes=8, emit_error=True), "default core"
    runs = verilator(params, args.steps, args.stall, BUILD / core.replace(" ", "-"))
    builds = runs.pop("builds")
    if not args.no_amaranth:
        runs["amaranth"] = amaranth(params, args.steps)
    bare = runs["bare"]["cycles_per_second"]
    print(
        f"{core} {params.n_in}x{params.n_out}, {params.lanes} lanes, T = {params.timesteps}, "
        f"{args.steps} training steps at input density {DENSITY}, {args.stall:.0%} idle and "
        f"{args.stall:.0%} backpressure (Amaranth: none), every value checked"
    )
    print(f"{'simulator':<32}{'cycles':>10}{'seconds':>10}{'cycles/s':>12}{'of bare':>9}")
    names = {
        "fast": "fast transactors (cocotb)",
        "cocotbext-axi": "cocotbext-axi (cocotb)",
        "bare": "bare Verilator (C++ main)",
        "amaranth": "Amaranth simulator",
    }
    for key, r in runs.items():
        print(
            f"{names[key]:<32}{r['cycles']:>10}{r['seconds']:>10.2f}"
            f"{r['cycles_per_second']:>12.0f}{r['cycles_per_second'] / bare:>9.1%}"
        )
    fast = runs["fast"]
    speedup = fast["cycles_per_second"] / runs["cocotbext-axi"]["cycles_per_second"]
    print(
        f"fast / cocotbext-axi: {speedup:.1f}x; fast / bare: "
        f"{fast['cycles_per_second'] / bare:.1%}; answers identical in all three Verilator runs "
        f"(fast run's Python passes {fast['python_seconds']:.1f} s; builds: cocotb "
        f"{builds['cocotb']:.0f} s, bare {builds['bare']:.0f} s, 0 = cached)"
    )
    if args.json:
        print(json.dumps({**runs, "builds": builds, "steps": args.steps, "stall": args.stall}))


if __name__ == "__main__":
    main()
