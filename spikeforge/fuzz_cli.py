"""``spikeforge fuzz``: fuzz the host port of a generated core or array while it trains."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_fuzz_parser", "cmd_fuzz"]


class FuzzArgumentError(ValueError):
    """A bad ``spikeforge fuzz`` argument (the CLI prints it as a usage error)."""


def _cores(args: argparse.Namespace) -> tuple[str, list]:
    """``(name, cores)``: ``--config`` (one core), ``--network``/``--cores`` (an array), or the
    default core."""
    from spikeforge.codesign.mapping import map_network
    from spikeforge.hw.params import DEFAULT_CORE_NET, CoreParams
    from spikeforge.loader import load_config
    from spikeforge.sim.fuzz import ARRAY_NET

    if args.config is not None and (args.network is not None or args.cores is not None):
        raise FuzzArgumentError(
            "--config names one core; --network and --cores an array: give one or the other"
        )
    if args.config is not None:
        return Path(args.config).stem, [load_config(args.config, array=False).core_params()]
    if args.network is not None:
        cores = {} if args.cores is None else {"cores": args.cores}
        config = load_config(args.network, array=True, **cores)
        if "cores" not in config.array:
            raise FuzzArgumentError(
                f"--cores is required with --network (or cores in the [array] table of "
                f"{args.network})"
            )
        return Path(args.network).stem, list(config.mapping().core_params())
    if args.cores is not None:
        return f"array-c{args.cores}", list(map_network(ARRAY_NET, args.cores).core_params())
    return "default-core", [CoreParams(net=DEFAULT_CORE_NET)]


def _table(counter: dict[str, int], title: str) -> str:
    width = max(len(k) for k in counter) if counter else 0
    lines = [title] + [f"  {k.ljust(width)}  {v:>7,}" for k, v in counter.items()]
    return "\n".join(lines)


def cmd_fuzz(args: argparse.Namespace) -> dict[str, Any]:
    from spikeforge.sim.fuzz import FuzzConfig
    from spikeforge.sim.regress import run_fuzz

    if args.packets < 1:
        raise FuzzArgumentError(f"--packets must be >= 1, not {args.packets}")
    if not 0.0 <= args.stall < 1.0:
        raise FuzzArgumentError(f"--stall must lie in [0, 1), not {args.stall}")
    name, cores = _cores(args)
    cfg = FuzzConfig(packets=args.packets, seed=args.seed)
    out = args.out or Path("build") / "fuzz" / name
    what = "one core" if len(cores) == 1 else f"an array of {len(cores)} cores"
    if not args.json:
        print(f"fuzzing {what} ({name}) with {args.packets:,} packets, seed {args.seed} ...")
    build, result = run_fuzz(cores, out, cfg=cfg, stall=args.stall)
    detail = result.detail or {}
    summary = {
        "passed": result.passed,
        "target": name,
        "cores": len(cores),
        "message": result.message,
        "cycles": result.cycles,
        "build_seconds": round(build.seconds, 1),
        "build_cached": build.cached,
        "folder": str(result.folder),
        **{k: v for k, v in detail.items() if k not in ("passed", "message", "cycles")},
    }
    if not args.json:
        if result.passed:
            print(_table(detail["packets_by_class"], "packets sent, by class"))
            print(_table(detail["answers_by_status"], "answers, by status"))
            print(
                f"{detail['packets']:,} packets, {detail['valid_steps']} valid training steps, "
                f"{detail['checkpoints']} checkpoints: every weight equals the golden model's "
                f"({detail['mismatches']} mismatches); ABORTs {detail['aborts']}; "
                f"{detail['packets_per_second']:.0f} packets/s, {result.cycles:,} cycles"
            )
        else:
            print(f"FAILED: {result.report()}")
    return summary


def add_fuzz_parser(sub) -> None:
    fuzz = sub.add_parser(
        "fuzz",
        help="fuzz the host port of a generated core or array while it trains (Verilator)",
        description=(
            "Build the core (or the array) with Verilator and train it through cocotbext-axi "
            "with random idle and backpressure cycles while sending bad packets of every kind "
            "between and inside the training steps: unknown opcodes, bad arguments, truncated, "
            "extended, bit-flipped, split and merged packets, wrong spike counts and indices, "
            "ABORTs at random moments (with the host's recovery) and, on an array, bad route "
            "words, stuck cores and tiny watchdog timeouts. Every answer must be the one the "
            "protocol's rules give, and every weight must equal the golden model trained on the "
            "valid steps alone. Exit status 1 on any failure."
        ),
    )
    fuzz.add_argument(
        "--config", type=Path, metavar="TOML", help="one core (network keys + [core] table)"
    )
    fuzz.add_argument(
        "--network", type=Path, metavar="TOML", help="an array: the network (with --cores)"
    )
    fuzz.add_argument(
        "--cores",
        type=int,
        metavar="C",
        help="fuzz an array of C cores (the --network, or 32-48-10 with T = 8) [default: the "
        "default core alone]",
    )
    fuzz.add_argument("--packets", type=int, default=2000, help="packets to send [default: 2000]")
    fuzz.add_argument("--seed", type=int, default=0, help="weights, samples, choices [default: 0]")
    fuzz.add_argument(
        "--stall", type=float, default=0.3, help="idle/backpressure probability [default: 0.3]"
    )
    fuzz.add_argument("--out", type=Path, help="build folder [default: build/fuzz/NAME]")
    fuzz.add_argument("--json", action="store_true", help="print a JSON summary as last line")
    fuzz.set_defaults(func=cmd_fuzz)
