"""The largest network each ECP5 holds: 784-h-10 (MNIST-shaped) by the mapping's block-RAM count.

For every device and two width settings (the defaults: 8-bit weights, 8-bit errors, T = 16;
narrow: 4-bit weights, 6-bit errors, T = 8), the largest hidden width ``h`` (a multiple of 8)
whose array, on the fewest cores :func:`~spikeforge.codesign.mapping.min_cores` allows, fits
one device by :attr:`~spikeforge.codesign.mapping.Mapping.bram_estimate`, and which memories
take the block RAMs there -- with the plain cores (a gradient memory) and with fused
gradients and dense weights (``map_network(..., fused=True)``: no gradient memory, the update
forms the accumulators from the deltas and the input spikes). Block RAM is what limits these
arrays (LUTs are measured by synthesis: docs/results.md). Run: ``.venv/bin/python
bench/fit_table.py [--json]`` (seconds).
"""

from __future__ import annotations

import argparse
import json

from spikeforge.codesign.mapping import MappingError, map_network, min_cores
from spikeforge.hw.devices import DEVICE_NAMES, ecp5_device
from spikeforge.sw.config import SnnConfig

SETTINGS = {
    "default (w8, g8, T16)": {},
    "narrow (w4, g6, T8)": {"w_bits": 4, "g_bits": 6, "timesteps": 8},
}
N_IN, N_OUT, STEP, MOST = 784, 10, 8, 2048


CORES = {"plain": False, "fused": True}
"""Row kinds: the plain cores, and fused gradients with dense weights."""


def _mapping(hidden: int, device: str, widths: dict, fused: bool = False):
    net = SnnConfig(layers=(N_IN, hidden, N_OUT), **widths)
    try:
        k = min_cores(net, device=device, fused=fused)
        return map_network(net, k, device=device, fused=fused)
    except MappingError:
        return None


def rows() -> list[dict]:
    """One row per device and width setting: the largest hidden width that fits."""
    out = []
    for device in DEVICE_NAMES:
        for (name, widths), (kind, fused) in (
            (w, c) for w in SETTINGS.items() for c in CORES.items()
        ):
            best = None
            for hidden in range(STEP, MOST + 1, STEP):
                m = _mapping(hidden, device, widths, fused)
                if m is None:
                    break
                best = (hidden, m)
            row = {
                "device": device,
                "brams": ecp5_device(device).brams,
                "widths": name,
                "cores_kind": kind,
            }
            if best is not None:
                hidden, m = best
                row |= {
                    "hidden": hidden,
                    "synapses": N_IN * hidden + hidden * N_OUT,
                    "cores": m.cores,
                    "bram_estimate": m.bram_estimate,
                    "by_memory": m.bram_by_memory(),
                }
            out.append(row)
    return out


def markdown(table: list[dict]) -> str:
    """The table docs/results.md shows."""
    lines = [
        (
            "| device | block RAMs | widths | gradients | largest 784-h-10 | synapses | cores "
            "| BRAM used | weights / gradients / events |"
        ),
        "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in table:
        kind = "memory" if r["cores_kind"] == "plain" else "fused, dense weights"
        head = f"| {r['device']} | {r['brams']} | {r['widths']} | {kind}"
        if "hidden" not in r:
            lines.append(f"{head} | none | | | | |")
            continue
        mem = r["by_memory"]
        lines.append(
            f"{head} | 784-{r['hidden']}-10 "
            f"| {r['synapses']:,} | {r['cores']} | {r['bram_estimate']} "
            f"| {mem.get('weights', 0)} / {mem.get('grads', 0)} / {mem.get('events', 0)} |"
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
