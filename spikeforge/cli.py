"""The ``spikeforge`` command line: one program, one subcommand per job.

Every subcommand accepts ``--json``: then the last line of standard output is one JSON object
with the result, and progress bars go to standard error. Bad arguments exit with status 2 and a
message that names the parameter, the value and the allowed range.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from spikeforge import __version__
from spikeforge.board_cli import BoardCliError, add_board_parsers, add_target_flags, train_on_target
from spikeforge.federate_cli import add_federate_parser
from spikeforge.fuzz_cli import FuzzArgumentError, add_fuzz_parser
from spikeforge.hw.params import DEFAULT_CORE_NET
from spikeforge.hw.synth import ROUTERS
from spikeforge.loader import NETWORK_KEYS, load_config
from spikeforge.nir_cli import add_nir_parsers
from spikeforge.sw.config import (
    CHOICES,
    DEFAULT_SCHEDULE,
    DERIVED_RULES,
    FIELD_HELP,
    TRAINING_CHOICES,
    ConfigError,
    SnnConfig,
)
from spikeforge.sw.sources import DEFAULT_DATASET, SOURCES
from spikeforge.sweep_cli import add_sweep_parser

__all__ = ["build_parser", "main"]


class CliError(Exception):
    """A user error: printed as ``spikeforge: error: ...`` with exit status 2."""


def _layers(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--layers must be comma-separated integers like 64,64,10, not {text!r}"
        ) from None


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per :class:`SnnConfig` field; a flag overrides the same key of ``--config``."""
    group = parser.add_argument_group(
        "network config (flags override --config; see docs/arithmetic.md)"
    )
    group.add_argument("--config", type=Path, metavar="TOML", help="config file (TOML)")
    for f in dataclasses.fields(SnnConfig):
        if not f.init:
            continue
        flag = "--" + f.name.replace("_", "-")
        helptext = FIELD_HELP[f.name]
        if f.name in DERIVED_RULES:
            helptext += f" [default: derived, {DERIVED_RULES[f.name]}]"
        else:
            helptext += f" [default: {f.default!r}]"
        if f.name == "layers":
            group.add_argument(flag, type=_layers, metavar="N,N,...", help=helptext)
        elif f.name in CHOICES:
            group.add_argument(flag, choices=CHOICES[f.name], help=helptext)
        else:
            group.add_argument(flag, type=int, metavar="INT", help=helptext)


CORE_FLAGS = ("layer", "lanes", "lr_range", "emit_error", "device", "rate_encoder")
"""The ``[core]`` keys with a flag (``generate``, ``synth``, ``build``)."""
ARRAY_FLAGS = ("cores", "lanes", "device", "lr_range")
"""The ``[array]`` keys with a flag (``generate --network``, ``build --network``)."""


def _given(args: argparse.Namespace, keys) -> dict[str, Any]:
    """The flags of ``keys`` given on the command line (not ``None``), by key."""
    return {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}


def config_from_args(args: argparse.Namespace):
    """The validated network of ``--config`` and the per-field flags (``train``)."""

    return load_config(args.config, **_given(args, NETWORK_KEYS)).net


def hardware_from_args(args: argparse.Namespace):
    """The :class:`~spikeforge.loader.Config` of ``generate``, ``synth`` and ``build``: one
    core (``--config`` or the default core, core flags overriding) or, with ``--network``, an
    array (its ``[array]`` table, ``--cores`` and the array flags overriding)."""
    if getattr(args, "network", None) is not None:
        return _array_from_args(args)
    if getattr(args, "cores", None) is not None:
        raise CliError("--cores needs --network TOML: it sets the cores of a multi-core array")
    overrides = _given(args, NETWORK_KEYS + CORE_FLAGS)
    if args.config is None:
        default = {"layers": list(DEFAULT_CORE_NET.layers), "timesteps": DEFAULT_CORE_NET.timesteps}
        overrides = {**default, **overrides}
    return load_config(args.config, array=False, **overrides)


