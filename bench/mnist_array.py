"""An MNIST-sized network on one ECP5-85F: 784-256-10 trained on the generated array under
Verilator and, with ``--build``, built for the ULX3S-85F.

The mapping compiler puts the network on the fewest cores of the device (2 cores with fused
gradients and dense weights: ``map_network(..., fused=True)``), the array trains ``--steps``
steps on synthetic inputs (each input spikes with probability ``--density`` per timestep) under
Verilator + cocotb (``sim/tb_array.py``: every quantity of every core checked against the
golden model after every step), and each step's measured cycles are compared with the array
cycle model (:func:`~spikeforge.hw.array_cycles.array_step_cycles`; exact without stalls,
``--stall 0``, the default). ``--build`` then synthesizes, places and routes the whole array
behind the serial link for the board (:func:`~spikeforge.hw.bitstream.build_bitstream`) and
reports its resources and Fmax, and samples/s at that Fmax.

Run: ``.venv/bin/python bench/mnist_array.py [--build] [--json]`` -- the Verilator build about
4 minutes and 2 steps about 1 minute here; the board build about 1-2 hours (docs/results.md).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from spikeforge.codesign.mapping import map_network
from spikeforge.hw.bitstream import build_bitstream
from spikeforge.sim.array_model import model_steps
from spikeforge.sim.regress import run_array
from spikeforge.sw.config import SnnConfig

LAYERS = (784, 256, 10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layers", default=",".join(map(str, LAYERS)), help="[784,256,10]")
    ap.add_argument("--device", default="85k", help="ECP5 device [85k]")
    ap.add_argument("--board", default="ulx3s-85f", help="board for --build [ulx3s-85f]")
    ap.add_argument("--steps", type=int, default=2, help="training steps [2]")
    ap.add_argument("--density", type=float, default=0.5, help="input spike probability [0.5]")
    ap.add_argument("--stall", type=float, default=0.0, help="host idle/backpressure rate [0]")
    ap.add_argument("--seed", type=int, default=1, help="weights and samples [1]")
    ap.add_argument("--build", action="store_true", help="also build the board's bitstream")
    ap.add_argument("--timeout", type=float, default=10800, help="board build seconds [10800]")
    ap.add_argument("--out", type=Path, default=Path("build/mnist-array"), help="work folder")
    ap.add_argument("--json", action="store_true", help="print a JSON summary as last line")
    args = ap.parse_args()
    if args.steps < 1:
        ap.error(f"--steps: must be >= 1, not {args.steps}")
    if not 0 < args.density <= 1:
        ap.error(f"--density: must lie in (0, 1], not {args.density}")
    if not 0 <= args.stall < 1:
        ap.error(f"--stall: must lie in [0, 1), not {args.stall}")

    net = SnnConfig(layers=tuple(int(n) for n in args.layers.split(",")), timesteps=16)
    mapping = map_network(net, 2, device=args.device, fused=True)
    cores = list(mapping.core_params())
    print(mapping.describe())
    print(f"block RAMs (estimate): {mapping.bram_estimate} {mapping.bram_by_memory()}")

    start = time.monotonic()
    _, run = run_array(
        cores,
        args.out / "rtl",
        seed=args.seed,
        steps=args.steps,
        density=args.density,
        stall=args.stall,
        grads=False,
    )
    rtl_seconds = time.monotonic() - start
    if not run.passed:
        raise SystemExit(f"the RTL run failed: {run.message}")
    result = json.loads((args.out / "rtl" / f"seed-{args.seed}" / "result.json").read_text())
    model = model_steps(cores, seed=args.seed, steps=args.steps, density=args.density)
    step_cycles = result["step_cycles"]
    summary = {
        "layers": list(net.layers),
        "cores": len(cores),
        "bram_estimate": mapping.bram_estimate,
        "steps": args.steps,
        "bit_exact": True,
        "step_cycles": step_cycles,
        "model_step_cycles": [c.step for c in model],
        "infer_cycles": result["infer_cycles"],
        "model_infer_cycles": model[0].infer,
        "rtl_seconds": round(rtl_seconds, 1),
    }
    print(
        f"{args.steps} steps bit-exact (every quantity of every core), {rtl_seconds:.0f} s: "
        f"cycles per step {step_cycles} (model {summary['model_step_cycles']}), "
        f"inference {result['infer_cycles']} (model {model[0].infer})"
    )
    if args.build:
        board = build_bitstream(cores, args.board, args.out / "board", timeout=args.timeout)
        per_step = sum(step_cycles) / len(step_cycles)
        summary["board"] = board.to_dict()
        summary["samples_per_s_at_fmax"] = (
            None if board.fmax_mhz is None else round(board.fmax_mhz * 1e6 / per_step, 1)
        )
        print(
            f"{args.board}: {board.resources}, Fmax {board.fmax_mhz} MHz, "
            f"{board.bitstream_bytes} B bitstream in {board.seconds:.0f} s; "
            f"{summary['samples_per_s_at_fmax']} training samples/s at Fmax"
        )
    if args.json:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
