"""Accuracy of on-chip (integer, batch 1) training against the weight width, and which update
rounding wins: LFSR stochastic rounding or fractional master-weight bits.

    .venv/bin/python bench/wbits_table.py [--out runs/wbits] [--epochs 20] [--workers 2]

Rows: ``w_bits`` in 4, 6, 8, 12, 16, each trained with
``stochastic`` (LFSR rounding, F = 0), ``nearest`` (F = 0, the baseline whose small updates
vanish), ``frac`` (nearest rounding on master weights with F = min(4, lr_shift) fractional bits)
and ``stochastic+frac`` (both), plus the float reference. Every other setting is the default
config (bit widths other than ``w_bits`` derived as docs/arithmetic.md says). Each finished run
is stored in ``OUT/results.json`` at once; a re-run skips what is there (resume after a kill).
Writes ``OUT/table.md`` and ``OUT/accuracy_vs_wbits.png``.
"""

from __future__ import annotations

import argparse
import json
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

W_BITS = (4, 6, 8, 12, 16)
VARIANTS = ("stochastic", "nearest", "frac", "stochastic+frac")
FRAC = 4


def _config(w_bits: int, variant: str):
    from spikeforge.sw.config import SnnConfig

    base = SnnConfig(w_bits=w_bits, frac_bits=0)
    frac = min(FRAC, base.lr_shift)
    return {
        "stochastic": base.replace(rounding="stochastic"),
        "nearest": base.replace(rounding="nearest"),
        "frac": base.replace(rounding="nearest", frac_bits=frac, lr_shift=base.lr_shift),
        "stochastic+frac": base.replace(
            rounding="stochastic", frac_bits=frac, lr_shift=base.lr_shift
        ),
    }[variant]


def _run(key: str, epochs: int) -> tuple[str, dict]:
    """Train one row in a worker process (one torch thread: the workers share the cores)."""
    import torch

    torch.set_num_threads(1)
    from spikeforge.sw.config import SnnConfig
    from spikeforge.sw.data import load_dataset
    from spikeforge.sw.train import train_float, train_int

    ds = load_dataset("digits")
    if key == "float":
        res = train_float(SnnConfig(), ds, epochs)
    else:
        w, variant = key.split("/")
        res = train_int(_config(int(w), variant), ds, epochs)
    return key, {
        "test_accuracy": res.test_accuracy,
        "train_accuracy": res.train_accuracy,
        "train_seconds": res.train_seconds,
        "config": res.config,
    }


def _table(results: dict, w_bits: list[int], variants: list[str]) -> str:
    flt = results["float"]["test_accuracy"]
    lines = [
        f"Float reference: {100 * flt:.2f}% test accuracy.",
        "",
        "| w_bits | theta | " + " | ".join(variants) + " |",
        "| ---: | ---: |" + " ---: |" * len(variants),
    ]
    for w in w_bits:
        row = [f"{100 * results[f'{w}/{v}']['test_accuracy']:.2f}%" for v in variants]
        theta = results[f"{w}/{variants[0]}"]["config"]["theta"]
        lines.append(f"| {w} | {theta} | " + " | ".join(row) + " |")
    within = [
        (w, v)
        for w in w_bits
        for v in variants
        if results[f"{w}/{v}"]["test_accuracy"] >= flt - 0.01
    ]
    lines.append("")
    if within:
        w_min = min(w for w, _ in within)
        modes = ", ".join(v for w, v in within if w == w_min)
        lines.append(f"Smallest w_bits within one point of float: {w_min} ({modes}).")
    else:
        lines.append("No integer run is within one point of float.")
    return "\n".join(lines) + "\n"


def _plot(results: dict, w_bits: list[int], variants: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for v in variants:
        ax.plot(w_bits, [100 * results[f"{w}/{v}"]["test_accuracy"] for w in w_bits], "o-", label=v)
    ax.axhline(100 * results["float"]["test_accuracy"], color="k", ls="--", label="float")
    ax.set_xlabel("w_bits")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("digits, integer on-chip training (batch 1)")
    ax.set_xticks(w_bits)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/wbits"))
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--w-bits", type=int, nargs="+", default=list(W_BITS), choices=W_BITS)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    store = args.out / "results.json"
    results = json.loads(store.read_text()) if store.exists() else {}
    keys = ["float"] + [f"{w}/{v}" for w in args.w_bits for v in args.variants]
    todo = [k for k in keys if k not in results]
    print(f"{len(keys) - len(todo)} of {len(keys)} runs already done; running {len(todo)}")
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        futures = [pool.submit(_run, k, args.epochs) for k in todo]
        for fut in as_completed(futures):
            key, row = fut.result()
            results[key] = row
            store.write_text(json.dumps(results, indent=1, sort_keys=True))
            print(f"{key:16s} {100 * row['test_accuracy']:6.2f}%  ({row['train_seconds']:.0f} s)")
    table = _table(results, args.w_bits, args.variants)
    (args.out / "table.md").write_text(table)
    _plot(results, args.w_bits, args.variants, args.out / "accuracy_vs_wbits.png")
    print(table)
    print(f"wrote {args.out / 'table.md'} and {args.out / 'accuracy_vs_wbits.png'}")


if __name__ == "__main__":
    main()
