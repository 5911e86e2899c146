"""Cycles per training sample of one network on 1, 2, 4, 8, 16 ... cores, measured under
cocotb + Verilator, with the parallel efficiency and the array cycle model's error.

For each core count the network is placed by the mapping compiler (``map_network``), the array
is generated and Verilated (kept in ``OUT/c<C>/``), and ``steps`` training steps run without
idle or backpressure cycles (every weight of every layer checked against the golden model after
every step; the read-back is not counted). Per core count it prints the mean measured cycles
per training sample, the speed-up and the parallel efficiency against the smallest core count
in the list (``eff = cycles(C0) * C0 / (cycles(C) * C)``), the model's mean cycles and its
worst per-step error, the cycles of one inference pass (the forward packets, measured and
modelled), the Verilator build seconds and the simulation seconds.

It then prints where each core count's cycles go: the model's per-phase breakdown of the mean
step (:data:`~spikeforge.hw.array_cycles.PHASES`: the forward wall with the input-spike load
streamed into it, answers, the backward wall, the host's fixed round trips) and, measured,
the slowest core's FORWARD and BACKWARD counters of the last step next to the model's.
``--model-only`` prints the model's columns and the breakdown without building anything
(seconds).

Every row also gives the array's block RAMs (``Mapping.bram_estimate``) and whether they fit one
``--device``: the arrays are placed without the mapping compiler's device check, so a core
count that is too large for one FPGA is still simulated (a scaling study), and the table says
it does not fit.

Run: ``.venv/bin/python bench/array_scaling.py [--layers 128,256] [--timesteps 8]
[--cores 1,2,4,8,16] [--lanes 8] [--steps 3] [--density 0.2] [--device 85k]
[--out build/array-scaling] [--model-only] [--json]``. Results also go to
``OUT/results.json`` (rerunning reuses the builds).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from spikeforge.codesign.mapping import DEFAULT_DEVICE, Mapping, map_network
from spikeforge.hw.array_cycles import PHASES
from spikeforge.hw.devices import DEVICE_NAMES, ecp5_device
from spikeforge.sim.array_model import model_steps
from spikeforge.sim.regress import run_array
from spikeforge.sw.config import SnnConfig

ROOT = Path(__file__).resolve().parents[1]


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(","))


def _phases(model) -> dict[str, float]:
    """The model's mean cycles per phase over the steps."""
    return {k: sum(m.phases[k] for m in model) / len(model) for k in PHASES}


def _place(net: SnnConfig, cores: int, args: argparse.Namespace) -> tuple[Mapping, dict]:
    """``net`` on ``cores`` cores, unchecked against the device, and the row's placement
    columns: cores per layer, block RAMs and whether they fit one ``args.device``."""
    mapping = map_network(net, cores, lanes=args.lanes, check_device=False)
    bram = mapping.bram_estimate
    return mapping, {
        "cores": cores,
        "cores_per_layer": list(mapping.cores_per_layer),
        "bram": bram,
        "fits": bram <= ecp5_device(args.device).brams,
    }


def model_only(net: SnnConfig, cores: int, args: argparse.Namespace) -> dict:
    mapping, row = _place(net, cores, args)
    params = mapping.core_params()
    model = model_steps(params, seed=args.seed, steps=args.steps, density=args.density)
    steps = [m.step for m in model]
    return {
        **row,
        "mean_cycles": sum(steps) / len(steps),
        "model_cycles": steps,
        "model_infer_cycles": model[0].infer,
        "fifo_peak": max(m.fifo_peak for m in model),
        "phases": _phases(model),
        "model_counters": [max(model[-1].forward), max(model[-1].backward)],
    }


