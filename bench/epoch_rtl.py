"""A whole epoch of the digits network trained on the generated Verilog, bit for bit.

The digits network (64-64-10, T = 16, 8-bit, stochastic rounding) on a two-core array (one
core per layer, spikes and errors on the array's own links), inside the fast-transactor
wrapper under Verilator: the 1,437 training samples of epoch 0 at batch size 1 in the integer
trainer's order, every weight of both cores compared with the golden model's at ``--checkpoints``
evenly spaced samples and after the last one, then the whole test split (360 samples)
predicted on the array and compared with the golden model's predictions. Idle cycles and
backpressure on the host port: ``--stall`` each (default 0.2).

Prints samples, simulated cycles, cycles per sample, the wall time of each part (build,
planning pass with the golden model, the simulated run, the checking pass), the checkpoints
and the test accuracy of the RTL and of the golden model.

Run: ``.venv/bin/python bench/epoch_rtl.py [--samples N] [--test N] [--checkpoints K]
[--stall P] [--json]`` (``make epoch-rtl``). The build is kept in ``build/epoch-rtl/``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from spikeforge.sim.epoch import EPOCH_SAMPLES
from spikeforge.sim.regress import run_epoch

BUILD = Path(__file__).resolve().parents[1] / "build" / "epoch-rtl"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=EPOCH_SAMPLES, help="training samples [1437]")
    ap.add_argument("--test", type=int, default=None, help="test samples [all 360]")
    ap.add_argument("--checkpoints", type=int, default=10, help="weight checkpoints [10]")
    ap.add_argument("--stall", type=float, default=0.2, help="idle/backpressure [0.2]")
    ap.add_argument("--json", action="store_true", help="print JSON as the last line")
    args = ap.parse_args()
    if not 1 <= args.samples <= EPOCH_SAMPLES:
        ap.error(f"--samples must lie in [1, {EPOCH_SAMPLES}], not {args.samples}")
    if args.test is not None and args.test < 0:
        ap.error(f"--test must be >= 0, not {args.test}")
    if args.checkpoints < 1:
        ap.error(f"--checkpoints must be >= 1, not {args.checkpoints}")
    if not 0.0 <= args.stall < 1.0:
        ap.error(f"--stall must lie in [0, 1), not {args.stall}")
    t0 = time.perf_counter()
    result = run_epoch(
        BUILD,
        samples=args.samples,
        test_samples=args.test,
        checkpoints=args.checkpoints,
        stall=args.stall,
    )
    wall = time.perf_counter() - t0
    _, run = result.runs[0]
    if not result.passed:
        raise SystemExit(result.report())
    d = run.detail or {}
    figures = {
        "samples": d["samples_done"],
        "test_samples": d["test_samples"],
        "cycles": run.cycles,
        "cycles_per_sample": run.cycles / d["samples_done"],
        "checkpoints": d["checkpoints"],
        "test_accuracy": d["test_accuracy"],
        "golden_test_accuracy": d["golden_test_accuracy"],
        "build_seconds": result.build.seconds,
        "plan_seconds": d["plan_seconds"],
        "run_seconds": d["run_seconds"],
        "check_seconds": d["check_seconds"],
        "cycles_per_second": run.cycles / d["run_seconds"],
        "wall_seconds": wall,
        "stall": args.stall,
    }
    print(
        f"digits 64-64-10 on a 2-core array: {figures['samples']} training samples at batch 1, "
        f"{figures['test_samples']} test samples, {args.stall:.0%} idle and backpressure"
    )
    print(
        f"  {run.cycles:,} cycles (training and test), every weight equal to the golden "
        f"model's at {len(d['checkpoints'])} checkpoints (samples {d['checkpoints'][0]} .. "
        f"{d['checkpoints'][-1]}), every test prediction equal"
    )
    print(
        f"  test accuracy on the RTL {d['test_accuracy']:.2%} = golden model "
        f"{d['golden_test_accuracy']:.2%}"
    )
    print(
        f"  wall {wall:.0f} s: build {result.build.seconds:.0f} s (0 = cached), planning pass "
        f"(golden model) {d['plan_seconds']:.0f} s, simulated run {d['run_seconds']:.0f} s "
        f"({figures['cycles_per_second']:,.0f} cycles/s), checking pass {d['check_seconds']:.0f} s"
    )
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
