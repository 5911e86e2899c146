"""Data-parallel mini-batches on the generated Verilog, bit for bit with one chip training the
whole mini-batch (docs/arithmetic.md §9.1).

The 64-16-10 digits network (T = 16) built for ``batch_size = 4`` (its accumulators ``acc_bits``
wide for the mini-batch) on a two-core array (one core per layer) inside the fast-transactor
wrapper under Verilator, 20% idle and backpressure cycles: 2 chips x 2 samples per mini-batch,
4 mini-batches of epoch 0's order, the array playing both chips in turn. Every chip's
accumulators equal a golden chip's on its shard, and after every mini-batch every weight and
LFSR state equals ``GoldenModel(batch_size=4).train_step`` on the whole mini-batch; a host that
writes back chip 0's accumulators alone is reported with the first differing index. Both
simulations share one build (``build/rtl/test_data_parallel_rtl/array-<hash>``; the federated
tests' array is built for batch size 1, so its accumulators are 2 bits narrower).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
import torch

from spikeforge.hw.protocol import Opcode, Quantity
from spikeforge.sim.array_session import ArraySession
from spikeforge.sim.data_parallel_rtl import data_parallel
from spikeforge.sim.federated_runner import array_cores, run_data_parallel
from spikeforge.sim.plan import ArrayRecorder
from spikeforge.sw.config import ConfigError, SnnConfig
from spikeforge.sw.data import load_dataset
from spikeforge.sw.encoders import quantize
from spikeforge.sw.federated import check_data_parallel, data_parallel_step, sum_accumulators
from spikeforge.sw.golden import GoldenModel
from spikeforge.sw.train import epoch_samples

BUILD_ROOT = Path(__file__).resolve().parents[1] / "build" / "rtl"
SHARED = BUILD_ROOT / "test_data_parallel_rtl"
NET = SnnConfig(layers=(64, 16, 10), timesteps=16, batch_size=4)


def _folder(request) -> Path:
    return SHARED / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)


def _data(cfg: SnnConfig):
    ds = load_dataset("digits")
    return quantize(ds.x_train, ds.x_max, cfg.in_bits), ds.y_train


def _golden_chip(cfg, x, y, batches):
    """One golden chip training ``batches`` mini-batches of epoch 0 (no simulator code)."""
    x_in, labels = epoch_samples(cfg, x, y, 0)
    model = GoldenModel(cfg)
    bs = cfg.batch_size
    for b in range(batches):
        assert model.train_step(x_in[b * bs : (b + 1) * bs], labels[b * bs : (b + 1) * bs]).updated
    return model


@pytest.mark.rtl
def test_two_chips_of_two_samples_on_the_array_equal_one_chip_training_batch_four(request):
    _, result = run_data_parallel(SHARED, _folder(request), cfg=NET, workers=2, per_shard=2,
                                  batches=4)  # fmt: skip
    assert result.passed, result.report()
    d = result.detail
    assert d["stopped"] == "done"
    assert d["batches_done"] == d["checked"] == 4 and d["steps"] == 16
    assert d["chips_checked"] == 8  # every chip's accumulators of every mini-batch compared
    x, y = _data(NET)
    want = _golden_chip(NET, x, y, 4).weights
    got = [torch.tensor(w, dtype=torch.int64) for w in d["weights"]]
    assert all(torch.equal(a, b) for a, b in zip(want, got, strict=True))
    assert not torch.equal(want[0], GoldenModel(NET).weights[0])  # it did learn


@pytest.mark.rtl
def test_a_host_writing_back_chip_0s_accumulators_alone_is_reported(request):
    _, result = run_data_parallel(SHARED, _folder(request), cfg=NET, workers=2, per_shard=2,
                                  batches=2, corrupt=1)  # fmt: skip
    assert not result.passed
    # mini-batch 0 passed; in mini-batch 1 both chips' accumulators were right, the update not
    assert result.message == (
        "Mismatch: mini-batch 1: layer 0 weight [0, 4] is 144, the golden model's 143"
    )
    d = result.detail
    assert d["checked"] == 1 and d["chips_checked"] == 4


def _planned_session(cfg: SnnConfig):
    cores = array_cores(cfg)
    plan = ArrayRecorder(cores)
    return ArraySession(cores, plan.send, plan.recv, streamed=False), plan


def test_data_parallel_plans_one_backward_without_update_per_sample_and_one_update_per_batch():
    """The planning pass alone (no simulator): 2 mini-batches of 2 chips x 2 samples."""
    session, plan = _planned_session(NET)
    out = asyncio.run(data_parallel(session, *_data(NET), workers=2, per_shard=2, batches=2))
    assert out["batches_done"] == 2 and out["steps"] == 8 and out["chips_checked"] == 0
    ops = [Opcode(words[1] >> 24) for words, _ in plan.packets]
    assert ops.count(Opcode.UPDATE) == 2  # the host's update, once per mini-batch
    assert ops.count(Opcode.SET_LR) == 1
    grads_writes = [
        words
        for words, _ in plan.packets
        if Opcode(words[1] >> 24) == Opcode.WRITE and (words[1] & 0xF) == Quantity.GRADS
    ]
    assert grads_writes, "no GRADS write planned"


@pytest.mark.parametrize(
    ("cfg", "kw", "error", "exc"),
    [
        (SnnConfig(layers=(64, 16, 10), timesteps=16), {},
         r"batch_size = 1, but 2 workers x 2 samples make a mini-batch of 4", ValueError),
        (SnnConfig(layers=(64, 16, 10), timesteps=16, batch_size=4, acc_bits=13), {},
         r"data-parallel needs acc_bits >= 15 for batch_size = 4", ConfigError),
        (NET, {"per_shard": 0, "workers": 0}, r"workers must be a positive int", ValueError),
        (NET, {"batches": 10**6}, r"1000000 mini-batches of 4 need 4000000 samples", ValueError),
        (NET, {"corrupt": 4}, r"corrupt must be a mini-batch in \[0, 3\]", ValueError),
    ],
)  # fmt: skip
def test_data_parallel_refuses_what_the_array_cannot_run(cfg, kw, error, exc):
    session, plan = _planned_session(cfg)
    args = {"workers": 2, "per_shard": 2, "batches": 4} | kw
    with pytest.raises(exc, match=error):
        asyncio.run(data_parallel(session, *_data(cfg), **args))
    assert plan.packets == []  # refused before any packet


def test_sum_accumulators_is_data_parallel_steps_rule():
    cfg = SnnConfig(layers=(4, 3), timesteps=2, batch_size=2)
    lim = 1 << (cfg.acc_bits - 1)
    a = [torch.full((3, 4), lim - 1, dtype=torch.int64)]
    b = [torch.tensor([[1, -1, 0, 2]] * 3, dtype=torch.int64)]
    (got,) = sum_accumulators(cfg, [a, b])
    assert got[0].tolist() == [lim - 1, lim - 2, lim - 1, lim - 1]  # exact sum, saturated once
    with pytest.raises(ValueError, match=r"worker 1's layer 0 accumulators are .*\(3, 3\)"):
        sum_accumulators(cfg, [a, [torch.zeros(3, 3, dtype=torch.int64)]])
    with pytest.raises(ValueError, match="at least one worker"):
        sum_accumulators(cfg, [])
    # data_parallel_step (which now calls it) still equals one chip on the whole mini-batch
    check_data_parallel(NET)
    x, y = _data(NET)
    x_in, labels = epoch_samples(NET, x, y, 0)
    chips = [GoldenModel(NET), GoldenModel(NET)]
    data_parallel_step(chips, [x_in[0:2], x_in[2:4]], [labels[0:2], labels[2:4]])
    one = _golden_chip(NET, x, y, 1)
    assert all(torch.equal(a, b) for a, b in zip(one.weights, chips[0].weights, strict=True))