def _array_from_args(args: argparse.Namespace):
    """``--network`` (and ``--cores``): the array's config, the flags that do not apply to an
    array refused by name."""

    if args.config is not None:
        raise CliError(
            f"--network and --config are mutually exclusive: --network {args.network} is the "
            f"network of a multi-core array, --config {args.config} the config of one core"
        )
    emit_flag = "--emit-error" if args.emit_error else "--no-emit-error"
    if args.rate_encoder:
        raise CliError("--rate-encoder applies to one core (not --network arrays yet)")
    for flag, key in (("--layer", "layer"), (emit_flag, "emit_error")):
        if getattr(args, key) is not None:
            raise CliError(
                f"{flag} does not apply to an array (--network): the mapping gives every core "
                "its layer, and every core past layer 0 emits W^T.delta"
            )
    config = load_config(args.network, array=True, **_given(args, NETWORK_KEYS + ARRAY_FLAGS))
    if "cores" not in config.array:
        raise CliError(
            f"--cores is required with --network (or cores in the [array] table of {args.network})"
        )
    return config


def _progress_factory(enabled: bool):
    if not enabled:
        from spikeforge.sw.train import no_progress

        return no_progress
    from tqdm import tqdm

    def make(total: int, desc: str):
        return tqdm(total=total, desc=desc, unit="sample", leave=False, file=sys.stderr)

    return make


def cmd_train(args: argparse.Namespace) -> dict[str, Any]:
    from spikeforge.sw.train import FloatOptions
    from spikeforge.training import train, training_data

    cfg = config_from_args(args)
    if args.epochs < 1:
        raise CliError(f"--epochs must be >= 1, not {args.epochs}")
    progress = _progress_factory(not args.no_progress)

    def report(row: dict[str, Any]) -> None:
        print(f"epoch {row['epoch']:3d}  test accuracy {100 * row['test_accuracy']:6.2f}%")

    if args.init is not None and (args.mode != "int" or args.target is not None or args.resume):
        raise CliError(
            "--init starts integer training here: use it with --mode int, without --target "
            "and --resume"
        )
    if args.target is not None:
        ds = training_data(args.dataset, cfg, validation=args.validation)
        summary = train_on_target(args, cfg, ds, progress, report)
        out = args.out or Path("runs") / f"train-board-{cfg.config_hash}"
        out.mkdir(parents=True, exist_ok=True)
        (out / "board.json").write_text(json.dumps(summary, indent=2) + "\n")
        if not args.json:
            print(
                f"{args.target}: test accuracy {100 * summary['test_accuracy']:.2f}% after "
                f"{args.epochs} epochs of {summary['samples_per_epoch']} samples, "
                f"{summary['seconds']:g} s; "
                + ("every weight and prediction as the golden model's" if args.verify else "")
            )
        return summary
    float_mode = args.mode == "float"
    result = train(
        cfg,
        dataset=args.dataset,
        epochs=args.epochs,
        mode=args.mode,
        out=args.out,
        resume=args.resume,
        validation=args.validation,
        init=args.init,
        schedule=args.lr_schedule,
        float_options=(
            FloatOptions(lr=args.lr, batch_size=args.float_batch, loss=args.loss)
            if float_mode
            else None
        ),
        progress=progress,
        on_epoch=report,
    )
    summary = json.loads(Path(result.checkpoint).with_name("result.json").read_text())
    if not args.json:
        print(
            f"{args.mode} mode: test accuracy {100 * result.test_accuracy:.2f}% "
            f"(train {100 * result.train_accuracy:.2f}%) after {result.epochs} epochs, "
            f"{result.train_seconds:.1f} s, {result.samples_per_second:.0f} samples/s\n"
            f"checkpoint: {result.checkpoint}"
        )
    return summary


