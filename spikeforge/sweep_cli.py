"""``spikeforge sweep``: the co-design search from the command line (codesign/search.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_sweep_parser", "cmd_sweep", "pareto_table"]


def _progress(enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    def make(total: int, initial: int, desc: str):
        return tqdm(total=total, initial=initial, desc=desc, unit="point", file=sys.stderr)

    return make


def pareto_table(summary: dict[str, Any], records: list[dict[str, Any]]) -> str:
    """The Pareto points as a text table, best validation accuracy (the objective) first, then
    fewest LUTs; the test accuracy beside it is reported, not tuned on."""
    from spikeforge.codesign.report import ACCURACY_LABELS, fmax_text

    by_id = {r["id"]: r for r in records}
    head = (
        f"{'point':12}  {'cores':>5} {'lanes':>5} {'w':>3} {'T':>3} {'rule':5}  {'val acc':>7} "
        f"{'test acc':>8} {'LUT4':>7} {'cyc/train':>9} {'nJ/sample*':>10} {'Fmax':>12}"
    )
    lines = [head, "-" * len(head)]
    chosen = sorted(
        (by_id[pid] for pid in summary["pareto"]),
        key=lambda r: (-r["accuracy"], r.get("luts") or 0, r["train_cycles"]),
    )
    for r in chosen:
        p = r["params"]
        luts = "-" if r.get("luts") is None else f"{r['luts']:,}"
        lines.append(
            f"{r['id']:12}  {p['cores']:>5} {p['lanes']:>5} {p['w_bits']:>3} "
            f"{p['timesteps']:>3} {p['bptt']:5}  {_pct(r['accuracy']):>7} "
            f"{_pct(r.get('test_accuracy')):>8} {luts:>7} "
            f"{r['train_cycles']:>9,} {r['energy_nj']:>10.1f} {fmax_text(r) or '-':>12}"
        )
    lines.append(
        f"val acc: {ACCURACY_LABELS['accuracy']}; test acc: {ACCURACY_LABELS['test_accuracy']}; "
        "* energy per training sample: an estimate (docs/energy.md), not a measurement"
    )
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def cmd_sweep(args: argparse.Namespace) -> dict[str, Any]:
    from spikeforge.codesign.search import load_records, run_sweep
    from spikeforge.codesign.space import load_space

    space = load_space(args.space)
    folder = f"sweep-{space.name}"
    if args.dataset is not None and args.dataset != space.dataset:
        space = space.with_dataset(args.dataset)
        folder += f"-{args.dataset.partition(':')[0]}"
    out = args.out or Path("runs") / folder
    summary = run_sweep(
        space,
        out,
        trials=args.trials,
        workers=args.workers,
        scheduler=args.scheduler,
        storage=args.storage,
        progress=_progress(not args.no_progress),
        max_replicas=args.max_replicas,
    )
    if not args.json:
        print(pareto_table(summary, load_records(Path(summary["out"]))))
        print(
            f"\n{summary['points']} points ({summary['done']} done, {summary['failed']} failed; "
            f"{summary['computed']} computed now, {summary['reused']} reused) in "
            f"{summary['seconds']:.0f} s; Pareto set: {len(summary['pareto'])} points\n"
            f"report: {summary['report']}"
        )
    return summary


def add_sweep_parser(sub) -> None:
    from spikeforge.codesign.space import MAX_REPLICAS

    sweep = sub.add_parser(
        "sweep",
        help="co-design search: core counts, lanes and bit widths against accuracy, LUTs, "
        "cycles and energy, with a Pareto report",
        description=(
            "Evaluate the design points of a space: accuracy from bit-exact integer on-chip "
            "training (batch 1) on the training split less a stratified fifth, scored on that "
            "fifth (the validation split: the objective; the test split's accuracy is reported "
            "beside it, never tuned on), cycles per sample from the cycle model, LUT/FF/BRAM/DSP "
            "from Yosys synth_ecp5, energy and DRAM traffic estimates; then Fmax from "
            "nextpnr-ecp5 for the Pareto points. Optuna proposes the points (grid or NSGA-II), "
            "Dask evaluates them in parallel. The run folder keeps the study (SQLite), every "
            "point's record and the caches: run the same command again to resume a stopped "
            "sweep without recomputing a finished point. Writes results.csv/json, Pareto plots "
            "(PNG) and report.html into the run folder."
        ),
    )
    sweep.add_argument(
        "--space",
        default="small",
        metavar="small|full|FILE",
        help="built-in space (small: 24 points, 1-4 cores, w_bits 4/8/16, BPTT/SLTT; full: "
        "every dimension, NSGA-II) or a space TOML file (docs/codesign.md) [default: small]",
    )
    sweep.add_argument(
        "--dataset",
        metavar="NAME[:PATH]",
        help="train and score the points on this dataset instead of the space's "
        "training.dataset (as `spikeforge train --dataset`; the space's layers must fit it) "
        "[default: the space's, else digits]",
    )
    sweep.add_argument(
        "--trials", type=int, metavar="N", help="points to evaluate [default: the space's]"
    )
    sweep.add_argument(
        "--workers",
        type=int,
        default=2,
        metavar="N",
        help="worker processes of the local Dask cluster [default: 2]",
    )
    sweep.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="use this running Dask scheduler (e.g. tcp://host:8786) instead of a local cluster",
    )
    sweep.add_argument(
        "--max-replicas",
        type=int,
        metavar="N",
        help="train at most N same-shape configs of points asked together as replicas of one "
        "batched program (1: each alone; the results are the same) [default: the space's "
        f"training.max_replicas, else {MAX_REPLICAS}]",
    )
    sweep.add_argument(
        "--storage",
        metavar="URL",
        help="Optuna storage URL [default: sqlite:///OUT/study.db]",
    )
    sweep.add_argument(
        "--out", type=Path, help="run folder [default: runs/sweep-SPACE]; resumes if it exists"
    )
    sweep.add_argument("--json", action="store_true", help="print a JSON summary as last line")
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar")
    sweep.set_defaults(func=cmd_sweep)
