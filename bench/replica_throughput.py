"""Golden-model throughput from replicas: R independent integer networks trained as one batched
program (sw/replicas.py) vs one golden model at batch 1 and snnTorch, measured in one process.

    .venv/bin/python bench/replica_throughput.py [--samples N] [--repeats K]
        [--replicas 1,8,32] [--threads 1] [--json]

Every replica trains at batch 1 (what the chip does) on its own sample stream with its own
seeds. ``samples/s`` counts every replica's samples (the work done); ``per replica`` is how fast
each one of the R networks trains. Each figure is the best of ``--repeats`` timed passes of
``--samples`` steps (warm-up excluded); the ratios are against the golden model and snnTorch
measured in the same run. The network is the default config (64-64-10, T = 16).
"""

from __future__ import annotations

import argparse
import json

import torch
from train_throughput import (
    SnnTorchNet,
    best_rate,
    int_trainer,
    positive_int,
    torch_trainer,
    workload,
)

from spikeforge.sw.config import SnnConfig
from spikeforge.sw.data import load_dataset
from spikeforge.sw.encoders import encode, quantize
from spikeforge.sw.float_ref import FloatSNN
from spikeforge.sw.golden import init_weights
from spikeforge.sw.replicas import ReplicaModel

GOLDEN = "int golden model, batch 1"
SNNTORCH = "snnTorch, batch 1"


def _replica_counts(text: str) -> list[int]:
    counts = [int(v) for v in text.split(",") if v.strip()]
    if not counts or any(c < 1 for c in counts):
        raise argparse.ArgumentTypeError(f"replica counts must be positive ints, not {text!r}")
    return counts


def replica_trainer(cfg: SnnConfig, spikes: torch.Tensor, y: torch.Tensor, replicas: int):
    """``run(n)``: ``replicas`` fresh networks (init and LFSR seeds ``1 + r``, ``2 + r``) each
    take ``n`` batch-1 steps; replica ``r`` sees the samples rotated by ``r * 7``."""
    cfgs = [cfg.replace(init_seed=1 + r, lfsr_seed=2 + r) for r in range(replicas)]
    order = torch.stack([torch.roll(torch.arange(len(y)), 7 * r) for r in range(replicas)], 0)
    xs, ys = spikes[order], y[order]  # [R, N, T, n_in], [R, N]

    def run(n: int) -> None:
        model = ReplicaModel(cfgs)
        for k in range(n):
            model.train_step(xs[:, k : k + 1], ys[:, k : k + 1])

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=positive_int, default=200, help="steps per timed pass")
    ap.add_argument("--repeats", type=positive_int, default=3)
    ap.add_argument("--replicas", type=_replica_counts, default=[1, 8, 32])
    ap.add_argument("--float-batch", type=positive_int, default=16)
    ap.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    cfg = SnnConfig()
    ds = load_dataset("digits")
    x = quantize(ds.x_train[: args.samples], ds.x_max, cfg.in_bits)
    y = ds.y_train[: args.samples]
    spikes = encode(x, torch.arange(len(x)), cfg)
    weights = init_weights(cfg)

    def make_snntorch() -> SnnTorchNet:
        return SnnTorchNet(cfg, FloatSNN(cfg, weights))

    fb = args.float_batch
    fspikes = spikes.to(torch.float32)
    singles = [
        (GOLDEN, int_trainer(cfg, weights, spikes, y, 1)),
        (SNNTORCH, torch_trainer(cfg, make_snntorch, fspikes, y, 1)),
        (f"snnTorch, batch {fb}", torch_trainer(cfg, make_snntorch, fspikes, y, fb)),
    ]
    rates = {name: best_rate(fn, args.samples, args.repeats) for name, fn in singles}
    per_replica = dict(rates)
    for r in args.replicas:
        steps = best_rate(replica_trainer(cfg, spikes, y, r), args.samples, args.repeats)
        name = f"int replicas R={r}, batch 1"
        rates[name], per_replica[name] = r * steps, steps
    result = {
        **workload(cfg, args.samples),
        "samples_per_second": rates,
        "per_replica_samples_per_second": per_replica,
        "over_golden": {name: rate / rates[GOLDEN] for name, rate in rates.items()},
        "over_snntorch": {name: rate / rates[SNNTORCH] for name, rate in rates.items()},
    }
    print(
        f"network {cfg.layers}, T={cfg.timesteps}, {args.samples} steps per pass, "
        f"{torch.get_num_threads()} torch threads"
    )
    print(
        f"{'trainer':32s} {'samples/s':>10s} {'per replica':>12s} "
        f"{'/ golden':>9s} {'/ snnTorch':>11s}"
    )
    for name, rate in rates.items():
        print(
            f"{name:32s} {rate:10.1f} {per_replica[name]:12.1f} "
            f"{result['over_golden'][name]:8.2f}x {result['over_snntorch'][name]:10.2f}x"
        )
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