def _add_core_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "core (flags override the config's [core] table; without --config the network is the "
        "default core: 64 inputs, 64 neurons, T = 8)"
    )
    group.add_argument("--layer", type=int, help="weight layer the core computes [default: 0]")
    group.add_argument("--lanes", type=int, help="P, neurons per cycle; divides them [default: 8]")
    group.add_argument(
        "--lr-range", type=int, help="number of runtime lr_shift values allowed [default: 4]"
    )
    group.add_argument(
        "--emit-error",
        action=argparse.BooleanOptionalAction,
        help="compute W^T.delta for a previous layer [default: when layer > 0]",
    )
    group.add_argument("--device", help="ECP5 device whose block RAMs must suffice [default: 85k]")
    group.add_argument(
        "--rate-encoder",
        action=argparse.BooleanOptionalAction,
        help="the core takes input intensities (LOAD_INPUTS) and draws the rate-coded spikes "
        "itself: one byte per input per sample on the link [default: off]",
    )


def _add_array_flags(parser: argparse.ArgumentParser) -> None:
    """``--network`` and ``--cores`` (``generate``, ``build``): a multi-core array."""
    arr = parser.add_argument_group(
        "array (--network; --lanes, --lr-range and --device apply to every core, --layer and "
        "--emit-error do not apply)"
    )
    arr.add_argument(
        "--network",
        type=Path,
        metavar="TOML",
        help="network file (keys at the top level or in [network], network flags override "
        "them) with an optional [array] table (cores, lanes, device, lr_range; flags override "
        "it): the multi-core array instead of one core; excludes --config",
    )
    arr.add_argument(
        "--cores",
        type=int,
        metavar="C",
        help="cores of the array; needs --network [default: cores of the [array] table]",
    )


def cmd_generate(args: argparse.Namespace) -> dict[str, Any]:
    from spikeforge.generation import generate

    built = generate(hardware_from_args(args), out=args.out, checks=args.checks, lint=args.lint)
    summary = built.to_dict()
    if built.lint_warnings:
        raise CliError("verilator --lint-only -Wall: " + "; ".join(built.lint_warnings[:5]))
    if args.json:
        return summary
    lint = "; verilator lint clean" if args.lint else ""
    if built.is_array:
        mapping, man = built.design, built.manifest
        print(mapping.describe())
        print(
            f"wrote {summary['verilog']} and {summary['manifest']} "
            f"(array {man['array_hash']}: {mapping.cores} cores, layers "
            + " ".join(str(group) for group in man["layers"])
            + ")"
            + lint
        )
    else:
        params = built.design
        print(
            f"wrote {summary['verilog']} and {summary['manifest']} "
            f"(core {summary['core_hash']}: {params.n_in} inputs, {params.n_out} neurons, "
            f"{params.lanes} lanes, T = {params.timesteps})" + lint
        )
    return summary


def cmd_synth(args: argparse.Namespace) -> dict[str, Any]:
    from spikeforge.hw.generate import generate
    from spikeforge.hw.synth import check_fits, synthesize

    params = hardware_from_args(args).core_params()
    out = args.out or Path("runs") / f"synth-{params.core_hash}"
    man = generate(params, out, checks=False)
    if not args.json:
        print(f"synthesizing {out / man['verilog']} for ECP5 {params.device} ...", file=sys.stderr)
    report = synthesize(
        out / man["verilog"],
        params.name,
        out,
        device=params.device,
        pnr=args.pnr,
        target_mhz=args.freq,
        pnr_timeout=args.pnr_timeout,
        seed=args.seed,
        router=tuple(args.router),
        no_rw_check=not args.rw_check,
    )
    summary = report.to_dict()
    summary["core_hash"] = params.core_hash
    summary["out"] = str(out)
    summary["overflows"] = check_fits(report)
    (out / "synth.json").write_text(json.dumps(summary, indent=2) + "\n")
    if not args.json:
        fmax = "not run" if report.fmax_mhz is None else f"{report.fmax_mhz:.1f} MHz"
        print(
            f"ECP5 {report.device}: {report.luts} LUT4, {report.ffs} FF, {report.brams} BRAM, "
            f"{report.dsps} DSP; Fmax {fmax} (place and route: {report.pnr_status}"
            + (f", {report.router}" if args.pnr else "")
            + "".join(f"; {r} ran past {args.pnr_timeout:g} s" for r in report.pnr_timeouts)
            + ")"
        )
    return summary


