"""Training throughput on one network, measured in one process: integer golden model (batch 1,
what the chip does) vs the float reference vs snnTorch, on the same spikes and weights.

    .venv/bin/python bench/train_throughput.py [--samples N] [--repeats R] [--json]

Prints samples/s for each and the ratios against the integer model. Each figure is the best of
``--repeats`` timed passes over the same ``--samples`` training samples (warm-up excluded).
"""

from __future__ import annotations

import argparse
import json
import time

import snntorch as snn
import torch
from torch import nn

from spikeforge.sw.config import SnnConfig
from spikeforge.sw.data import load_dataset
from spikeforge.sw.encoders import encode, quantize
from spikeforge.sw.float_ref import FloatSNN, SurrogateSpike, count_loss
from spikeforge.sw.golden import GoldenModel, init_weights


class SnnTorchNet(nn.Module):
    """The same network from ``nn.Linear`` + ``snn.Leaky`` with the same surrogate."""

    def __init__(self, cfg: SnnConfig, ref: FloatSNN):
        super().__init__()
        width = ref.width

        def grad(x: torch.Tensor) -> torch.Tensor:
            return SurrogateSpike.apply(x, cfg.surrogate, width)

        self.fcs = nn.ModuleList(nn.Linear(i, o, bias=False) for o, i in cfg.weight_shapes())
        self.lifs = nn.ModuleList(
            snn.Leaky(beta=1 - 2**-cfg.leak_shift, spike_grad=grad, reset_mechanism=cfg.reset)
            for _ in self.fcs
        )
        self.load_state_dict(ref.state_dict(), strict=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mems = [lif.reset_mem() for lif in self.lifs]
        out = []
        for t in range(x.shape[1]):
            h = x[:, t]
            for k, (fc, lif) in enumerate(zip(self.fcs, self.lifs, strict=True)):
                h, mems[k] = lif(fc(h), mems[k])
            out.append(h)
        return torch.stack(out, 1)


def int_trainer(cfg: SnnConfig, weights, spikes: torch.Tensor, y: torch.Tensor, batch: int):
    """``run(n)``: train a fresh golden model from ``weights`` on the first ``n`` samples."""
    bcfg = cfg.replace(batch_size=batch)

    def run(n: int) -> None:
        model = GoldenModel(bcfg, weights)
        for k in range(0, n, batch):
            model.train_step(spikes[k : k + batch], y[k : k + batch])

    return run


def torch_trainer(cfg: SnnConfig, make, fspikes: torch.Tensor, y: torch.Tensor, batch: int):
    """``run(n)``: train a fresh float network ``make()`` with Adam on the first ``n`` samples."""

    def run(n: int) -> None:
        net = make()
        opt = torch.optim.Adam(net.parameters(), lr=2e-3)
        for k in range(0, n, batch):
            out = net(fspikes[k : k + batch])
            out = out[0][-1] if isinstance(out, tuple) else out
            loss = count_loss(cfg, out, y[k : k + batch], "mse")
            opt.zero_grad()
            loss.backward()
            opt.step()

    return run


def best_rate(fn, n: int, repeats: int) -> float:
    """``n`` / the best of ``repeats`` timed calls ``fn(n)``, after a warm-up call."""
    fn(min(n, 8))  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(n)
        best = min(best, time.perf_counter() - t0)
    return n / best


def positive_int(text: str) -> int:
    """An argparse type: an int >= 1 (steps, repeats, batch sizes, threads)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an int: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, not {value}")
    return value


def workload(cfg: SnnConfig, samples: int) -> dict:
    """What a throughput figure was measured on (the JSON's first keys)."""
    return {
        "network": list(cfg.layers),
        "timesteps": cfg.timesteps,
        "samples": samples,
        "torch_threads": torch.get_num_threads(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=positive_int, default=400)
    ap.add_argument("--repeats", type=positive_int, default=3)
    ap.add_argument("--float-batch", type=positive_int, default=16)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    cfg = SnnConfig()
    ds = load_dataset("digits")
    x = quantize(ds.x_train[: args.samples], ds.x_max, cfg.in_bits)
    y = ds.y_train[: args.samples]
    spikes = encode(x, torch.arange(len(x)), cfg)
    fspikes = spikes.to(torch.float32)
    weights = init_weights(cfg)

    def int_runner(batch: int):
        return int_trainer(cfg, weights, spikes, y, batch)

    def torch_runner(make, batch: int):
        return torch_trainer(cfg, make, fspikes, y, batch)

    def make_ref() -> FloatSNN:
        return FloatSNN(cfg, weights)

    def make_snntorch() -> SnnTorchNet:
        return SnnTorchNet(cfg, make_ref())

    fb = args.float_batch
    rows = [
        ("int golden model, batch 1", int_runner(1)),
        ("float reference, batch 1", torch_runner(make_ref, 1)),
        ("snnTorch, batch 1", torch_runner(make_snntorch, 1)),
        (f"int golden model, batch {fb}", int_runner(fb)),
        (f"float reference, batch {fb}", torch_runner(make_ref, fb)),
        (f"snnTorch, batch {fb}", torch_runner(make_snntorch, fb)),
    ]
    rates = {name: best_rate(fn, args.samples, args.repeats) for name, fn in rows}
    base = rates["int golden model, batch 1"]
    result = {
        **workload(cfg, args.samples),
        "samples_per_second": rates,
        "int_over": {name: base / rate for name, rate in rates.items()},
    }
    print(
        f"network {cfg.layers}, T={cfg.timesteps}, {args.samples} samples, "
        f"{torch.get_num_threads()} torch threads"
    )
    print(f"{'trainer':32s} {'samples/s':>10s} {'int / this':>11s}")
    for name, rate in rates.items():
        print(f"{name:32s} {rate:10.1f} {base / rate:10.2f}x")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
