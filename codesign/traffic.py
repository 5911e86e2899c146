"""Off-chip memory traffic per training sample: this chip against a GPU running BPTT the way
frameworks run it.

**The chip** keeps weights, membranes, spike and surrogate histories, gradients and deltas in
block RAM; per training sample only the host stream crosses the chip boundary
(:func:`~spikeforge.codesign.host_stream.train_step_stream`): every word sent plus one status
word per answering core, 4 bytes each.

**The GPU** (:class:`GpuBaseline`) trains the same network with PyTorch autograd over ``T``
timesteps (snnTorch style), mini-batch ``B``, values of ``V`` bytes, and a last-level cache of
``C`` bytes. With ``P = sum m n`` weights over the layers ``m -> n``, per training step:

* **weights**: read once per step (``V P``): they stay in the cache for the other timesteps
  and the backward pass, which the model requires (``2 V P <= C``, weights and gradients);
* **inputs**: the input spike frames read once, dense ``[T, B, n_in]`` tensors (``V T n_in``
  per sample), as snnTorch and tonic feed them; or, with ``encode=True``, the 8-bit image read
  once (``n_in`` bytes per sample) and rate-coded on the GPU, its spikes kept in the cache;
* **saved activations**: autograd keeps, per layer and timestep, the linear layer's input
  (``B m``) and the membrane the surrogate needs (``B n``): ``S = V B T sum (m + n)``. What
  fits beside the weights and gradients stays in the cache; the backward pass reads them in
  the reverse order they were written, so an LRU cache keeps the last ``C - 2 V P`` bytes
  written and the rest is written to DRAM and read back: ``2 max(0, S - (C - 2 V P))``;
* **gradients**: accumulated over the timesteps in the cache, written once per step (``V P``);
* **update**: plain SGD (the chip's rule) reads weights and gradients from the cache and writes
  the weights (``V P``).

Per-timestep temporaries (currents, errors passed down, surrogate derivatives: ``B max(m, n)``
values each, reused within a kernel or two) are taken to stay in the cache. So per sample::

    gpu_bytes = V T n_in + (2 max(0, S - C + 2 V P) + 3 V P) / B     (n_in if encode)

docs/energy.md states each assumption with its source and tabulates the ratio; the reference
design (arXiv 2412.05302) reports 55-85% less DRAM traffic than an A100.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from spikeforge.codesign.host_stream import train_step_stream
from spikeforge.hw.protocol import input_words, spike_words
from spikeforge.sw.config import SnnConfig

__all__ = [
    "A100_L2_BYTES",
    "GpuBaseline",
    "chip_encoded_bytes",
    "chip_traffic_bytes",
    "gpu_traffic",
    "traffic_summary",
]

WORD_BYTES = 4

A100_L2_BYTES = 40 * 2**20
"""The A100's L2 cache: 40 MB (NVIDIA A100 Tensor Core GPU Architecture whitepaper, 2020)."""


