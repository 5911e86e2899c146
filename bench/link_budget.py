"""Bytes per training sample over the serial link, and which bounds the rate: link or core.

For the default core (or ``--layers``/``--timesteps``/``--lanes``) at several input spike
densities: the bytes one training step puts on the line each way (LOAD_SPIKES with the events,
FORWARD, SET_LABEL, BACKWARD with the update; each one frame, each answered by one), exactly
as :func:`~spikeforge.hw.serial_protocol.encode_frame` encodes them; the samples per second the
UART allows at ``--baud`` (10 bits a byte, the two directions one after the other, as a host
that waits for every answer sends them), against the samples per second the core's cycles
allow at ``--clock-mhz`` (:func:`~spikeforge.hw.cycles.step_cycles`). Not counted: the USB
round trip of each command (an FTDI's latency timer, 1-16 ms), which on a real host bounds
both. Run: ``.venv/bin/python bench/link_budget.py [--json]``.
"""

from __future__ import annotations

import argparse
import json

import torch

from spikeforge.hw.cycles import step_cycles
from spikeforge.hw.params import DEFAULT_CORE_NET, CoreParams
from spikeforge.hw.protocol import Opcode, Status, command, spike_words, status_word
from spikeforge.hw.serial_protocol import encode_frame
from spikeforge.sw.config import SnnConfig

DENSITIES = (0.05, 0.1, 0.2, 0.5)


def step_bytes(p: CoreParams, spikes: torch.Tensor, label: int) -> tuple[int, int]:
    """Bytes host -> chip and chip -> host of one training step."""
    packets = [
        [command(Opcode.LOAD_SPIKES), *spike_words(spikes.tolist())],
        [command(Opcode.FORWARD)],
        [command(Opcode.SET_LABEL, label)],
        [command(Opcode.BACKWARD, 1)],
    ]
    out = sum(len(encode_frame(n % 256, words)) for n, words in enumerate(packets))
    back = sum(
        len(encode_frame(n % 256, [status_word(words[0] >> 24, Status.OK)]))
        for n, words in enumerate(packets)
    )
    return out, back


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", default=None, help="n_in,n_out [default: the default core]")
    ap.add_argument("--timesteps", type=int, default=None)
    ap.add_argument("--lanes", type=int, default=8)
    ap.add_argument("--baud", type=int, default=3_000_000)
    ap.add_argument("--clock-mhz", type=float, default=100.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    net = DEFAULT_CORE_NET
    if args.layers or args.timesteps:
        layers = tuple(int(n) for n in args.layers.split(",")) if args.layers else net.layers
        net = SnnConfig(layers=layers, timesteps=args.timesteps or net.timesteps)
    p = CoreParams(net=net, lanes=args.lanes)
    gen = torch.Generator().manual_seed(0)
    rows = []
    for density in DENSITIES:
        spikes = (torch.rand(p.timesteps, p.n_in, generator=gen) < density).long()
        out, back = step_bytes(p, spikes, label=1)
        cycles = sum(
            v
            for k, v in step_cycles(p, spikes.sum(1).tolist()).items()
            if k in ("forward", "backward")
        )
        link_rate = args.baud / 10 / (out + back)
        core_rate = args.clock_mhz * 1e6 / cycles
        rows.append(
            {
                "density": density,
                "bytes_to_chip": out,
                "bytes_to_host": back,
                "cycles": cycles,
                "link_samples_per_s": round(link_rate, 1),
                "core_samples_per_s": round(core_rate, 1),
                "bound": "link" if link_rate < core_rate else "core",
                "ratio": round(max(link_rate, core_rate) / min(link_rate, core_rate), 2),
            }
        )
    if args.json:
        print(json.dumps(rows))
        return
    print(
        f"core {p.n_in}x{p.n_out}, T={p.timesteps}, P={p.lanes}; UART {args.baud:,} baud, "
        f"clock {args.clock_mhz:g} MHz"
    )
    print("density  to chip  to host   cycles  link/s   core/s  bound (x)")
    for r in rows:
        print(
            f"{r['density']:>7.2f} {r['bytes_to_chip']:>8,} {r['bytes_to_host']:>8,} "
            f"{r['cycles']:>8,} {r['link_samples_per_s']:>7,.0f} {r['core_samples_per_s']:>8,.0f}"
            f"  {r['bound']} ({r['ratio']}x)"
        )


if __name__ == "__main__":
    main()
