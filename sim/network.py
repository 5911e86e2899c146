"""Host-side session with a network spread over cores, one or more per layer.

A layer may be split across cores by output neurons (``CoreParams.neurons``); the host carries
the concatenated spikes of a layer's cores to every core of the next layer, and sums the exact
partial ``W^T . delta`` of a split layer's cores before rounding and saturating once
(:func:`~spikeforge.sw.golden.error_from_sum`) and handing each core of the previous layer its
slice of the error.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from spikeforge.hw.array import layer_groups
from spikeforge.hw.protocol import Quantity
from spikeforge.sim.session import CoreSession
from spikeforge.sw.golden import error_from_sum, predict_counts

__all__ = ["NetworkSession", "last_layer_class"]


async def last_layer_class(net, group: Sequence[CoreSession]) -> int:
    """The predicted class from the last layer's cores ``group`` (in neuron order) after a
    FORWARD: each core's spike counts and its membranes of the last timestep (one READ of one
    row), arg-max as :func:`~spikeforge.sw.golden.predict_counts` defines it."""
    counts = torch.cat([await s.read(Quantity.COUNTS) for s in group])
    u_last = torch.cat(
        [(await s.read_rows(Quantity.MEMBRANES, net.timesteps - 1, 1))[0] for s in group]
    )
    return int(predict_counts(net, counts.unsqueeze(0), u_last.unsqueeze(0))[0])


class NetworkSession:
    """Every weight layer of one network on one or more cores.

    Parameters
    ----------
    cores : sequence of CoreSession
        Any order; each layer's cores must cover its neurons exactly once.
    """

    def __init__(self, cores: Sequence[CoreSession]):
        cores = list(cores)
        if not cores:
            raise ValueError("cores must hold at least one session")
        net = cores[0].params.net
        self.net = net
        groups = layer_groups([s.params for s in cores])
        self.layers = [[cores[n] for n in group] for group in groups]

    async def write_weights(self, weights: Sequence[torch.Tensor]) -> None:
        for group, w in zip(self.layers, weights, strict=True):
            for s in group:
                p = s.params
                await s.write(Quantity.WEIGHTS, w[p.neuron_offset : p.neuron_offset + p.n_out])

    async def read_weights(self) -> list[torch.Tensor]:
        return [await self._gather(group, Quantity.WEIGHTS, 0) for group in self.layers]

    @staticmethod
    async def _gather(group: list[CoreSession], q: Quantity, dim: int) -> torch.Tensor:
        """A quantity of the whole layer: its cores' values concatenated along neurons."""
        return torch.cat([await s.read(q) for s in group], dim)

    async def forward(self, x: torch.Tensor) -> None:
        """Forward pass of one sample's input spikes ``x`` ``[T, n_in]`` through every core."""
        for layer, group in enumerate(self.layers):
            if layer > 0:
                x = await self._gather(self.layers[layer - 1], Quantity.SPIKES, 1)
            for s in group:
                await s.load_spikes(x)
                await s.forward()

    async def train_step(self, x: torch.Tensor, label: int, *, update: bool = True) -> None:
        """Forward, the output error from ``label``, backward and (``update``) the update on
        every core."""
        await self.forward(x)
        for s in self.layers[-1]:
            await s.set_label(label)
            await s.backward(update=update)
        for layer in range(len(self.layers) - 2, -1, -1):
            e = await self._error_for(layer)
            for s in self.layers[layer]:
                p = s.params
                await s.write(Quantity.ERRORS, e[:, p.neuron_offset : p.neuron_offset + p.n_out])
                await s.backward(update=update, external_error=True)

    async def update(self) -> None:
        """UPDATE on every core."""
        for group in self.layers:
            for s in group:
                await s.update()

    async def _error_for(self, layer: int) -> torch.Tensor:
        """``e`` ``[T, n]`` of ``layer`` from the cores of ``layer + 1``."""
        group = self.layers[layer + 1]
        if len(group) == 1:
            return await group[0].read(Quantity.EPREV)
        total = sum(
            [await s.read(Quantity.EPREV) for s in group[1:]], await group[0].read(Quantity.EPREV)
        )
        return error_from_sum(self.net, total)

    async def predict(self, x: torch.Tensor) -> int:
        """The class the network predicts for ``x``, from what the chip counted: the output
        cores' spike COUNTS and last membrane row, through the contract's
        :func:`~spikeforge.sw.golden.predict_counts` (the golden model's rule)."""
        await self.forward(x)
        return await last_layer_class(self.net, self.layers[-1])

    async def set_lr(self, lr_shift: int) -> None:
        for group in self.layers:
            for s in group:
                await s.set_lr(lr_shift)