@dataclass(frozen=True)
class GpuBaseline:
    """How the GPU baseline trains (module docstring).

    Parameters
    ----------
    batch : int
        Mini-batch ``B``: the weights, gradients and update are shared by ``B`` samples.
    value_bytes : int
        Bytes per activation, weight and gradient ``V`` (4: fp32, PyTorch's default dtype).
    cache_bytes : int
        Last-level cache ``C`` (the A100's 40 MB L2 by default; 0: nothing reused between
        kernels, which the model rejects because the weights must fit).
    encode : bool
        The GPU reads the 8-bit image and rate-codes it itself (``n_in`` bytes per sample)
        instead of reading fp32 spike frames.
    """

    batch: int = 128
    value_bytes: int = 4
    cache_bytes: int = A100_L2_BYTES
    encode: bool = False

    def __post_init__(self) -> None:
        for name, low in (("batch", 1), ("value_bytes", 1), ("cache_bytes", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, not {value!r}")
        if not isinstance(self.encode, bool):
            raise ValueError(f"encode must be a bool, not {self.encode!r}")


def gpu_traffic(net: SnnConfig, baseline: GpuBaseline | None = None) -> dict[str, float]:
    """DRAM bytes per training sample of ``baseline`` (default :class:`GpuBaseline`), by part:
    ``inputs``, ``activations`` (saved tensors spilled and read back), ``weights`` (read),
    ``gradients`` (written), ``update`` (weights written) and their ``total``.

    Raises
    ------
    ValueError
        If the weights and their gradients do not fit in the cache (the model assumes they do).
    """
    if not isinstance(net, SnnConfig):
        raise TypeError(f"net must be an SnnConfig, not {net!r}")
    b = GpuBaseline() if baseline is None else baseline
    if not isinstance(b, GpuBaseline):
        raise TypeError(f"baseline must be a GpuBaseline, not {b!r}")
    v, batch, T = b.value_bytes, b.batch, net.timesteps
    shapes = net.weight_shapes()
    params = v * sum(m * n for n, m in shapes)
    if 2 * params > b.cache_bytes:
        raise ValueError(
            f"the weights and gradients ({2 * params:,} B) do not fit in cache_bytes = "
            f"{b.cache_bytes:,}: the baseline assumes they stay cached for the whole step"
        )
    saved = v * batch * T * sum(m + n for n, m in shapes)
    spill = max(0, saved - (b.cache_bytes - 2 * params))
    parts = {
        "inputs": float(net.n_inputs if b.encode else v * T * net.n_inputs),
        "activations": 2 * spill / batch,
        "weights": params / batch,
        "gradients": params / batch,
        "update": params / batch,
    }
    parts["total"] = sum(parts.values())
    return parts


def chip_traffic_bytes(layers: Sequence[Sequence[int]], spikes: Sequence[Sequence[int]]) -> int:
    """Bytes of one training step's host stream for input ``spikes`` ``[T][n_in]`` (0/1)."""
    packets = train_step_stream(layers, spikes, 0)
    return WORD_BYTES * sum(len(p.words) + len(p.answers) for p in packets)


def chip_encoded_bytes(
    layers: Sequence[Sequence[int]], spikes: Sequence[Sequence[int]], in_bits: int
) -> int:
    """:func:`chip_traffic_bytes` when the first layer's cores rate-code the sample themselves:
    LOAD_INPUTS carries the key and the packed intensities
    (:func:`~spikeforge.hw.protocol.input_words`) instead of the spike events. LOAD_INPUTS has
    no FORWARD streamed into it: the first layer's cores answer it and take FORWARD apart (its
    answers, and on a one-layer array its route and command words)."""
    n_in = len(spikes[0])
    events = len(spike_words(spikes))
    forward = len(layers[0]) + (0 if len(layers) > 1 else 2)
    return chip_traffic_bytes(layers, spikes) + WORD_BYTES * (
        len(input_words([0] * n_in, 0, in_bits)) - events + forward
    )


def traffic_summary(
    net: SnnConfig,
    layers: Sequence[Sequence[int]],
    active: Sequence[Sequence[float]],
    baseline: GpuBaseline | None = None,
) -> dict[str, float]:
    """Chip and GPU bytes per sample with ``active[0][t]`` input spikes per timestep (means are
    rounded to whole spikes), and the chip's saving ``1 - chip / gpu``."""
    if len(active[0]) != net.timesteps:
        raise ValueError(
            f"active[0] must have {net.timesteps} entries (one per timestep), not {len(active[0])}"
        )
    n_in = net.n_inputs
    spikes = [[1 if i < round(a) else 0 for i in range(n_in)] for a in active[0]]
    chip = chip_traffic_bytes(layers, spikes)
    gpu = gpu_traffic(net, baseline)["total"]
    return {"chip_bytes": chip, "gpu_bytes": gpu, "saving": 1 - chip / gpu}
