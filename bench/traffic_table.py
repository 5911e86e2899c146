"""Off-chip bytes per training sample: the chip's host stream against the GPU baseline.

For the default network (64-64-10 on two cores, the digits training split rate-coded by the
chip's own encoder) and an MNIST-sized one (784-256-10 on four cores; synthetic inputs of
constant intensity 33/256 = 12.9%, MNIST's mean pixel intensity 0.1307 rounded to the 8-bit
encoder), the mean bytes of :func:`~spikeforge.codesign.traffic.chip_traffic_bytes` over the
samples, against :func:`~spikeforge.codesign.traffic.gpu_traffic` (fp32, the A100's 40 MB L2)
at mini-batches 1, 32, 128 and 1024, by part; then both sides rate-coding on chip (the chip's
first cores from LOAD_INPUTS, :func:`~spikeforge.codesign.traffic.chip_encoded_bytes`; the GPU
from the 8-bit image). docs/energy.md holds the table this prints.
Run: ``.venv/bin/python bench/traffic_table.py [--json]`` (a few seconds).
"""

from __future__ import annotations

import argparse
import json

import torch

from spikeforge.codesign.mapping import map_network
from spikeforge.codesign.traffic import (
    GpuBaseline,
    chip_encoded_bytes,
    chip_traffic_bytes,
    gpu_traffic,
)
from spikeforge.hw.array import layer_groups
from spikeforge.sw.config import SnnConfig
from spikeforge.sw.data import load_dataset
from spikeforge.sw.encoders import encode, quantize

BATCHES = (1, 32, 128, 1024)
MNIST_LEVEL = 33
"""MNIST's mean pixel intensity 0.1307 on the 8-bit encoder: round(0.1307 * 255) = 33."""
SAMPLES = 256


def _networks() -> list[tuple[str, SnnConfig, int, torch.Tensor]]:
    """(name, network, cores, encoded input spikes [N, T, n_in]) of each row."""
    default = SnnConfig()
    ds = load_dataset("digits")
    x = quantize(ds.x_train[:SAMPLES], ds.x_max, default.in_bits)
    keys = torch.arange(len(x))
    big = SnnConfig(layers=(784, 256, 10))
    level = torch.full((SAMPLES, 784), MNIST_LEVEL, dtype=torch.int64)
    return [
        ("64-64-10 (digits)", default, 2, encode(x, keys, default)),
        ("784-256-10 (synthetic, MNIST-like)", big, 4, encode(level, keys, big)),
    ]


def rows() -> list[dict]:
    """One row per network and GPU mini-batch."""
    out = []
    for name, net, cores, spikes in _networks():
        # the host stream depends only on which cores hold which layer: 784-256-10 does not fit
        # one 85F's block RAMs yet (docs/results.md), its stream is planned all the same
        mapping = map_network(net, cores, check_device=False)
        layers = layer_groups(mapping.core_params(), linked=True)
        trains = [s.tolist() for s in spikes]
        chip = sum(chip_traffic_bytes(layers, s) for s in trains) / len(trains)
        chip_enc = sum(chip_encoded_bytes(layers, s, net.in_bits) for s in trains) / len(trains)
        for batch in BATCHES:
            gpu = gpu_traffic(net, GpuBaseline(batch=batch))
            gpu_enc = gpu_traffic(net, GpuBaseline(batch=batch, encode=True))["total"]
            out.append(
                {
                    "network": name,
                    "cores": cores,
                    "input_spikes": float(spikes.sum() / len(spikes)),
                    "chip_bytes": chip,
                    "batch": batch,
                    **{f"gpu_{k}": v for k, v in gpu.items()},
                    "saving": 1 - chip / gpu["total"],
                    "chip_encoded_bytes": chip_enc,
                    "gpu_encoded_bytes": gpu_enc,
                    "encoded_saving": 1 - chip_enc / gpu_enc,
                }
            )
    return out


def markdown(table: list[dict]) -> str:
    """The table docs/energy.md shows."""
    lines = [
        (
            "| network | GPU batch | GPU: spike frames | saved activations "
            "| weights + gradients + update | **GPU** | **chip** | chip saves "
            "| GPU, encodes | chip, encodes | chip saves |"
        ),
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in table:
        params = r["gpu_weights"] + r["gpu_gradients"] + r["gpu_update"]
        lines.append(
            f"| {r['network']} | {r['batch']:,} | {r['gpu_inputs']:,.0f} "
            f"| {r['gpu_activations']:,.0f} | {params:,.0f} | {r['gpu_total']:,.0f} "
            f"| {r['chip_bytes']:,.0f} | {r['saving']:.1%} | {r['gpu_encoded_bytes']:,.0f} "
            f"| {r['chip_encoded_bytes']:,.0f} | {r['encoded_saving']:.1%} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="one JSON list instead of the table")
    args = ap.parse_args()
    table = rows()
    print(json.dumps(table) if args.json else markdown(table))


if __name__ == "__main__":
    main()
