"""``spikeforge import`` and ``spikeforge export --nir``: networks in and out through NIR."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from spikeforge.sw.config import NIR_DT, SnnConfig

__all__ = ["add_nir_parsers", "cmd_export", "cmd_import"]


def _print_import(summary: dict[str, Any]) -> None:
    print(
        f"network {'-'.join(map(str, summary['layers']))}: leak_shift {summary['leak_shift']}, "
        f"theta {summary['theta']}, {summary['w_bits']}-bit weights, reset {summary['reset']}"
    )
    print("layer  linear -> neuron        shape      max error  rms rel. error  saturated")
    for q in summary["quantization"]:
        shape = "x".join(map(str, q["shape"]))
        print(
            f"{q['layer']:5d}  {q['linear'] + ' -> ' + q['neuron']:20s}  {shape:9s}  "
            f"{q['max_error_lsb']:6.3f} LSB  {q['rms_relative_error']:14.3g}  {q['saturated']:9d}"
        )
    for note in summary["notes"]:
        print(f"note: {note}")
    print(f"wrote {summary['config']} and {summary['weights']}")


def cmd_import(args: argparse.Namespace) -> dict[str, Any]:
    from spikeforge.api import import_nir, save_import

    imported = import_nir(
        args.model,
        w_bits=args.w_bits,
        timesteps=args.timesteps,
        dt=args.dt,
        theta=args.theta,
        approximate=args.approximate,
    )
    toml, ckpt = save_import(imported, args.out, source=str(args.model))
    summary = {**imported.to_dict(), "config": str(toml), "weights": str(ckpt)}
    if not args.json:
        _print_import(summary)
    return summary


def cmd_export(args: argparse.Namespace) -> dict[str, Any]:
    from spikeforge.api import export_nir

    notes = export_nir(args.checkpoint, args.nir, dt=args.dt)
    if not args.json:
        for note in notes:
            print(f"note: {note}")
        print(f"wrote {args.nir}")
    return {"nir": str(args.nir), "checkpoint": str(args.checkpoint), "notes": notes}


def add_nir_parsers(sub) -> None:
    imp = sub.add_parser(
        "import",
        help="turn a NIR graph (snnTorch, Norse, ...) into a network config and initial weights",
        description=(
            "Read a NIR file holding Input -> (Linear | Affine -> LIF)+ -> Output and write the "
            "network config (TOML) and its integer initial weights (a checkpoint beside it, "
            "OUT with .pt) for `spikeforge train --config OUT --init OUT.pt`. The leak "
            "u - (u >> k) is tau = dt * 2**k; thresholds become theta, each neuron's weights "
            "scaled by theta / v_threshold and rounded to --w-bits (the error is printed per "
            "layer). A node the chip cannot run (convolution, recurrence, CubaLIF, v_leak != 0, "
            "tau not dt * 2**k, ...) is refused with its name and the reason. See "
            "docs/arithmetic.md, section 8."
        ),
    )
    imp.add_argument("model", type=Path, help="the .nir file")
    imp.add_argument("-o", "--out", type=Path, required=True, help="network config to write")
    imp.add_argument(
        "--w-bits",
        type=int,
        default=SnnConfig.w_bits,
        help=f"weight width [default: {SnnConfig.w_bits}]",
    )
    imp.add_argument(
        "--timesteps",
        type=int,
        default=SnnConfig.timesteps,
        help=f"timesteps T [default: {SnnConfig.timesteps}]",
    )
    imp.add_argument(
        "--dt",
        type=float,
        default=NIR_DT,
        help=f"seconds per timestep, tau = dt * 2**k [default: {NIR_DT:g}, snnTorch's]",
    )
    imp.add_argument(
        "--theta",
        type=int,
        help="integer threshold [default: 2**(w_bits - 2), lower if a weight would saturate]",
    )
    imp.add_argument(
        "--approximate",
        action="store_true",
        help="map a tau that is not dt * 2**k (and IF neurons) to the nearest leak and print "
        "the error, instead of refusing",
    )
    imp.add_argument("--json", action="store_true", help="print a JSON summary as last line")
    imp.set_defaults(func=cmd_import)

    exp = sub.add_parser(
        "export",
        help="write a trained integer checkpoint as a NIR graph",
        description=(
            "Write the network of an integer checkpoint (spikeforge train --mode int) as NIR: "
            "Linear layers holding the weights in LSBs and LIF layers with threshold theta, "
            "tau = dt * 2**leak_shift, r = 2**leak_shift. snnTorch reads it with "
            "snntorch.import_nir.import_from_nir; where readers will differ from the chip is "
            "printed."
        ),
    )
    exp.add_argument("checkpoint", type=Path, help="an integer checkpoint (checkpoint.pt)")
    exp.add_argument("--nir", type=Path, required=True, metavar="OUT", help="the .nir to write")
    exp.add_argument("--dt", type=float, default=NIR_DT, help=f"seconds per timestep [{NIR_DT:g}]")
    exp.add_argument("--json", action="store_true", help="print a JSON summary as last line")
    exp.set_defaults(func=cmd_export)
