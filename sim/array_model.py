"""The array cycle model for the testbench's own stimulus: what ``tb_array`` should measure.

:func:`model_steps` replays the golden model on the samples and weights a case draws
(:mod:`spikeforge.sim.stimulus`) and asks :func:`~spikeforge.hw.array_cycles.array_step_cycles`
for each step's cycles (and the inference pass on its sample), so a measured run can be
compared step by step.
"""

from __future__ import annotations

from collections.abc import Sequence

from spikeforge.hw.array import layer_groups
from spikeforge.hw.array_cycles import ArrayCycles, array_step_cycles
from spikeforge.hw.params import CoreParams
from spikeforge.sim.stimulus import samples, weights_for_seed
from spikeforge.sw.golden import GoldenModel

__all__ = ["model_steps"]


def model_steps(
    cores: Sequence[CoreParams], *, seed: int, steps: int, density: float
) -> list[ArrayCycles]:
    """The cycle model of every training step of a ``tb_array`` case."""
    net = cores[0].net
    golden = GoldenModel(net, weights_for_seed(net, seed))
    groups = layer_groups(cores, linked=True)
    xs, labels = samples(net, seed, steps=steps, density=density)
    out = []
    for x, y in zip(xs, labels, strict=True):
        result = golden.train_step(x, labels=y)
        spikes = [result.traces[0].x[0].tolist()] + [tr.s[0].tolist() for tr in result.traces]
        deltas = [tr.delta[0].tolist() for tr in result.traces]
        out.append(array_step_cycles(cores, groups, spikes, deltas))
    return out
