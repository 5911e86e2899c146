"""Federated averaging with every worker's round on the generated Verilog, bit for bit.

The 64-16-10 digits network (T = 16) on a two-core array (one core per layer) inside the
fast-transactor wrapper under Verilator, 20% idle and backpressure cycles: 2 workers x 2 rounds,
12 samples per worker, one local epoch, the array playing both workers one after the other.
Every weight and LFSR state read back after every worker round equals ``local_round``'s, and
every average the golden federation's; a wrong LFSR state written for one worker is reported
with the first differing index; one :func:`run_rtl_round` (the Dask task's function) equals
``local_round``. The tests share one build (``build/rtl/test_federated_rtl/array-<hash>``);
each run has its folder per test id.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from pathlib import Path

import pytest
import torch

from spikeforge.hw.protocol import Opcode
from spikeforge.sim.array_session import ArraySession
from spikeforge.sim.federated_rtl import rtl_local_round
from spikeforge.sim.federated_runner import array_cores, run_federation, run_rtl_round
from spikeforge.sim.plan import ArrayRecorder
from spikeforge.sw.config import SnnConfig
from spikeforge.sw.data import load_dataset
from spikeforge.sw.encoders import quantize
from spikeforge.sw.federated import (
    RoundTask,
    fedavg,
    local_round,
    partition,
    worker_lfsr,
)
from spikeforge.sw.golden import GoldenModel

BUILD_ROOT = Path(__file__).resolve().parents[1] / "build" / "rtl"
SHARED = BUILD_ROOT / "test_federated_rtl"
NET = SnnConfig(layers=(64, 16, 10), timesteps=16)


def _folder(request) -> Path:
    return SHARED / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)


def _data(cfg: SnnConfig):
    ds = load_dataset("digits")
    return quantize(ds.x_train, ds.x_max, cfg.in_bits), ds.y_train


def _golden_federation(cfg, x, y, *, workers, rounds, samples, lr_shifts):
    """The golden federation from ``spikeforge.sw.federated`` alone (no simulator code)."""
    shards = [s[:samples] for s in partition(y, workers, "iid", 0)]
    weights = GoldenModel(cfg).weights
    lfsr = [worker_lfsr(cfg, k) for k in range(workers)]
    for r in range(rounds):
        out = []
        for k in range(workers):
            task = RoundTask(cfg, k, r, tuple(weights), tuple(lfsr[k]), lr_shifts[r], shards[k], 1)
            out.append(local_round(task, x, y))
            lfsr[k] = out[-1]["lfsr"]
        weights = fedavg(cfg, [o["weights"] for o in out], [o["samples"] for o in out])
    return weights


@pytest.mark.rtl
def test_two_workers_two_rounds_of_fedavg_on_the_array_equal_the_golden_federation(request):
    _, result = run_federation(SHARED, _folder(request), cfg=NET, workers=2, rounds=2, samples=12)
    assert result.passed, result.report()
    d = result.detail
    assert d["stopped"] == "done"
    assert d["checked"] == d["worker_rounds"] == 4  # every worker round compared
    assert d["rounds_done"] == 2 and d["steps"] == 48
    assert d["lr_shifts"] == [10, 11]  # round 1 at another SET_LR
    x, y = _data(NET)
    want = _golden_federation(NET, x, y, workers=2, rounds=2, samples=12, lr_shifts=[10, 11])
    got = [torch.tensor(w, dtype=torch.int64) for w in d["weights"]]
    assert all(torch.equal(a, b) for a, b in zip(want, got, strict=True))
    assert not torch.equal(want[0], GoldenModel(NET).weights[0])  # it did learn


@pytest.mark.rtl
def test_a_wrong_lfsr_state_written_for_one_worker_is_reported(request):
    _, result = run_federation(
        SHARED, _folder(request), cfg=NET, workers=2, rounds=1, samples=4, corrupt=(1, 0)
    )
    assert not result.passed
    # row 0 of layer 0 rounds with the flipped LFSR state: its weights part first
    assert result.message == (
        "Mismatch: worker 1, round 0: layer 0 weight [0, 3] is -100, the golden model's -99"
    )
    assert result.detail["checked"] == 1  # worker 0's round passed, worker 1's did not


@pytest.mark.rtl
def test_run_rtl_round_equals_local_round():
    x, y = _data(NET)
    indices = partition(y, 3, "iid", 5)[2][:5]
    task = RoundTask(NET, 2, 1, tuple(GoldenModel(NET).weights), tuple(worker_lfsr(NET, 2)), 12,
                     indices, 1)  # fmt: skip
    got = run_rtl_round(task, "digits", SHARED)
    want = local_round(task, x, y)
    assert (got["worker"], got["round"], got["samples"]) == (2, 1, 5)
    for key in ("weights", "lfsr"):
        assert all(torch.equal(a, b) for a, b in zip(want[key], got[key], strict=True)), key
    batched = dataclasses.replace(task, cfg=SnnConfig(layers=(64, 16, 10), batch_size=2))
    with pytest.raises(ValueError, match=r"batch size 1 only.*batch_size is 2"):
        run_rtl_round(batched, "digits", SHARED)


def _planned_session(cfg: SnnConfig):
    cores = array_cores(cfg)
    plan = ArrayRecorder(cores)
    return ArraySession(cores, plan.send, plan.recv, streamed=False), plan


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"cfg": SnnConfig(layers=(64, 16, 10), batch_size=2)}, r"batch size 1 only.*is 2"),
        ({"cfg": SnnConfig(layers=(64, 8, 10))}, r"the task's network .* is not the array's"),
        ({"lr_shift": 14}, r"task.lr_shift = 14 is out of the cores' range \[10, 13\]"),
        ({"lfsr": (torch.zeros(16, dtype=torch.int64), torch.ones(10, dtype=torch.int64))},
         r"task.lfsr\[0\] holds states outside \[1, 2\*\*32 - 1\]"),
        ({"weights": (torch.zeros(16, 64, dtype=torch.int64),)},
         r"needs 2 weight tensors and 2 LFSR tensors, not 1 and 2"),
    ],
)  # fmt: skip
def test_rtl_local_round_refuses_a_task_the_array_cannot_run(change, error):
    session, plan = _planned_session(NET)
    task = RoundTask(NET, 0, 0, tuple(GoldenModel(NET).weights), tuple(worker_lfsr(NET, 0)), 10,
                     torch.arange(3), 1)  # fmt: skip
    x, y = _data(NET)
    with pytest.raises(ValueError, match=error):
        asyncio.run(rtl_local_round(session, dataclasses.replace(task, **change), x, y))
    assert plan.packets == []  # refused before any packet


def test_rtl_local_round_plans_one_training_step_per_sample():
    """The planning pass alone: the packets of a round of 3 samples (no simulator)."""
    session, plan = _planned_session(NET)
    task = RoundTask(NET, 0, 0, tuple(GoldenModel(NET).weights), tuple(worker_lfsr(NET, 0)), 10,
                     torch.arange(3), 2)  # fmt: skip
    out = asyncio.run(rtl_local_round(session, task, *_data(NET)))
    assert (out["worker"], out["round"], out["samples"]) == (0, 0, 3)
    ops = [Opcode(words[1] >> 24) for words, _ in plan.packets]
    assert ops.count(Opcode.BACKWARD) == 6  # 2 local epochs x 3 samples, one step each
    assert ops.count(Opcode.SET_LR) == 1
