"""The float reference: snnTorch's snn.Leaky side by side, surrogate shapes, SLTT."""

from __future__ import annotations

import pytest
import torch

from spikeforge.sw.config import SnnConfig
from spikeforge.sw.float_ref import FloatSNN, SurrogateSpike, count_loss
from spikeforge.sw.golden import init_weights

snn = pytest.importorskip("snntorch")


def _snntorch_forward(cfg: SnnConfig, net: FloatSNN, x: torch.Tensor):
    """The same network built from torch.nn.Linear + snntorch.Leaky, stepped in time."""
    beta = 1.0 - 2.0**-cfg.leak_shift
    spikes, mems = [], []
    for fc in net.fcs:
        lif = snn.Leaky(beta=beta, threshold=1.0, reset_mechanism=cfg.reset)
        mem = lif.reset_mem()
        spk_t, mem_t = [], []
        for t in range(x.shape[1]):
            spk, mem = lif(fc(x[:, t]), mem)
            spk_t.append(spk)
            mem_t.append(mem)
        x = torch.stack(spk_t, 1)
        spikes.append(x)
        mems.append(torch.stack(mem_t, 1))
    return spikes, mems


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_forward_matches_snntorch_leaky(reset, seed):
    cfg = SnnConfig(layers=(64, 48, 10), timesteps=16, reset=reset, init_seed=seed, init_scale=12)
    net = FloatSNN(cfg, init_weights(cfg))
    gen = torch.Generator().manual_seed(seed)
    x = (torch.rand(32, 16, 64, generator=gen) < 0.3).float()
    with torch.no_grad():
        ours_s, ours_m = net(x)
        ref_s, ref_m = _snntorch_forward(cfg, net, x)
    for layer in range(2):
        assert torch.equal(ours_s[layer], ref_s[layer]), f"spikes of layer {layer}"
        torch.testing.assert_close(ours_m[layer], ref_m[layer], rtol=0, atol=1e-6)
    assert 0 < ours_s[0].mean() < 1  # the comparison saw real spiking activity


def test_surrogate_shapes():
    x = torch.tensor([-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0], requires_grad=True)
    SurrogateSpike.apply(x, "boxcar", 0.5).sum().backward()
    assert x.grad.tolist() == [0, 0, 1, 1, 1, 0, 0]
    x.grad = None
    SurrogateSpike.apply(x, "triangle", 0.5).sum().backward()
    assert x.grad.tolist() == [0, 0, 0.5, 1, 0.5, 0, 0]


def test_sltt_cuts_the_temporal_gradient():
    grads = {}
    for mode in ("bptt", "sltt"):
        cfg = SnnConfig(layers=(1, 1), timesteps=2, bptt=mode, theta=64, surrogate_shift=12)
        net = FloatSNN(cfg, [torch.tensor([[40]])])
        x = torch.tensor([[[1.0], [1.0]]])
        _, mems = net(x)
        net.zero_grad()
        mems[0][0, 1, 0].backward()  # u[1] depends on W through I[1] and, via u[0], on I[0]
        grads[mode] = net.fcs[0].weight.grad.item()
    assert grads["sltt"] == pytest.approx(1.0)
    assert grads["bptt"] == pytest.approx(1.0 + (1.0 - 2.0**-3))


def test_mse_loss_gradient_is_the_integer_output_error():
    cfg = SnnConfig(layers=(2, 3), timesteps=4, target_hi=4)
    spikes = torch.tensor([[[1.0, 0, 1], [1, 0, 0], [0, 0, 0], [1, 0, 0]]], requires_grad=True)
    count_loss(cfg, spikes, torch.tensor([1]), "mse").backward()
    # counts (3, 0, 1), targets (0, 4, 0): dL/ds = count - target at every step
    assert spikes.grad[0, 0].tolist() == [3, -4, 1]
