"""Host-side session with a network spread one layer per core: the host carries each core's
spikes forward to the next core and each core's ``W^T . delta`` back to the previous one."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from spikeforge.hw.protocol import Quantity
from spikeforge.sim.session import CoreSession
from spikeforge.sw.golden import predict

__all__ = ["NetworkSession"]


class NetworkSession:
    """Layer ``l`` of ``params.net`` on ``cores[l]`` (every core but the first emits its error).

    Parameters
    ----------
    cores : sequence of CoreSession
        One session per weight layer, input layer first.
    """

    def __init__(self, cores: Sequence[CoreSession]):
        cores = list(cores)
        net = cores[0].params.net
        if len(cores) != net.n_layers:
            raise ValueError(
                f"cores must hold one session per layer ({net.n_layers}), not {len(cores)}"
            )
        for layer, s in enumerate(cores):
            if s.params.layer != layer or s.params.net != net:
                raise ValueError(f"cores[{layer}] must compute layer {layer} of the same network")
            if layer > 0 and not s.params.emits_error:
                raise ValueError(f"cores[{layer}] must emit W^T.delta for layer {layer - 1}")
        self.cores = cores
        self.net = net

    async def write_weights(self, weights: Sequence[torch.Tensor]) -> None:
        for s, w in zip(self.cores, weights, strict=True):
            await s.write(Quantity.WEIGHTS, w)

    async def read_weights(self) -> list[torch.Tensor]:
        return [await s.read(Quantity.WEIGHTS) for s in self.cores]

    async def forward(self, x: torch.Tensor) -> None:
        """Forward pass of one sample's input spikes ``x`` ``[T, n_in]`` through every core."""
        await self.cores[0].load_spikes(x)
        await self.cores[0].forward()
        for prev, s in zip(self.cores, self.cores[1:], strict=False):
            await s.load_spikes(await prev.read(Quantity.SPIKES))
            await s.forward()

    async def train_step(self, x: torch.Tensor, label: int) -> None:
        """Forward, the output error from ``label``, backward and the update on every core."""
        await self.forward(x)
        last = self.cores[-1]
        await last.set_label(label)
        await last.backward(update=True)
        for layer in range(len(self.cores) - 2, -1, -1):
            s = self.cores[layer]
            await s.write(Quantity.ERRORS, await self.cores[layer + 1].read(Quantity.EPREV))
            await s.backward(update=True, external_error=True)

    async def predict(self, x: torch.Tensor) -> int:
        """The class the network predicts for ``x`` (same rule as the golden model)."""
        await self.forward(x)
        last = self.cores[-1]
        s = await last.read(Quantity.SPIKES)
        u = await last.read(Quantity.MEMBRANES)
        return int(predict(self.net, s.unsqueeze(0), u.unsqueeze(0))[0])

    async def set_lr(self, lr_shift: int) -> None:
        for s in self.cores:
            await s.set_lr(lr_shift)
