"""Accuracy of on-chip (integer, batch 1) training against the weight width, and which update
rounding wins: LFSR stochastic rounding or fractional master-weight bits.

    .venv/bin/python bench/wbits_table.py [--out runs/wbits] [--epochs 20] [--seeds 3]

Rows: ``w_bits`` in 4, 6, 8, 12, 16, each trained with
``stochastic`` (LFSR rounding, F = 0), ``nearest`` (F = 0, the baseline whose small updates
vanish), ``frac`` (nearest rounding on master weights with F = min(4, lr_shift) fractional bits)
and ``stochastic+frac`` (both), plus the float reference; each with ``init_seed`` 1..``--seeds``
(initial weights and sample order). Every other setting is the default config (bit widths other
than ``w_bits`` derived as docs/arithmetic.md says). Every run trains on the digits training
split less a stratified fifth (``Dataset.holdout``) and is scored on that fifth, the validation
split: the table and the choice of ``w_bits`` and rounding are made on it. The test split's
accuracy of the same models is stored and printed beside the choice, never chosen by. Each
finished run is stored in
``OUT/results.json`` at once; a re-run skips what is there (resume after a kill).
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


def _run(key: str, epochs: int, out: Path) -> tuple[str, dict]:
    """Train one run ``w/variant/seed`` or ``float/seed`` in a worker process (one torch thread:
    the workers share the cores) on the validation view; its validation accuracy and the test
    accuracy of the same model (from its checkpoint in ``out``)."""
    import torch

    torch.set_num_threads(1)
    from spikeforge.sw.checkpoint import load_checkpoint
    from spikeforge.sw.config import SnnConfig
    from spikeforge.sw.data import load_dataset
    from spikeforge.sw.encoders import quantize
    from spikeforge.sw.float_ref import FloatSNN
    from spikeforge.sw.golden import GoldenModel
    from spikeforge.sw.train import float_accuracy, int_accuracy, train_float, train_int

    full = load_dataset("digits")
    ds = full.holdout()
    ckpt = out / "checkpoints" / f"{key.replace('/', '-')}.pt"
    *what, seed = key.split("/")
    if what == ["float"]:
        cfg = SnnConfig(init_seed=int(seed))
        res = train_float(cfg, ds, epochs, checkpoint=ckpt)
        model = FloatSNN(cfg)
        model.load_state_dict(load_checkpoint(ckpt, cfg, "float")[1]["state"]["model"])
        accuracy = float_accuracy
    else:
        cfg = _config(int(what[0]), what[1]).replace(init_seed=int(seed))
        res = train_int(cfg, ds, epochs, checkpoint=ckpt)
        model = GoldenModel.from_state(cfg, load_checkpoint(ckpt, cfg, "int")[1]["state"])
        accuracy = int_accuracy
    x_test = quantize(full.x_test, full.x_max, cfg.in_bits)
    return key, {
        "val_accuracy": res.test_accuracy,
        "test_accuracy": accuracy(model, x_test, full.y_test),
        "train_accuracy": res.train_accuracy,
        "train_seconds": res.train_seconds,
        "config": res.config,
    }


def _accs(results: dict, prefix: str, seeds: int, split: str = "val") -> list[float]:
    """Per seed, the ``split`` accuracy (``val``: the one chosen by; ``test``: reported) in %."""
    return [100 * results[f"{prefix}/{s}"][f"{split}_accuracy"] for s in range(1, seeds + 1)]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _cell(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}%"
    return f"{_mean(values):.2f}% ({min(values):.1f}-{max(values):.1f})"


def _table(results: dict, w_bits: list[int], variants: list[str], seeds: int) -> str:
    flt = _accs(results, "float", seeds)
    flt_test = _cell(_accs(results, "float", seeds, "test"))
    head = (
        "Validation accuracy on digits (trained on the training split less a stratified fifth, "
        f"scored on that fifth), mean over init_seed 1..{seeds} (min-max in brackets). The "
        "choice below is made on it; the test split is only reported."
    )
    lines = [
        head,
        "",
        f"Float reference: {_cell(flt)} (test split: {flt_test}).",
        "",
        "| w_bits | theta | " + " | ".join(variants) + " |",
        "| ---: | ---: |" + " ---: |" * len(variants),
    ]
    for w in w_bits:
        row = [_cell(_accs(results, f"{w}/{v}", seeds)) for v in variants]
        theta = results[f"{w}/{variants[0]}/1"]["config"]["theta"]
        lines.append(f"| {w} | {theta} | " + " | ".join(row) + " |")
    within = [
        (w, v)
        for w in w_bits
        for v in variants
        if _mean(_accs(results, f"{w}/{v}", seeds)) >= _mean(flt) - 1.0
    ]
    lines.append("")
    if within:
        w_min = min(w for w, _ in within)
        modes = ", ".join(v for w, v in within if w == w_min)
        tests = ", ".join(
            f"{v} {_cell(_accs(results, f'{w_min}/{v}', seeds, 'test'))}"
            for w, v in within
            if w == w_min
        )
        lines.append(
            f"Smallest w_bits whose mean validation accuracy is within one point of float: "
            f"{w_min} ({modes}); its test accuracy (reported, not chosen by): {tests}."
        )
    else:
        lines.append("No integer variant's mean validation accuracy is within one point of float.")
    return "\n".join(lines) + "\n"


def _plot(results: dict, w_bits: list[int], variants: list[str], seeds: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for v in variants:
        runs = [_accs(results, f"{w}/{v}", seeds) for w in w_bits]
        means = [_mean(r) for r in runs]
        lows = [m - min(r) for m, r in zip(means, runs, strict=True)]
        highs = [max(r) - m for m, r in zip(means, runs, strict=True)]
        err = [lows, highs]
        ax.errorbar(w_bits, means, yerr=err, fmt="o-", capsize=3, label=v)
    ax.axhline(_mean(_accs(results, "float", seeds)), color="k", ls="--", label="float (mean)")
    ax.set_xlabel("w_bits")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title(f"digits, integer on-chip training (batch 1), {seeds} seeds")
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
    ap.add_argument("--seeds", type=int, default=3, help="init_seed 1..N per row [default: 3]")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    store = args.out / "results.json"
    results = json.loads(store.read_text()) if store.exists() else {}
    results = {k: v for k, v in results.items() if "val_accuracy" in v}  # older: test-split only
    seeds = range(1, args.seeds + 1)
    keys = [f"float/{s}" for s in seeds]
    keys += [f"{w}/{v}/{s}" for s in seeds for w in args.w_bits for v in args.variants]
    todo = [k for k in keys if k not in results]
    print(f"{len(keys) - len(todo)} of {len(keys)} runs already done; running {len(todo)}")
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        futures = [pool.submit(_run, k, args.epochs, args.out) for k in todo]
        for fut in as_completed(futures):
            key, row = fut.result()
            results[key] = row
            store.write_text(json.dumps(results, indent=1, sort_keys=True))
            print(
                f"{key:16s} validation {100 * row['val_accuracy']:6.2f}%  test "
                f"{100 * row['test_accuracy']:6.2f}%  ({row['train_seconds']:.0f} s)"
            )
    table = _table(results, args.w_bits, args.variants, args.seeds)
    (args.out / "table.md").write_text(table)
    _plot(results, args.w_bits, args.variants, args.seeds, args.out / "accuracy_vs_wbits.png")
    print(table)
    print(f"wrote {args.out / 'table.md'} and {args.out / 'accuracy_vs_wbits.png'}")


if __name__ == "__main__":
    main()
