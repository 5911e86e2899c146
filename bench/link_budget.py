"""Bytes per training sample over the serial link, and which bounds the rate: link or core.

For the default core (or ``--layers``/``--timesteps``/``--lanes``) at several input spike
densities, two ways of sending a sample: its spike events (LOAD_SPIKES) or, to a core with the
rate encoder, its key and intensities (LOAD_INPUTS, intensities ``density * 2**in_bits``). For
each: the bytes one training step puts on the line (the load, FORWARD, SET_LABEL, BACKWARD with
the update; each one frame, each answered by one status frame), exactly as
:func:`~spikeforge.hw.serial_protocol.encode_frame` encodes them; the samples per second the
UART allows at ``--baud`` (10 bits a byte, the two directions one after the other, as a host
that waits for every answer sends them), against the samples per second the core's cycles
allow at ``--clock-mhz`` (:func:`~spikeforge.hw.cycles.step_cycles` with the golden model's
deltas of the step at the initial weights, plus the encoder's
:func:`~spikeforge.hw.host.encoder.encode_cycles`). Not counted: the USB round trip of each
command (an FTDI's latency timer, 1-16 ms), which on a real host bounds both. Run:
``.venv/bin/python bench/link_budget.py [--json]``.
"""

from __future__ import annotations

import argparse
import json

import torch

from spikeforge.hw.backward import nonzero_groups
from spikeforge.hw.cycles import step_cycles
from spikeforge.hw.host.encoder import encode_cycles
from spikeforge.hw.params import DEFAULT_CORE_NET, CoreParams
from spikeforge.hw.protocol import (
    Opcode,
    Status,
    command,
    input_words,
    spike_words,
    status_word,
)
from spikeforge.hw.serial_protocol import encode_frame
from spikeforge.sw.config import SnnConfig
from spikeforge.sw.golden import GoldenModel

DENSITIES = (0.05, 0.1, 0.2, 0.5)


def step_bytes(load: list[int], label: int) -> tuple[int, int]:
    """Bytes host -> chip and chip -> host of one training step whose first packet is
    ``load`` (LOAD_SPIKES or LOAD_INPUTS)."""
    packets = [
        load,
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
        x = [round(density * (1 << net.in_bits))] * p.n_in
        step = GoldenModel(net).train_step(spikes[None], labels=torch.tensor([1]))
        nonzero = nonzero_groups(p, step.traces[0].delta[0])
        cycles = sum(
            v
            for k, v in step_cycles(p, spikes.sum(1).tolist(), nonzero).items()
            if k in ("forward", "backward")
        )
        row = {"density": density, "cycles": cycles}
        ways = {
            "events": ([command(Opcode.LOAD_SPIKES), *spike_words(spikes.tolist())], cycles),
            "inputs": (
                [command(Opcode.LOAD_INPUTS), *input_words(x, 12345, net.in_bits)],
                cycles + encode_cycles(CoreParams(net=net, lanes=args.lanes, rate_encoder=True)),
            ),
        }
        for way, (load, way_cycles) in ways.items():
            out, back = step_bytes(load, label=1)
            link_rate = args.baud / 10 / (out + back)
            core_rate = args.clock_mhz * 1e6 / way_cycles
            row[way] = {
                "bytes_to_chip": out,
                "bytes_to_host": back,
                "cycles": way_cycles,
                "link_samples_per_s": round(link_rate, 1),
                "core_samples_per_s": round(core_rate, 1),
                "bound": "link" if link_rate < core_rate else "core",
                "ratio": round(max(link_rate, core_rate) / min(link_rate, core_rate), 2),
            }
        rows.append(row)
    if args.json:
        print(json.dumps(rows))
        return
    print(
        f"core {p.n_in}x{p.n_out}, T={p.timesteps}, P={p.lanes}; UART {args.baud:,} baud, "
        f"clock {args.clock_mhz:g} MHz; per training sample, events | on-chip encoding"
    )
    print("density  to chip  to host   cycles  link/s   core/s  bound (x)")
    for r in rows:
        for way in ("events", "inputs"):
            w = r[way]
            print(
                f"{r['density'] if way == 'events' else '':>7} {w['bytes_to_chip']:>8,} "
                f"{w['bytes_to_host']:>8,} {w['cycles']:>8,} {w['link_samples_per_s']:>7,.0f} "
                f"{w['core_samples_per_s']:>8,.0f}  {w['bound']} ({w['ratio']}x) {way}"
            )


if __name__ == "__main__":
    main()
