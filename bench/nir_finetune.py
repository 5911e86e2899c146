"""An snnTorch model brought to the chip through NIR: float accuracy, integer accuracy as
imported, and after fine-tuning with the integer trainer (the arithmetic the RTL runs).

    .venv/bin/python bench/nir_finetune.py [--seeds 3] [--float-epochs 20] [--int-epochs 4]
        [--w-bits 8] [--out runs/nir-finetune] [--json]

Per seed (``init_seed``, the float initialisation and both sample orders):

1. **float**: snnTorch's ``Linear``/``Leaky`` digits network (64-64-10, T = 16,
   ``beta = 1 - 2**-3``, threshold 1, reset to zero -- what NIR can hold), trained with Adam
   and ``mse_count_loss`` on the very spikes the chip sees (the integer trainer's rate encoder,
   keys and sample order);
2. **imported**: written by ``snntorch.export_nir``, read by ``spikeforge.import_nir`` at
   ``--w-bits`` and evaluated with the integer golden model;
3. **fine-tuned**: ``--int-epochs`` of the integer trainer at batch 1 from the imported weights;
4. **from scratch**: the integer trainer from random weights for the same epochs (reference).

Prints a table (mean and spread over seeds); writes ``OUT/results.json`` and ``OUT/table.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import snntorch as snn
import torch
from snntorch import functional as SF
from snntorch import utils as snn_utils
from snntorch.export_nir import export_to_nir

import spikeforge as sf
from spikeforge.sw.config import SnnConfig
from spikeforge.sw.data import load_dataset
from spikeforge.sw.encoders import quantize
from spikeforge.sw.golden import GoldenModel
from spikeforge.sw.nir_io import write_graph
from spikeforge.sw.train import epoch_samples, eval_inputs, train_int

K = 3
COLUMNS = ("float", "imported", "fine-tuned", "from scratch")


def _float_net(layers: tuple[int, ...]) -> torch.nn.Sequential:
    mods: list[torch.nn.Module] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(layers)):
        mods.append(torch.nn.Linear(n_in, n_out, bias=False))
        mods.append(
            snn.Leaky(
                beta=torch.full((n_out,), 1 - 2.0**-K),
                threshold=torch.ones(n_out),
                reset_mechanism="zero",
                init_hidden=True,
                output=i == len(layers) - 2,
            )
        )
    return torch.nn.Sequential(*mods)


def _spikes(net: torch.nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """Output spikes ``[T, B, n]`` for inputs ``[B, T, n_in]``."""
    snn_utils.reset(net)
    out = []
    for t in range(x.shape[1]):
        spk, _ = net(x[:, t].float())
        out.append(spk)
    return torch.stack(out)


def train_float(cfg: SnnConfig, ds, epochs: int) -> tuple[torch.nn.Sequential, float]:
    torch.manual_seed(cfg.init_seed)
    net = _float_net(cfg.layers)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    loss_fn = SF.mse_count_loss(correct_rate=cfg.target_hi / cfg.timesteps, incorrect_rate=0.0)
    x_tr = quantize(ds.x_train, ds.x_max, cfg.in_bits)
    for epoch in range(epochs):
        x, y = epoch_samples(cfg, x_tr, ds.y_train, epoch)
        for k in range(0, len(x), 32):
            loss = loss_fn(_spikes(net, x[k : k + 32]), y[k : k + 32])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        x_te = eval_inputs(cfg, quantize(ds.x_test, ds.x_max, cfg.in_bits))
        pred = _spikes(net, x_te).sum(0).argmax(1)
    return net, float((pred == ds.y_test).float().mean())


def run_seed(seed: int, args: argparse.Namespace, out: Path) -> dict[str, float]:
    ds = load_dataset("digits")
    cfg = SnnConfig(layers=(64, 64, 10), timesteps=16, reset="zero", init_seed=seed)
    net, float_acc = train_float(cfg, ds, args.float_epochs)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.filterwarnings("ignore", "nirtorch.extract_nir_graph", DeprecationWarning)
        graph = export_to_nir(net, torch.zeros(cfg.layers[0]))
    path = write_graph(out / f"snntorch-seed{seed}.nir", graph)
    imported = sf.import_nir(path, w_bits=args.w_bits, timesteps=cfg.timesteps, init_seed=seed)
    icfg = imported.config
    x_te = eval_inputs(icfg, quantize(ds.x_test, ds.x_max, icfg.in_bits))
    model = GoldenModel(icfg, imported.master_weights())
    imported_acc = float((model.predict(x_te) == ds.y_test).float().mean())
    tuned = train_int(icfg, ds, args.int_epochs, init=imported.master_weights())
    scratch = train_int(icfg, ds, args.int_epochs)
    return {
        "float": float_acc,
        "imported": imported_acc,
        "fine-tuned": tuned.test_accuracy,
        "from scratch": scratch.test_accuracy,
        "theta": icfg.theta,
        "rms_relative_error": max(q.rms_relative_error for q in imported.layers),
    }


def _row(values: list[float]) -> str:
    mean = statistics.fmean(values)
    spread = (max(values) - min(values)) / 2
    return f"{100 * mean:.1f} ± {100 * spread:.1f}%"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds 1..N [default: 3]")
    parser.add_argument("--float-epochs", type=int, default=20, help="[default: 20]")
    parser.add_argument("--int-epochs", type=int, default=4, help="[default: 4]")
    parser.add_argument("--w-bits", type=int, default=8, help="[default: 8]")
    parser.add_argument("--out", type=Path, default=Path("runs/nir-finetune"))
    parser.add_argument("--json", action="store_true", help="print a JSON summary as last line")
    args = parser.parse_args(argv)
    for name in ("seeds", "float_epochs", "int_epochs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, not {getattr(args, name)}")
    if not 2 <= args.w_bits <= 16:
        parser.error(f"--w-bits must be in [2, 16], not {args.w_bits}")
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    runs = {}
    for seed in range(1, args.seeds + 1):
        runs[seed] = run_seed(seed, args, args.out)
        print(f"seed {seed}: " + ", ".join(f"{c} {100 * runs[seed][c]:.1f}%" for c in COLUMNS))
    table = [
        f"| digits 64-64-10, T = 16, w_bits = {args.w_bits} | " + " | ".join(COLUMNS) + " |",
        "| --- |" + " --- |" * len(COLUMNS),
        f"| test accuracy, {args.seeds} seeds (mean ± half range) | "
        + " | ".join(_row([r[c] for r in runs.values()]) for c in COLUMNS)
        + " |",
    ]
    text = "\n".join(table)
    print(text)
    print(
        f"float: {args.float_epochs} epochs of snnTorch; fine-tuned and from scratch: "
        f"{args.int_epochs} integer epochs at batch 1; {time.perf_counter() - t0:.0f} s"
    )
    summary = {"runs": runs, "args": {k: str(v) for k, v in vars(args).items()}}
    (args.out / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    (args.out / "table.md").write_text(text + "\n")
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