def measure(net: SnnConfig, cores: int, args: argparse.Namespace) -> dict:
    mapping, row = _place(net, cores, args)
    params = mapping.core_params()
    t0 = time.perf_counter()
    b, r = run_array(
        params,
        args.out / f"c{cores}",
        seed=args.seed,
        steps=args.steps,
        density=args.density,
        stall=0.0,
        check_every=1,
        grads=False,  # every step's cycles measured (the update in the step)
    )
    wall = time.perf_counter() - t0
    if not r.passed:
        raise SystemExit(f"{cores} cores: {r.report()}")
    measured = r.detail["step_cycles"]
    model = model_steps(params, seed=args.seed, steps=args.steps, density=args.density)
    errors = [abs(m.step - c) / c for m, c in zip(model, measured, strict=True)]
    infer = r.detail["infer_cycles"]
    errors.append(abs(model[0].infer - infer) / infer)
    return {
        **row,
        "cycles": measured,
        "mean_cycles": sum(measured) / len(measured),
        "model_cycles": [m.step for m in model],
        "model_error_max": max(errors),
        "infer_cycles": infer,
        "model_infer_cycles": model[0].infer,
        "fifo_peak": max(m.fifo_peak for m in model),
        "phases": _phases(model),
        "model_counters": [max(model[-1].forward), max(model[-1].backward)],
        "counters": [
            max(c[k] for c in r.detail["counters"].values()) for k in ("forward", "backward")
        ],
        "build_seconds": round(b.seconds, 1),
        "build_cached": b.cached,
        "sim_seconds": round(r.seconds, 1),
        "wall_seconds": round(wall, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layers", type=_ints, default=(128, 256))
    ap.add_argument("--timesteps", type=int, default=8)
    ap.add_argument("--cores", type=_ints, default=(1, 2, 4, 8, 16))
    ap.add_argument("--lanes", type=int, default=8)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--density", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", choices=DEVICE_NAMES, default=DEFAULT_DEVICE)
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "array-scaling")
    ap.add_argument("--model-only", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    net = SnnConfig(layers=args.layers, timesteps=args.timesteps)
    rows = []
    for cores in args.cores:
        if args.model_only:
            rows.append(model_only(net, cores, args))
            continue
        rows.append(measure(net, cores, args))
        print(f"... {cores} cores done", flush=True)
    base = rows[0]
    for row in rows:
        row["speedup"] = base["mean_cycles"] / row["mean_cycles"]
        row["efficiency"] = row["speedup"] * base["cores"] / row["cores"]
    summary = {"network": list(args.layers), "timesteps": args.timesteps, "rows": rows}
    print(
        f"network {args.layers}, T = {args.timesteps}, density {args.density}, lanes <= "
        f"{args.lanes}, {args.steps} steps per core count; BRAM: the array's block RAMs, "
        f"'!' where they exceed one {args.device} ({ecp5_device(args.device).brams})"
    )
    if args.model_only:
        print(
            f"{'cores':>5} {'per layer':>14} {'model':>9} {'speed-up':>8} {'eff':>6} {'infer':>6} "
            f"{'BRAM':>6}"
        )
        for row in rows:
            print(
                f"{row['cores']:>5} {row['cores_per_layer']!s:>14} {row['mean_cycles']:>9.0f} "
                f"{row['speedup']:>8.2f} {row['efficiency']:>6.1%} {row['model_infer_cycles']:>6} "
                f"{_bram(row):>6}"
            )
        _breakdown(rows)
        if args.json:
            print(json.dumps(summary))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"{'cores':>5} {'per layer':>14} {'cycles/sample':>13} {'speed-up':>8} {'eff':>6} "
        f"{'model':>9} {'err':>6} {'infer':>6} {'model':>6} {'build s':>7} {'sim s':>6} "
        f"{'BRAM':>6}"
    )
    for row in rows:
        print(
            f"{row['cores']:>5} {row['cores_per_layer']!s:>14} {row['mean_cycles']:>13.0f} "
            f"{row['speedup']:>8.2f} {row['efficiency']:>6.1%} "
            f"{sum(row['model_cycles']) / len(row['model_cycles']):>9.0f} "
            f"{row['model_error_max']:>6.2%} "
            f"{row['infer_cycles']:>6} {row['model_infer_cycles']:>6} "
            f"{'cached' if row['build_cached'] else row['build_seconds']:>7} "
            f"{row['sim_seconds']:>6.1f} {_bram(row):>6}"
        )
    _breakdown(rows)
    for row in rows:
        fw, bw = row["counters"]
        mfw, mbw = row["model_counters"]
        print(
            f"{row['cores']:>5} cores, slowest core's counters (last step): FORWARD {fw} "
            f"(model {mfw}), BACKWARD {bw} (model {mbw})"
        )
    if args.json:
        print(json.dumps(summary))


def _bram(row: dict) -> str:
    """The row's block RAMs, marked ``!`` when they do not fit the device."""
    return f"{row['bram']}{'' if row['fits'] else '!'}"


def _breakdown(rows: list[dict]) -> None:
    """Where the cycles of a mean step go, phase by phase (the model), per core count."""
    print("cycles per phase (model, mean step):")
    print(f"{'phase':>17} " + " ".join(f"{row['cores']:>7}" for row in rows))
    for key in PHASES:
        print(f"{key:>17} " + " ".join(f"{row['phases'][key]:>7.0f}" for row in rows))
    print(f"{'step':>17} " + " ".join(f"{row['mean_cycles']:>7.0f}" for row in rows))


if __name__ == "__main__":
    main()
