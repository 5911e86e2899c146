"""Simulated cycles per second of the default core: cocotb + Verilator against Amaranth's
simulator, on the same workload, measured in one run.

Workload: ``spikeforge.sim.scenario.train_and_check`` -- write the weights, then per training
step load the spikes, FORWARD, BACKWARD, read back every quantity, UPDATE, read the weights and
LFSR states, and check everything against the golden model -- on the default core (64 x 64,
8 lanes, 8-bit, T = 8) without idle or backpressure cycles. Both figures count only the
scenario (Verilator: from the testbench's start to its end; its build and process start are
printed apart). Amaranth counts cycles with a background process that awaits every clock edge.

Run: ``.venv/bin/python bench/sim_speed.py [--steps N] [--small] [--json]`` (``make
sim-speed``); ``--small`` measures the 16 x 16 matrix config instead (a quick smoke run). The
Verilator build is kept in ``build/sim-speed/`` and reused.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from amaranth.sim import Simulator

from spikeforge.hw.core import SpikingCore
from spikeforge.hw.params import DEFAULT_CORE_NET, CoreParams
from spikeforge.sim.amaranth_host import SimHost
from spikeforge.sim.matrix import core_params
from spikeforge.sim.regress import run_config
from spikeforge.sim.scenario import train_and_check
from spikeforge.sim.session import CoreSession

DENSITY = 0.25
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
            CoreSession(params, SimHost(ctx, dut).call), seed=0, steps=steps, density=DENSITY
        )

    sim.add_process(count)
    sim.add_testbench(bench)
    t0 = time.perf_counter()
    sim.run()
    seconds = time.perf_counter() - t0
    return {"cycles": cycles[0], "seconds": seconds, "cycles_per_second": cycles[0] / seconds}


def verilator(params: CoreParams, steps: int, folder: Path) -> dict:
    t0 = time.perf_counter()
    result = run_config(
        folder.name, params, folder, seeds=[0], steps=steps, stall=0.0, checks=False
    )
    wall = time.perf_counter() - t0
    if not result.passed:
        raise SystemExit(result.report())
    return {
        "cycles": result.cycles,
        "seconds": result.seconds,
        "cycles_per_second": result.cycles_per_second,
        "build_seconds": result.build.seconds,
        "process_seconds": wall - result.build.seconds - result.seconds,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=2, help="training steps [default: 2]")
    ap.add_argument("--small", action="store_true", help="the 16 x 16 matrix config")
    ap.add_argument("--json", action="store_true", help="print JSON as the last line")
    args = ap.parse_args()
    if args.steps < 1:
        ap.error(f"--steps must be >= 1, not {args.steps}")
    if args.small:
        params, core = core_params("default-shape"), "small core"
    else:
        params, core = CoreParams(net=DEFAULT_CORE_NET, lanes=8, emit_error=True), "default core"
    v = verilator(params, args.steps, BUILD / core.replace(" ", "-"))
    a = amaranth(params, args.steps)
    ratio = v["cycles_per_second"] / a["cycles_per_second"]
    print(
        f"{core} {params.n_in}x{params.n_out}, {params.lanes} lanes, T = {params.timesteps}, "
        f"{args.steps} training steps at input density {DENSITY}, every value checked"
    )
    print(f"{'simulator':<22}{'cycles':>10}{'seconds':>10}{'cycles/s':>12}")
    for sim, r in (("cocotb + Verilator", v), ("Amaranth simulator", a)):
        print(f"{sim:<22}{r['cycles']:>10}{r['seconds']:>10.2f}{r['cycles_per_second']:>12.0f}")
    print(
        f"Verilator / Amaranth: {ratio:.1f}x "
        f"(Verilator build {v['build_seconds']:.0f} s, "
        f"Verilog generation + simulator start {v['process_seconds']:.1f} s)"
    )
    if args.json:
        print(json.dumps({"verilator": v, "amaranth": a, "ratio": ratio, "steps": args.steps}))


if __name__ == "__main__":
    main()
