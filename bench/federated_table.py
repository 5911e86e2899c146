"""Federated averaging on digits against centralized integer training with as many sample visits.

For each seed (the network's ``init_seed`` and the partition's seed), ``--workers`` workers
train ``--rounds`` rounds of ``--local-epochs`` local epochs on the golden model over a local
Dask cluster (:func:`spikeforge.federation.federate`), once per partition (IID and
Dirichlet(0.5)); the centralized integer trainer trains ``rounds x local_epochs`` epochs of the
whole training split -- every sample is visited as often. Same network, learning-rate schedule
(step, over rounds vs over epochs) and encoder keys. Nothing here is tuned: the settings are the
defaults, and the test split is reported.

Prints the final test accuracy per setting (mean and half range over seeds), the accuracy per
round, and the traffic per round; writes ``--png`` with the mean curves.

Run: ``.venv/bin/python bench/federated_table.py [--seeds 3] [--rounds 20] [--workers 5]
[--json]`` (``make federated-table``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from tempfile import TemporaryDirectory

from spikeforge.federation import federate, plot_rounds
from spikeforge.sw.config import SnnConfig
from spikeforge.sw.data import load_dataset
from spikeforge.sw.train import train_int

PARTITIONS = ("iid", "dirichlet:0.5")


def spread(values: list[float]) -> str:
    mean = statistics.fmean(values)
    half = (max(values) - min(values)) / 2
    return f"{100 * mean:.1f} ± {100 * half:.1f}%"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=3, help="seeds 1..N [3]")
    ap.add_argument("--rounds", type=int, default=20, help="rounds R [20]")
    ap.add_argument("--local-epochs", type=int, default=1, help="local epochs E [1]")
    ap.add_argument("--workers", type=int, default=5, help="federated workers [5]")
    ap.add_argument("--dask-workers", type=int, default=2, help="local Dask processes [2]")
    ap.add_argument("--png", type=Path, help="accuracy-per-round plot [none]")
    ap.add_argument("--json", action="store_true", help="print JSON as the last line")
    args = ap.parse_args()
    for name in ("seeds", "rounds", "local_epochs", "workers", "dask_workers"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1, not {getattr(args, name)}")
    ds = load_dataset("digits")
    curves: dict[str, list[list[float]]] = {p: [] for p in (*PARTITIONS, "centralized")}
    traffic = None
    t0 = time.perf_counter()
    with TemporaryDirectory() as tmp:
        for seed in range(1, args.seeds + 1):
            cfg = SnnConfig(init_seed=seed)
            for spec in PARTITIONS:
                res = federate(
                    cfg,
                    dataset="digits",
                    workers=args.workers,
                    rounds=args.rounds,
                    local_epochs=args.local_epochs,
                    partition_spec=spec,
                    seed=seed,
                    dask_workers=args.dask_workers,
                    out=Path(tmp) / f"{spec}-{seed}",
                )
                curves[spec].append([r["test_accuracy"] for r in res.rounds])
                traffic = res.traffic
                print(f"seed {seed} {spec}: {100 * res.test_accuracy:.1f}%", flush=True)
            cen = train_int(cfg, ds, args.rounds * args.local_epochs)
            per_round = [h["test_accuracy"] for h in cen.history][
                args.local_epochs - 1 :: args.local_epochs
            ]
            curves["centralized"].append(per_round)
            print(f"seed {seed} centralized: {100 * cen.test_accuracy:.1f}%", flush=True)
    wall = time.perf_counter() - t0
    print(
        f"\n{args.workers} workers, {args.rounds} rounds x {args.local_epochs} local epochs; "
        f"centralized: {args.rounds * args.local_epochs} epochs; seeds 1-{args.seeds}; "
        f"{wall:.0f} s\n"
    )
    print(f"{'setting':16} {'final test accuracy (mean ± half range)':>40}")
    finals = {}
    for name, runs in curves.items():
        finals[name] = [c[-1] for c in runs]
        print(f"{name:16} {spread(finals[name]):>40}")
    gap = {
        p: statistics.fmean(finals["centralized"]) - statistics.fmean(finals[p]) for p in PARTITIONS
    }
    for p in PARTITIONS:
        print(f"gap to centralized, {p}: {100 * gap[p]:.1f} points")
    print("\nround " + " ".join(f"{name:>14}" for name in curves))
    means = {
        n: [statistics.fmean(c[r] for c in runs) for r in range(args.rounds)]
        for n, runs in curves.items()
    }
    for r in range(args.rounds):
        print(f"{r + 1:5d} " + " ".join(f"{100 * means[n][r]:13.1f}%" for n in curves))
    print(
        f"\ntraffic per round: {2 * args.workers * traffic['model_bytes_int']:,} bytes of integer "
        f"weights ({args.workers} x {traffic['model_bytes_int']:,} each way; float32: "
        f"{2 * args.workers * traffic['model_bytes_float32']:,}); a worker's round trip is "
        f"{100 * traffic['round_trip_vs_local_data']:.0f}% of the data it keeps "
        f"({statistics.fmean(traffic['local_data_bytes']):,.0f} bytes)"
    )
    if args.png:
        rows = [{"round": r + 1, "test_accuracy": a} for r, a in enumerate(means["iid"])]
        plot_rounds(
            rows,
            args.png,
            title=f"digits, {args.workers} workers, mean of {args.seeds} seeds",
            label="federated, iid",
            reference={
                "federated, dirichlet:0.5": means["dirichlet:0.5"],
                "centralized (same sample visits)": means["centralized"],
            },
        )
    if args.json:
        print(json.dumps({"curves": curves, "gap": gap, "traffic": traffic, "seconds": wall}))


if __name__ == "__main__":
    main()
