"""Off-chip memory traffic per training sample: this chip against a GPU-style BPTT baseline.

**The chip** keeps weights, membranes, spike and surrogate histories, gradients and deltas in
block RAM; per training sample only the host stream crosses the chip boundary
(:func:`~spikeforge.codesign.host_stream.train_step_stream`): every word sent plus one status
word per answering core, 4 bytes each.

**The baseline** is batch-1 BPTT on a GPU that keeps the state of every timestep in DRAM
(fp32, ``B = 4`` bytes per value). Per weight layer ``m -> n`` and timestep (``T`` of them):

* forward: read the input spikes (``m``), read and write the membrane (``2n``), write the
  output spikes (``n``), save the membrane for the surrogate (``n``): ``m + 4n`` values;
* backward: read the saved membrane and output spikes (``2n``), write and read the error
  passed down (``2m``), read the saved input spikes (``m``), read and write the gradient
  accumulated in DRAM (``2 m n``): ``3m + 2n + 2mn`` values;

and once per sample: read the weights in the forward and the backward pass and, for the
update, read weights and gradient and write the weights (``5 m n`` values). So::

    gpu_bytes = B * sum over layers of [T (4m + 6n + 2mn) + 5mn]

The reference architecture (arXiv 2412.05302) reports 55-85% less DRAM access than an A100;
this chip keeps the weights on chip as well, so its saving is larger whenever the network
fits (which the mapping compiler requires).
"""

from __future__ import annotations

from collections.abc import Sequence

from spikeforge.codesign.host_stream import train_step_stream
from spikeforge.sw.config import SnnConfig

__all__ = ["chip_traffic_bytes", "gpu_bptt_traffic_bytes", "traffic_summary"]

WORD_BYTES = 4


def chip_traffic_bytes(layers: Sequence[Sequence[int]], spikes: Sequence[Sequence[int]]) -> int:
    """Bytes of one training step's host stream for input ``spikes`` ``[T][n_in]`` (0/1)."""
    packets = train_step_stream(layers, spikes, 0)
    return WORD_BYTES * sum(len(p.words) + len(p.answers) for p in packets)


def gpu_bptt_traffic_bytes(net: SnnConfig, *, bytes_per_value: int = 4) -> int:
    """DRAM bytes per training sample of the baseline (module docstring)."""
    if not isinstance(net, SnnConfig):
        raise TypeError(f"net must be an SnnConfig, not {net!r}")
    if (
        isinstance(bytes_per_value, bool)
        or not isinstance(bytes_per_value, int)
        or (bytes_per_value < 1)
    ):
        raise ValueError(f"bytes_per_value must be an int >= 1, not {bytes_per_value!r}")
    T = net.timesteps
    values = sum(T * (4 * m + 6 * n + 2 * m * n) + 5 * m * n for n, m in net.weight_shapes())
    return bytes_per_value * values


def traffic_summary(
    net: SnnConfig, layers: Sequence[Sequence[int]], active: Sequence[Sequence[float]]
) -> dict[str, float]:
    """Chip and baseline bytes for a sample with ``active[0][t]`` input spikes per timestep
    (means are rounded to whole spikes), and the chip's saving ``1 - chip / gpu``."""
    if len(active[0]) != net.timesteps:
        raise ValueError(
            f"active[0] must have {net.timesteps} entries (one per timestep), not {len(active[0])}"
        )
    n_in = net.n_inputs
    spikes = [[1 if i < round(a) else 0 for i in range(n_in)] for a in active[0]]
    chip = chip_traffic_bytes(layers, spikes)
    gpu = gpu_bptt_traffic_bytes(net)
    return {"chip_bytes": chip, "gpu_bptt_bytes": gpu, "saving": 1 - chip / gpu}