def _regress_configs(args: argparse.Namespace) -> list[tuple[str, Any]]:
    """``(name, CoreParams)`` of the configs to run: ``--config`` files, else the matrix."""
    from spikeforge.sim import matrix

    todo = []
    for path in args.config or []:
        params = load_config(path).core_params()
        name, n = Path(path).stem, 2
        while any(name == other for other, _ in todo):
            name, n = f"{Path(path).stem}-{n}", n + 1
        todo.append((name, params))
    if args.only:
        names = matrix.check_names(args.only)
    elif args.config:
        names = []
    else:
        names = list(matrix.CI if args.matrix == "ci" else matrix.FULL)
    return todo + [(name, matrix.core_params(name)) for name in names]


def _table(rows: list[dict[str, Any]]) -> str:
    """A plain fixed-width text table of ``rows`` (same keys in every row)."""
    if not rows:
        return "(nothing ran)"
    keys = list(rows[0])
    cells = [[str(r[k]) for k in keys] for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    line = "  ".join(k.ljust(w) for k, w in zip(keys, widths, strict=True))
    body = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join([line, "-" * len(line), *body])


def _regress_cluster(args: argparse.Namespace) -> bool:
    """Whether ``--workers``/``--scheduler`` ask for a Dask cluster (their values checked)."""
    if args.workers is not None and args.workers < 1:
        raise CliError(f"--workers must be >= 1, not {args.workers}")
    if args.scheduler is not None:
        from spikeforge.cluster import check_scheduler

        try:
            check_scheduler(args.scheduler)
        except ValueError as exc:
            raise CliError(str(exc)) from None
    cluster = args.workers is not None or args.scheduler is not None
    if args.task_timeout is not None:
        if not cluster:
            raise CliError("--task-timeout applies with --workers or --scheduler only")
        if not args.task_timeout > 0:
            raise CliError(f"--task-timeout must be > 0 seconds, not {args.task_timeout}")
    return cluster


def cmd_regress(args: argparse.Namespace) -> dict[str, Any]:
    import time

    from spikeforge.sim.regress import PROTOCOL_CHECKS, run_config, run_digits, summary

    cluster = _regress_cluster(args)
    if args.seeds < 1:
        raise CliError(f"--seeds must be >= 1, not {args.seeds}")
    if args.steps < 1:
        raise CliError(f"--steps must be >= 1, not {args.steps}")
    if not 0.0 <= args.stall < 1.0:
        raise CliError(f"--stall must lie in [0, 1), not {args.stall}")
    todo = _regress_configs(args)
    digits = args.digits if args.digits is not None else (0 if (args.config or args.only) else 50)
    if digits < 0:
        raise CliError(f"--digits must be >= 0 samples, not {digits}")
    if args.digits_test is not None and args.digits_test < 1:
        raise CliError(f"--digits-test must be >= 1 sample, not {args.digits_test}")
    seeds = list(range(args.seeds))
    fast = args.transactors == "fast"
    checks = len(PROTOCOL_CHECKS) + (1 if fast else 0)  # fast: the cocotbext-axi comparison
    total = len(todo) * (len(seeds) + checks) + (1 if digits else 0)
    if args.no_progress or args.json:
        from spikeforge.sw.train import no_progress

        bar = no_progress(total, "regress")
    else:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="regress", unit="run", file=sys.stderr)

    def tick(desc: str) -> None:
        bar.update(1)

    t0 = time.perf_counter()
    digits_args = {
        "samples": digits,
        "test_samples": args.digits_test,
        "stall": min(args.stall, 0.2),
    }
    if cluster:
        from spikeforge.cluster import dask_client
        from spikeforge.sim.regress_cluster import TASK_TIMEOUT, run_on_cluster

        if args.scheduler:
            connect = dask_client(scheduler=args.scheduler)
        else:
            connect = dask_client(args.workers)
        with connect as client:
            results = run_on_cluster(
                client,
                todo,
                args.out,
                seeds=seeds,
                steps=args.steps,
                stall=args.stall,
                digits=digits_args if digits else None,
                tick=tick,
                task_timeout=TASK_TIMEOUT if args.task_timeout is None else args.task_timeout,
                fast=fast,
            )
    else:
        results = []
        for name, params in todo:
            results.append(
                run_config(
                    name,
                    params,
                    args.out / name,
                    seeds=seeds,
                    steps=args.steps,
                    stall=args.stall,
                    tick=tick,
                    fast=fast,
                )
            )
        if digits:
            results.append(run_digits(args.out / "digits", **digits_args, tick=tick))
    bar.close()
    failed = [r for r in results if not r.passed]
    print(_table(summary(results)))
    for r in failed:
        print("\n" + r.report())
    out = {
        "passed": not failed,
        "configs": [r.to_dict() for r in results],
        "tests": sum(len(r.runs) for r in results),
        "failed": sum(len(r.failures) for r in results),
        "cycles": sum(r.cycles for r in results),
        "seconds": round(time.perf_counter() - t0, 1),
        "out": str(args.out),
    }
    if not args.json:
        verdict = "all bit-exact" if not failed else f"{out['failed']} failed"
        print(f"\n{out['tests']} runs in {out['seconds']} s: {verdict} (folders: {args.out})")
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spikeforge",
        description="Train spiking neural networks exactly as the FPGA would, and build the FPGA.",
    )
    parser.add_argument("--version", action="version", version=f"spikeforge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser(
        "train",
        help="train the network on a dataset (float reference or bit-exact integer mode)",
        description=(
            "Train on a dataset. --mode int runs the integer golden model exactly as the chip "
            "trains (batch size from the config, hardware: 1); --mode float trains the float "
            "surrogate-gradient reference. A checkpoint is written after every epoch; --resume "
            "continues from it."
        ),
    )
    train.add_argument(
        "--mode", choices=TRAINING_CHOICES["mode"], default="int", help="[default: int]"
    )
    train.add_argument("--epochs", type=int, default=20, help="[default: 20]")
    train.add_argument(
        "--dataset",
        default=DEFAULT_DATASET,
        metavar="NAME[:PATH]",
        help="dataset source, and the file or folder it reads for your own data: "
        + "; ".join(f"{s.name}: {s.summary}" for s in SOURCES.values())
        + f" [default: {DEFAULT_DATASET}]",
    )
    train.add_argument(
        "--validation",
        action="store_true",
        help="train on the training split minus a stratified fifth and report accuracy on that "
        "fifth instead of the test split: choose settings with it, report the test split once",
    )
    train.add_argument("--out", type=Path, help="run folder [default: runs/train-MODE-HASH]")
    train.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    train.add_argument(
        "--init",
        type=Path,
        metavar="CHECKPOINT",
        help="int mode: start from this checkpoint's weights (e.g. `spikeforge import`'s .pt; "
        "made for the same config) [default: random, init_seed]",
    )
    train.add_argument(
        "--lr-schedule",
        choices=TRAINING_CHOICES["schedule"],
        help="step: halve the learning rate at 1/2 and 3/4 of the epochs (int mode: lr_shift+1) "
        "[default: " + ", ".join(f"{s} in {m} mode" for m, s in DEFAULT_SCHEDULE.items()) + "]",
    )
    train.add_argument("--lr", type=float, default=2e-3, help="float mode: Adam learning rate")
    train.add_argument("--float-batch", type=int, default=16, help="float mode: batch size")
    train.add_argument(
        "--loss", choices=TRAINING_CHOICES["loss"], default="mse", help="float mode: loss"
    )
    train.add_argument("--json", action="store_true", help="print a JSON summary as last line")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_config_flags(train)
    add_target_flags(train)
    train.set_defaults(func=cmd_train)

    gen = sub.add_parser(
        "generate",
        help="write the Verilog and JSON manifest of one core or, with --network, an array",
        description=(
            "Generate the spiking training core (FP, BP, WG and update engines, AXI4-Stream host "
            "port) as Verilog, with a manifest of its parameters, ports, opcodes, memories and "
            "config hash. The config TOML holds the network keys and an optional [core] table. "
            "With --network NET.toml --cores C: map the network on C linked cores (the mapping "
            "table is printed) and write the multi-core array behind one host port, its "
            "manifest and mapping.json."
        ),
    )
    gen.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    gen.add_argument(
        "--lint", action="store_true", help="also run verilator --lint-only -Wall (with waivers)"
    )
    gen.add_argument(
        "--no-checks",
        dest="checks",
        action="store_false",
        help="leave out the read-during-write assertions and the rw_checked output that every "
        "simulation build carries (for synthesis in another tool; spikeforge synth and build "
        "always leave them out)",
    )
    gen.add_argument("--json", action="store_true", help="print a JSON summary as last line")
    _add_array_flags(gen)
    _add_core_flags(gen)
    _add_config_flags(gen)
    gen.set_defaults(func=cmd_generate)

    syn = sub.add_parser(
        "synth",
        help="synthesize the core for an FPGA (Yosys) and optionally place and route (nextpnr)",
        description=(
            "Generate the core, synthesize it with Yosys synth_ecp5 and, with --pnr, place and "
            "route it with nextpnr-ecp5; report LUTs, FFs, block RAMs, DSPs and Fmax."
        ),
    )
    syn.add_argument("--target", choices=("ecp5",), default="ecp5", help="[default: ecp5]")
    syn.add_argument("--pnr", action="store_true", help="also place and route for Fmax")
    syn.add_argument("--freq", type=float, default=100.0, help="P&R target MHz [default: 100]")
    syn.add_argument(
        "--pnr-timeout", type=float, default=1800, help="seconds before P&R gives up [1800]"
    )
    syn.add_argument("--seed", type=int, default=1, help="nextpnr placer seed [default: 1]")
    syn.add_argument(
        "--router",
        choices=ROUTERS,
        nargs="+",
        default=["router1"],
        help="nextpnr router: router1 (its ECP5 default) or router2 (faster on congested "
        "designs); several are tried in order on the one netlist, the next when one runs past "
        "--pnr-timeout [default: router1]",
    )
    syn.add_argument(
        "--rw-check",
        action="store_true",
        help="keep Yosys's read-during-write bypass logic (the core never reads an address in "
        "the cycle it writes it, so by default synth_ecp5 runs with -no-rw-check)",
    )
    syn.add_argument("-o", "--out", type=Path, help="work folder [default: runs/synth-HASH]")
    syn.add_argument("--json", action="store_true", help="print a JSON summary as last line")
    _add_core_flags(syn)
    _add_config_flags(syn)
    syn.set_defaults(func=cmd_synth)

    reg = sub.add_parser(
        "regress",
        help="run the generated Verilog under Verilator + cocotb against the golden model",
        description=(
            "Build each config with Verilator (reused while its hash and Verilog are unchanged) "
            "and train it on the RTL with random idle and backpressure cycles -- through fast "
            "transactors inside the simulated design, and the first seed again through "
            "cocotbext-axi with identical answers (--transactors axi: cocotbext-axi alone): "
            "every membrane, spike, delta, propagated error, gradient, weight and LFSR "
            "state must equal the golden model's, for every seed. Without --config: the matrix "
            "(--matrix ci or full) and the digits network on two cores (50 samples with every "
            "weight compared after each, then the test split's predictions). A failure prints "
            "the first mismatch and the path of an FST waveform. Exit status 1 on any failure. "
            "With --workers N or --scheduler ADDRESS the builds and runs are Dask tasks (each "
            "config's build, then its seeds and protocol checks in parallel; the digits run "
            "one task); the table and JSON are the sequential run's. A run whose worker died "
            "(KilledWorker, after the scheduler's retries) or still unfinished when no task has "
            "finished for --task-timeout seconds is reported failed; the rest goes on."
        ),
    )
    reg.add_argument(
        "--config",
        type=Path,
        action="extend",
        nargs="+",
        metavar="FILE",
        help="config TOML(s) (network keys + optional [core] table) instead of the matrix",
    )
    reg.add_argument(
        "--matrix", choices=("ci", "full"), default="ci", help="matrix subset [default: ci]"
    )
    reg.add_argument(
        "--only", action="append", metavar="NAME", help="run only this matrix config (repeatable)"
    )
    reg.add_argument("--seeds", type=int, default=3, help="seeds per config [default: 3]")
    reg.add_argument("--steps", type=int, default=2, help="training steps per seed [default: 2]")
    reg.add_argument(
        "--transactors",
        choices=("fast", "axi"),
        default="fast",
        help=(
            "fast: the host stream played by a wrapper inside the simulated design, and the "
            "first seed again through cocotbext-axi with identical answers; axi: cocotbext-axi "
            "alone [default: fast]"
        ),
    )
    reg.add_argument(
        "--stall", type=float, default=0.3, help="idle/backpressure probability [default: 0.3]"
    )
    reg.add_argument(
        "--digits",
        type=int,
        metavar="N",
        help="digits-network training samples, 0 to skip [default: 50 with the matrix, else 0]",
    )
    reg.add_argument(
        "--digits-test",
        type=int,
        metavar="N",
        help="test-split samples predicted after training [default: all 360]",
    )
    reg.add_argument(
        "--out", type=Path, default=Path("build/regress"), help="build folders [build/regress]"
    )
    where = reg.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="run on a local Dask cluster of N single-thread worker processes [default: one "
        "run after another, no cluster]",
    )
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on the workers of this running Dask scheduler, tcp://HOST:PORT (they must "
        "import this spikeforge and see --out at the same path)",
    )
    reg.add_argument(
        "--task-timeout",
        type=float,
        metavar="SECONDS",
        help="with --workers/--scheduler: when no build or run has finished for SECONDS, "
        "cancel the unfinished ones and report them failed [default: 3600]",
    )
    reg.add_argument("--json", action="store_true", help="print a JSON summary as last line")
    reg.add_argument("--no-progress", action="store_true", help="no progress bar")
    reg.set_defaults(func=cmd_regress)
    add_sweep_parser(sub)
    add_federate_parser(sub, _add_config_flags, config_from_args)
    add_fuzz_parser(sub)
    add_nir_parsers(sub)
    add_board_parsers(sub, _add_core_flags, _add_config_flags, _add_array_flags, hardware_from_args)
    return parser


def user_errors() -> tuple[type[Exception], ...]:
    """The errors that are the user's (bad arguments, configs, files, datasets) or their
    board's (a port that does not open, a core that does not answer): printed as one line with
    exit status 2. Anything else is a bug and propagates with its traceback.

    :class:`~spikeforge.sw.config.ConfigError` covers the config's, the mapping's, the
    sweep's, NIR's and the dataset's errors (their classes derive from it);
    :class:`~spikeforge.sim.session.CoreError` names the core and the command that failed.
    Imported here, when an error is being handled: the session module brings torch."""
    from spikeforge.sim.session import CoreError
    from spikeforge.sw.checkpoint import CheckpointError

    return (CliError, ConfigError, CheckpointError, BoardCliError, FuzzArgumentError, CoreError)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        summary = args.func(args)
    except user_errors() as exc:
        parser.exit(2, f"spikeforge {args.command}: error: {exc}\n")
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    return 0 if summary.get("passed", True) else 1


if __name__ == "__main__":
    sys.exit(main())
