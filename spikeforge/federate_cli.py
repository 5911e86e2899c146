"""``spikeforge federate``: federated averaging across workers on Dask (federation.py)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spikeforge.sw.config import PARTITIONS
from spikeforge.sw.sources import DEFAULT_DATASET

__all__ = ["add_federate_parser"]

BACKEND_HELP = {
    "golden": "the integer golden model (bit-exact with the chip)",
    "rtl": "the generated Verilog of a core array under Verilator (batch size 1)",
}


def _progress(enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    def make(total: int, desc: str):
        return tqdm(total=total, desc=desc, unit="round", file=sys.stderr)

    return make


def _cmd(config_from_args: Callable[[argparse.Namespace], Any]):
    def cmd_federate(args: argparse.Namespace) -> dict[str, Any]:
        from spikeforge.federation import federate

        def report(row: dict[str, Any]) -> None:
            if args.json:
                return
            dropped = "".join(f"; worker {k} dropped: {why}" for k, why in row["dropped"].items())
            print(
                f"round {row['round']:3d}  test accuracy {100 * row['test_accuracy']:6.2f}%  "
                f"{len(row['finished'])}/{len(row['participants'])} workers{dropped}",
                flush=True,
            )

        result = federate(
            config_from_args(args),
            dataset=args.dataset,
            workers=args.workers,
            rounds=args.rounds,
            local_epochs=args.local_epochs,
            partition_spec=args.partition,
            participation=args.participation,
            seed=args.seed,
            schedule=args.lr_schedule,
            validation=args.validation,
            backend=args.backend,
            dask_workers=args.dask_workers,
            scheduler=args.scheduler,
            round_timeout=args.round_timeout,
            out=args.out,
            resume=args.resume,
            progress=_progress(not args.no_progress),
            on_round=report,
        )
        summary = result.to_dict()
        if not args.json:
            t = result.traffic
            print(
                f"test accuracy {100 * result.test_accuracy:.2f}% after {len(result.rounds)} "
                f"rounds, {result.seconds:.1f} s\n"
                f"traffic: {t['bytes_sent'] + t['bytes_received']:,} bytes of integer weights "
                f"({t['model_bytes_int']:,} per copy; float32 would be "
                f"{t['bytes_total_float32']:,}); a worker's round trip is "
                f"{100 * t['round_trip_vs_local_data']:.0f}% of the data it keeps\n"
                f"run folder: {result.out} (federate.json, rounds.csv, accuracy.png)"
            )
        return summary

    return cmd_federate


def add_federate_parser(
    sub,
    add_config_flags: Callable[[argparse.ArgumentParser], None],
    config_from_args: Callable[[argparse.Namespace], Any],
) -> None:
    fed = sub.add_parser(
        "federate",
        help="federated averaging: several workers (chips) each train on their own shard, "
        "a host averages their integer weights every round",
        description=(
            "Federated training on Dask. The training split is dealt to --workers workers "
            "(iid, or non-IID with Dirichlet(ALPHA) class shares); every round each "
            "participant trains --local-epochs passes over its shard exactly as one chip trains "
            "(batch size from the config, its own update LFSRs), on the golden model or the "
            "generated Verilog, and the host averages the master weights with the integer "
            "FedAvg rule of docs/arithmetic.md §9 (weighted by sample counts, rounded to "
            "nearest). Data stay with the workers; only weights travel. A worker that fails or "
            "is killed is dropped from its round's average and the round completes. A "
            "checkpoint is written after every round; --resume continues from it. Writes "
            "federate.json, rounds.csv and accuracy.png into the run folder."
        ),
    )
    fed.add_argument("--workers", type=int, default=5, help="federated workers [default: 5]")
    fed.add_argument("--rounds", type=int, default=20, help="rounds [default: 20]")
    fed.add_argument(
        "--local-epochs",
        type=int,
        default=1,
        metavar="E",
        help="passes of each worker over its shard per round [default: 1]",
    )
    fed.add_argument(
        "--partition",
        default="iid",
        metavar="|".join(PARTITIONS),
        help="how samples are dealt: iid, or per class Dirichlet(ALPHA) shares (smaller ALPHA: "
        "more skewed) [default: iid]",
    )
    fed.add_argument(
        "--participation",
        type=float,
        default=1.0,
        metavar="FRACTION",
        help="fraction of the workers drawn for each round [default: 1, all]",
    )
    fed.add_argument(
        "--seed", type=int, default=0, help="seed of the partition and participants [0]"
    )
    fed.add_argument(
        "--dataset",
        default=DEFAULT_DATASET,
        metavar="NAME[:PATH]",
        help=f"dataset spec, as `spikeforge train --dataset` [default: {DEFAULT_DATASET}]",
    )
    fed.add_argument(
        "--validation",
        action="store_true",
        help="train on the training split less a stratified fifth and score on that fifth",
    )
    fed.add_argument(
        "--lr-schedule",
        choices=("step", "constant"),
        help="step: lr_shift + 1 at 1/2 and 3/4 of the rounds [default: step]",
    )
    fed.add_argument(
        "--backend",
        choices=tuple(BACKEND_HELP),
        default="golden",
        help="where a worker trains: "
        + "; ".join(f"{k}: {v}" for k, v in BACKEND_HELP.items())
        + " [default: golden]",
    )
    where = fed.add_mutually_exclusive_group()
    where.add_argument(
        "--dask-workers",
        type=int,
        default=2,
        metavar="N",
        help="processes of the local Dask cluster [default: 2]",
    )
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="use this running Dask scheduler, tcp://HOST:PORT (its workers must import this "
        "spikeforge and read the dataset spec)",
    )
    fed.add_argument(
        "--round-timeout",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="a worker not done within SECONDS is dropped from the round [default: 3600]",
    )
    fed.add_argument("--out", type=Path, help="run folder [default: runs/federate-HASH]")
    fed.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    fed.add_argument("--json", action="store_true", help="print a JSON summary as last line")
    fed.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_config_flags(fed)
    fed.set_defaults(func=_cmd(config_from_args))
